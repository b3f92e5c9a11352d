"""`reirrad dicom-listen` and `reirrad dicom-send` from the command line, on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pydicom
import pytest

from reirrad.cli import main

SRC = Path(__file__).resolve().parents[2] / "src"


def run(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "args, message",
    [
        (["dicom-send", "x.dcm", "--to", "PLANNING@host"], "is not AE@host:port"),
        (["dicom-send", "missing.dcm", "--to", "PLANNING@127.0.0.1:104"], "file not found"),
        (["dicom-listen", "--spool", "s", "--allow", "@h"], "is not a calling AE title"),
        (["dicom-listen", "--spool", "s", "--ae-title", "X" * 17], "1-16 characters"),
        (["dicom-listen", "--spool", "s", "--port", "70000"], "outside 0-65535"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(capsys, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, *args)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("reirrad: error:") and message in err


def test_listen_proposes_the_course_and_stops_cleanly_on_ctrl_c(phantom_case_3, tmp_path, capsys):
    port = free_port()
    spool = tmp_path / "spool"
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    env = dict(os.environ, PYTHONPATH=str(SRC))
    cmd = [sys.executable, "-c", "from reirrad.cli import run; run()", "dicom-listen"]
    cmd += ["--spool", str(spool), "--port", str(port), "--idle", "0.5", "--allow", "ECLIPSE"]
    with out.open("w") as o, err.open("w") as e:
        listener = subprocess.Popen(cmd, stdout=o, stderr=e, env=env)
    try:
        deadline = time.monotonic() + 60
        while "listening as REIRRAD" not in err.read_text():
            assert listener.poll() is None, err.read_text()
            assert time.monotonic() < deadline, "the listener did not start"
            time.sleep(0.05)
        course = phantom_case_3.parent / "course2"
        code, sent, _ = run(
            capsys,
            "dicom-send",
            str(course),
            "--to",
            f"REIRRAD@127.0.0.1:{port}",
            "--ae-title",
            "ECLIPSE",
        )
        n_files = len(list(course.rglob("*.dcm")))
        assert code == 0 and f"sent {n_files} of {n_files} objects" in sent
        while "proposed course" not in out.read_text():
            assert time.monotonic() < deadline, "no course was proposed"
            time.sleep(0.05)
        listener.send_signal(signal.SIGINT)
        assert listener.wait(timeout=60) == 0
    finally:
        if listener.poll() is None:
            listener.kill()
    text = out.read_text()
    plan = pydicom.dcmread(course / "RP.dcm", stop_before_pixels=True)
    assert f"plan C2 {plan.SOPInstanceUID}, 8 fractions, dates 20190601" in text
    assert "1 RTPLAN, 1 RTDOSE, 1 RTSTRUCT, 40 images" in text
    assert "stopped" in err.read_text()
    assert len(list(spool.glob("*.dcm"))) == n_files
