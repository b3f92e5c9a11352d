"""Load on the clinic web service: concurrent logged-in users while assessments run.

Starts ``reirrad serve`` (gunicorn and the job worker, as in production) on a free loopback
port with a temporary data folder (SQLite; PostgreSQL in a fresh throwaway database when
``DATABASE_URL`` is set), which seeds the NPC and the phantom case. It then creates
``--users`` accounts (planners of the seeded department), logs each in over HTTP, starts two
assessments (one per seeded patient) and lets every user browse the patient list, patient
pages and assessment pages for ``--seconds`` with no pause between requests (one thread per
user, ``requests`` sessions), while the worker runs the two assessments.

``--think-s T`` gives each user a pause between requests drawn uniformly from 0.5 T to
1.5 T (default 1 s: a person reading a page for about a second before the next click is
still a brisk user); ``--think-s 0`` is a stress test with no pause, where 20 users keep 20
requests in flight on 2 cores and the p95 is the queue length times the service time.

The peer, measured in the same run by the same users: the stylesheet (a static file served
by whitenoise, no database), fetched every fifth request; ``ratio`` is page p95 / static p95.
An error is any exception or a status other than 200.

Last line:
``users=20 seconds=60 requests=N errors=E p95_ms=P static_p95_ms=S ratio=R think_s=T``.

Usage: ``python benchmarks/web_load.py [--users 20] [--seconds 60]``
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import requests

START_TIMEOUT_S = 300
PASSWORD = "a long benchmark password"
STYLESHEET = "/static/registry/style.css"

MAKE_USERS = """
import sys
from reirrad.web import setup
setup()
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from reirrad.web.registry.models import Department, Membership
department = Department.objects.get(name="Radiotherapy")
hashed = make_password(sys.argv[2])
for i in range(int(sys.argv[1])):
    user = get_user_model().objects.create(username=f"user{i:02d}", password=hashed)
    Membership.objects.create(user=user, department=department, role="planner")
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fresh_postgres(env: dict[str, str]) -> str | None:
    """A throwaway database next to DATABASE_URL's (dropped at the end), or None."""
    base = env.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        env.pop("DATABASE_URL", None)
        return None
    import psycopg

    name = f"reirrad_load_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    env["DATABASE_URL"] = base.rsplit("/", 1)[0] + "/" + name
    return name


def login(base: str, user: str, password: str) -> requests.Session:
    session = requests.Session()
    session.get(base + "/login/", timeout=60).raise_for_status()
    page = session.post(
        base + "/login/",
        data={"username": user, "password": password,
              "csrfmiddlewaretoken": session.cookies["csrftoken"]},
        headers={"Referer": base + "/login/"}, timeout=60,
    )  # fmt: skip
    if "/login/" in page.url:
        raise SystemExit(f"login of {user} failed")
    return session


def start_assessments(base: str, admin: requests.Session) -> list[str]:
    """One assessment of all courses per seeded patient; return their page paths."""
    page = admin.get(base + "/", timeout=60).text
    pages = []
    for patient in sorted(set(re.findall(r'href="/patients/(\d+)/"', page))):
        path = f"/patients/{patient}/"
        courses = re.findall(r'name="course" value="(\d+)"', admin.get(base + path).text)
        done = admin.post(
            f"{base}{path}assessments/new/",
            data=[("course", c) for c in courses]
            + [("csrfmiddlewaretoken", admin.cookies["csrftoken"])],
            headers={"Referer": base + path}, timeout=60,
        )  # fmt: skip
        match = re.search(r"/assessments/(\d+)/$", done.url)
        if match is None:
            raise SystemExit(f"could not start an assessment of patient {patient}")
        pages.append(match.group(0))
    return pages


