"""``reirrad serve``: the web server (gunicorn) and the job worker on one data folder.

On a fresh data folder it migrates the database, collects the static files, creates a
department with an admin account (its password printed once) and seeds it with the bundled
NPC case (``examples/npc-reirradiation-2026.yaml``) and a phantom DICOM case
(:func:`reirrad.io.phantom.write_example_case`). Ctrl-C (or SIGTERM) stops both processes.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from reirrad.errors import InputError
from reirrad.web import SETTINGS_MODULE, setup

SEED_DEPARTMENT = "Radiotherapy"
ADMIN_USER = "admin"
#: Seconds the server and the worker get to finish after Ctrl-C before they are killed.
STOP_TIMEOUT_S = 20


def check_port(host: str, port: int) -> None:
    """Refuse a port another program listens on, before anything starts."""
    if not 0 < port < 65536:
        raise InputError(f"must be between 1 and 65535, not {port}", source="--port")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise InputError(
                f"cannot listen on {host}:{port} ({error.strerror}); give another --port or --host",
                source="--port",
            ) from None


def prepare(data_dir: Path) -> tuple[str, str] | None:
    """Migrate, collect static files and seed a fresh data folder; return the new admin's
    user name and password (``None`` when the folder already had users)."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(
            f"cannot create the data folder ({error.strerror})", source=str(data_dir)
        ) from None
    setup(data_dir)
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    from reirrad.web.registry.runner import fail_interrupted
    from reirrad.web.registry.store import sweep_temp

    # serve starts the one worker: a run still marked running was cut off by a stop
    fail_interrupted(
        "interrupted: the service stopped while this assessment ran; start a new assessment"
    )
    # and the one web server: every temporary file is debris of a killed upload or run
    sweep_temp(older_than_s=0)
    return seed()


def seed() -> tuple[str, str] | None:
    """On a database without users: the department, the admin and the two seeded cases."""
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from reirrad.io.phantom import write_example_case
    from reirrad.web.registry.casefile import import_case
    from reirrad.web.registry.models import Department, Membership, Role

    users = get_user_model()
    if users.objects.exists():
        return None
    password = secrets.token_urlsafe(15)
    with transaction.atomic(), tempfile.TemporaryDirectory(prefix="reirrad-seed-") as scratch:
        department, _ = Department.objects.get_or_create(name=SEED_DEPARTMENT)
        admin = users.objects.create_superuser(ADMIN_USER, password=password)
        Membership.objects.create(user=admin, department=department, role=Role.ADMIN)
        seed_case = resources.files("reirrad.web") / "seed" / "npc-reirradiation-2026.yaml"
        with resources.as_file(seed_case) as npc:
            import_case(npc, department, user=admin)
        phantom = write_example_case(Path(scratch) / "phantom", n_courses=2)
        import_case(phantom, department, user=admin)
    return ADMIN_USER, password


def _environment(data_dir: Path, host: str) -> dict[str, str]:
    env = dict(os.environ, REIRRAD_DATA=str(data_dir), DJANGO_SETTINGS_MODULE=SETTINGS_MODULE)
    if "REIRRAD_ALLOWED_HOSTS" not in env:
        hosts = {"127.0.0.1", "localhost", "[::1]"}
        if host not in ("0.0.0.0", "::"):
            hosts.add(host)
        env["REIRRAD_ALLOWED_HOSTS"] = ",".join(sorted(hosts))
    return env


def commands(host: str, port: int, web_workers: int = 2) -> dict[str, list[str]]:
    """The command lines of the web server and of the job worker."""
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return {
        "web server": [
            sys.executable, "-m", "gunicorn", "reirrad.web.wsgi:application",
            "--bind", bind, "--workers", str(web_workers), "--access-logfile", "-",
            "--graceful-timeout", "10", "--no-control-socket",
        ],
        "worker": [
            sys.executable, "-m", "reirrad.web", "worker", "--no-reload",
            "--queue-name", "default",
        ],
    }  # fmt: skip


def with_dicom_node(processes: dict[str, list[str]], env: dict[str, str]) -> dict[str, list[str]]:
    """Add the DICOM node when ``REIRRAD_DICOM_PORT`` is set (docs/dicom-node.md)."""
    if env.get("REIRRAD_DICOM_PORT"):
        processes["DICOM node"] = [sys.executable, "-m", "reirrad.web", "dicom_listen"]
    return processes


def serve(data_dir: Path, host: str, port: int, *, echo: Callable[[str], None] = print) -> int:
    """Prepare the data folder, start the web server and the worker, wait for Ctrl-C."""
    check_port(host, port)
    data_dir = data_dir.expanduser().resolve()
    credentials = prepare(data_dir)
    echo(f"reirrad: data folder {data_dir}")
    if credentials is not None:
        user, password = credentials
        echo(f"reirrad: created the account {user!r} with the password {password}")
        echo("reirrad: it is shown only this once; change it under Admin > Users")
    env = _environment(data_dir, host)
    processes: dict[str, subprocess.Popen] = {}
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        for name, command in with_dicom_node(commands(host, port), env).items():
            processes[name] = subprocess.Popen(command, env=env)
        shown = f"[{host}]" if ":" in host else host
        echo(f"reirrad: serving on http://{shown}:{port}/ (web server and worker; Ctrl-C stops)")
        while not stopping:
            ended = {n: p.returncode for n, p in processes.items() if p.poll() is not None}
            if ended:
                for name, code in ended.items():
                    echo(f"reirrad: the {name} stopped (exit {code}); stopping the rest")
                return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        _stop_all(processes)
        signal.signal(signal.SIGTERM, previous)
    echo("reirrad: stopped")
    return 0


def _stop_all(processes: dict[str, subprocess.Popen]) -> None:
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for process in processes.values():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
