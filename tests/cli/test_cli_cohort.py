"""``reirrad phantom --cohort``, ``reirrad cohort run`` and ``reirrad cohort report``.

The numbers of the cohort run are checked against the phantom's exact answers in
tests/pipelines/test_cohort.py; here: the commands' output, files and refusals.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from reirrad.cli import main

pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-cohort")
    assert main(["phantom", "--cohort", "3", str(root / "cohort")]) == 0
    out = root / "out"
    code = main(["cohort", "run", str(root / "cohort" / "manifest.csv"), "--out", str(out),
                 "--workers", "2"])  # fmt: skip
    assert code == 0
    return root, out


def test_phantom_cohort_writes_patients_manifest_and_answers(ran):
    root, _ = ran
    manifest = pd.read_csv(root / "cohort" / "manifest.csv")
    assert list(manifest["patient"]) == ["P0001", "P0002", "P0003"]
    answers = json.loads((root / "cohort" / "answers.json").read_text())["patients"]
    assert set(answers) == set(manifest["patient"])
    assert set(answers["P0001"]["answers"]) == {"PTV_reirr", "SpinalCanal", "OAR_sphere",
                                                "OAR_tilted"}  # fmt: skip


def test_run_writes_the_tables_and_a_second_run_skips_everything(ran, capsys):
    root, out = ran
    run = pd.read_parquet(out / "run.parquet")
    assert list(run["status"]) == ["ok"] * 3
    assert (run["reirrad_version"] != "").all() and run["input_sha256"].str.len().eq(64).all()
    capsys.readouterr()
    assert main(["cohort", "run", str(root / "cohort" / "manifest.csv"), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "skipped (current) 3" in captured.out
    assert "dashboard" not in captured.err  # nothing to run: no cluster started


def test_report_writes_html_and_csv(ran, capsys):
    _, out = ran
    assert main(["cohort", "report", str(out), "--out", str(out / "summary")]) == 0
    html = (out / "summary" / "cohort_summary.html").read_text()
    assert "Cohort summary" in html and "data:image/svg+xml;base64" in html
    organs = pd.read_csv(out / "summary" / "cohort_organs.csv")
    assert set(organs["organ"]) == {"spinal_cord", "OAR_sphere", "OAR_tilted"}
    assert (organs["count"] == 3).all()
    constraints = pd.read_csv(out / "summary" / "cohort_constraints.csv")
    assert (constraints["patients"] == 3).all()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["cohort", "run", "{tmp}/missing.csv", "--out", "{tmp}/o"], "missing.csv"),
        (["cohort", "run", "{tmp}/bad.csv", "--out", "{tmp}/o"], "patient,case"),
        (["cohort", "run", "{tmp}/bad.csv", "--out", "{tmp}/o", "--workers", "0"], "--workers"),
        (["cohort", "run", "--out", "{tmp}/o"], "MANIFEST or --registry"),
        (["cohort", "run", "--registry", "organ=parotid", "--out", "{tmp}/o"], "unknown key"),
        (["cohort", "run", "--registry", "start_to=soon", "--out", "{tmp}/o"], "YYYY-MM-DD"),
        (
            [
                "cohort",
                "run",
                "--registry",
                "site=larynx",
                "--data",
                "{tmp}/none",
                "--out",
                "{tmp}/o",
            ],
            "none",
        ),
        (["cohort", "run", "{tmp}/bad.csv", "--data", "{tmp}", "--out", "{tmp}/o"], "--data"),
        (["cohort", "report", "{tmp}/nothing"], "nothing"),
        (["cohort", "report", "{tmp}"], "cohort run"),
        (["phantom", "--cohort", "0", "{tmp}/c"], "--cohort"),
    ],
)
def test_refusals_are_one_line_and_exit_2(tmp_path, capsys, args, needle):
    (tmp_path / "bad.csv").write_text("id,file\n1,x.yaml\n")
    code = main([a.format(tmp=tmp_path) for a in args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("reirrad: error:") and err.count("\n") == 1 and needle in err