def browse(base, session, paths, until, pages_ms, static_ms, errors, seed, think_s=0.0):
    pick = random.Random(seed)
    n = 0
    while time.monotonic() < until:
        n += 1
        path = STYLESHEET if n % 5 == 0 else pick.choice(paths)
        start = time.perf_counter()
        try:
            response = session.get(base + path, timeout=60)
            response.content  # noqa: B018 (the whole body, as a browser reads it)
            ok = response.status_code == 200 and "/login/" not in response.url
        except requests.RequestException:
            ok = False
        elapsed = (time.perf_counter() - start) * 1000
        (static_ms if path == STYLESHEET else pages_ms).append(elapsed)
        if not ok:
            errors.append(path)
        if think_s > 0:
            time.sleep(pick.uniform(0.5, 1.5) * think_s)


def status_of(base: str, admin: requests.Session, path: str) -> str:
    match = re.search(r"Status: (\w+)", admin.get(base + path, timeout=60).text)
    return match.group(1) if match else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument(
        "--think-s", type=float, default=1.0, help="mean pause between a user's requests"
    )
    args = parser.parse_args()
    if not (1 <= args.users <= 200 and 1 <= args.seconds <= 600):
        raise SystemExit("--users must be 1..200 and --seconds 1..600 (a bounded run)")
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root / "src"), env.get("PYTHONPATH")]))
    env.pop("DJANGO_SETTINGS_MODULE", None)
    database = fresh_postgres(env)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="reirrad-load-") as scratch:
        data = Path(scratch) / "data"
        env["REIRRAD_DATA"] = str(data)
        server = subprocess.Popen(
            [sys.executable, "-c", "from reirrad.cli import run; run()", "serve",
             "--data", str(data), "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            start_new_session=True,
        )  # fmt: skip
        try:
            run(args, base, server, env)
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
            if database is not None:
                import psycopg

                with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as connection:
                    connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def run(args, base: str, server: subprocess.Popen, env: dict[str, str]) -> None:
    password = None
    deadline = time.monotonic() + START_TIMEOUT_S
    for line in server.stdout:
        if match := re.search(r"with the password (\S+)", line):
            password = match.group(1)
        if "serving on" in line or time.monotonic() > deadline:
            break
    if password is None:
        raise SystemExit("reirrad serve did not start")
    threading.Thread(target=lambda: [None for _ in server.stdout], daemon=True).start()
    while True:
        try:
            requests.get(base + "/login/", timeout=10)
            break
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise SystemExit("the web server did not listen") from None
            time.sleep(0.5)
    subprocess.run(
        [sys.executable, "-c", MAKE_USERS, str(args.users), PASSWORD], env=env, check=True
    )
    admin = login(base, "admin", password)
    sessions = [login(base, f"user{i:02d}", PASSWORD) for i in range(args.users)]
    assessments = start_assessments(base, admin)
    home = admin.get(base + "/", timeout=60).text
    patients = sorted({f"/patients/{p}/" for p in re.findall(r'href="/patients/(\d+)/"', home)})
    paths = ["/", "/?q=PHANTOM", *patients, *assessments]
    pages_ms: list[float] = []
    static_ms: list[float] = []
    errors: list[str] = []
    until = time.monotonic() + args.seconds
    threads = [
        threading.Thread(
            target=browse,
            args=(base, s, paths, until, pages_ms, static_ms, errors, i, args.think_s),
        )
        for i, s in enumerate(sessions)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    states = [status_of(base, admin, path) for path in assessments]
    p95 = float(np.percentile(pages_ms, 95)) if pages_ms else float("nan")
    static_p95 = float(np.percentile(static_ms, 95)) if static_ms else float("nan")
    print(f"assessments during the run: {', '.join(states)} (at the end)")
    print(f"pages: {len(pages_ms)} median_ms={np.median(pages_ms):.0f}; static: {len(static_ms)}")
    if errors:
        print(f"errors on: {sorted(set(errors))}")
    print(f"loadavg: {Path('/proc/loadavg').read_text().strip()}; cpus={os.cpu_count()}")
    print(
        f"users={args.users} seconds={args.seconds:g} requests={len(pages_ms) + len(static_ms)} "
        f"errors={len(errors)} p95_ms={p95:.0f} static_p95_ms={static_p95:.0f} "
        f"ratio={p95 / static_p95:.1f} think_s={args.think_s:g}"
    )


if __name__ == "__main__":
    main()
