"""Fixtures of the web tests (pytest-django).

The web tests run on SQLite by default and on PostgreSQL with ``REIRRAD_WEB_DB=postgres``
and ``DATABASE_URL`` set (``make test`` runs them both ways when ``DATABASE_URL`` is set, as
``.ci/run`` does through ``scripts/start-postgres.sh``). The environment is set here, before
Django reads its settings: a fresh data folder per test session.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

_DATA = tempfile.mkdtemp(prefix="reirrad-web-test-")
atexit.register(shutil.rmtree, _DATA, ignore_errors=True)
os.environ["REIRRAD_DATA"] = _DATA
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reirrad.web.settings")
WEB_DB = os.environ.get("REIRRAD_WEB_DB", "sqlite")
if WEB_DB == "postgres":
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        raise pytest.UsageError(
            "REIRRAD_WEB_DB=postgres needs DATABASE_URL=postgresql://...; start a server with "
            'eval "$(bash scripts/start-postgres.sh)"'
        )
elif WEB_DB == "sqlite":
    os.environ.pop("DATABASE_URL", None)
else:
    raise pytest.UsageError(f"REIRRAD_WEB_DB must be sqlite or postgres, not {WEB_DB!r}")

import django  # noqa: E402  (after the environment above: the settings read it)

django.setup()  # pytest-django sets Django up only when it is configured at start-up

ROOT = Path(__file__).resolve().parents[2]
NPC_CASE = ROOT / "examples" / "npc-reirradiation-2026.yaml"


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # PBKDF2 with Django's iteration count takes ~0.3 s a hash; tests only need a hash
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session")
def phantom_case(tmp_path_factory) -> Path:
    """A two-course phantom DICOM case (``reirrad phantom``), written once per session."""
    from reirrad.io.phantom import write_example_case

    return write_example_case(tmp_path_factory.mktemp("phantom"), n_courses=2)


@pytest.fixture
def department(db):
    from reirrad.web.registry.models import Department

    return Department.objects.create(name="Radiotherapy A")


@pytest.fixture
def other_department(db):
    from reirrad.web.registry.models import Department

    return Department.objects.create(name="Radiotherapy B")


@pytest.fixture
def make_user(db):
    """``make_user(name, role, department)``: a user with that role in that department."""
    from django.contrib.auth import get_user_model

    from reirrad.web.registry.models import Membership

    def make(name: str, role: str, department) -> object:
        user = get_user_model().objects.create_user(name, password="a long test password")
        Membership.objects.create(user=user, department=department, role=role)
        return user

    return make


@pytest.fixture
def npc_patient(department):
    from reirrad.web.registry.casefile import import_case

    return import_case(NPC_CASE, department)


@pytest.fixture
def fresh_env(tmp_path):
    """Environment of a new data folder, with a new PostgreSQL database in postgres mode."""
    env = dict(os.environ, REIRRAD_DATA=str(tmp_path / "data"))
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    if os.environ.get("REIRRAD_WEB_DB") != "postgres":
        env.pop("DATABASE_URL", None)
        yield env
        return
    import psycopg

    base = os.environ["DATABASE_URL"]
    name = f"reirrad_worker_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    env["DATABASE_URL"] = base.rsplit("/", 1)[0] + "/" + name
    try:
        yield env
    finally:
        with psycopg.connect(base, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


#: Bound on waiting for `reirrad serve` to start (not a timed assertion).
START_TIMEOUT_S = 180


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def served(tmp_path, fresh_env):
    """``reirrad serve`` on a free port with a fresh data folder (and, on PostgreSQL, a fresh
    database); yields the URL, the lines printed before it served, and the process."""
    port = _free_port()
    env = fresh_env
    command = [
        sys.executable, "-c", "from reirrad.cli import run; run()",
        "serve", "--data", str(tmp_path / "data"), "--port", str(port),
    ]  # fmt: skip
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    lines: list[str] = []  # everything the server prints, read by a thread
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")))
    reader.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not any("serving on" in line for line in lines) and process.poll() is None:
        assert time.monotonic() < deadline, "".join(lines)
        time.sleep(0.2)
    try:
        assert any("serving on" in line for line in lines), "".join(lines)
        yield f"http://127.0.0.1:{port}", lines, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        reader.join(timeout=10)
        print("".join(lines))  # shown by pytest when the test failed
