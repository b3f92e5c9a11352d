"""A 12-patient synthetic cohort on a 2-worker Dask LocalCluster.

Exact answers: every patient is the phantom of ``reirrad.io.phantom`` moved and scaled
(``reirrad.io.phantom_cohort``); its physical doses are sums of Gaussians, so the cumulative
EQD2 of each structure (no recovery in these cases) is ``sum_c EQD2(D_c(x), n_c, a/b)`` of
the analytic doses, sampled on a lattice of <= 0.5 mm and stored in ``answers.json`` when
the cohort is written. The voxel-wise values in the Parquet tables must agree within 2 %
(the tolerance of the single-phantom tests).

One run covers: a corrupt patient (truncated RTDOSE: status ``failed``, its one-line
reason, the others go on) and a worker process killed while patients run (Dask re-runs its
task on a restarted worker; the run completes, no half-written file). Then a resume after
deleting 3 patients' outputs re-runs only those 3 (checked in the run table).
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pandas as pd
import pytest

from reirrad.io.cohort_manifest import read_manifest
from reirrad.io.cohort_store import part_path
from reirrad.io.phantom_cohort import cohort_specs, write_cohort_index, write_cohort_patient
from reirrad.pipelines.cohort import (
    CohortParameters,
    PatientTask,
    cohort_client,
    plan_cohort,
    run_cohort,
    run_patient,
)
from reirrad.pipelines.cohort_tables import TABLES

pytest.importorskip("distributed")

N = 12
CORRUPT = "P0005"


@pytest.fixture(scope="module")
def client():
    with cohort_client(workers=2) as made:
        yield made


@pytest.fixture(scope="module")
def cohort(tmp_path_factory, client):
    """12 patients written on the cluster (writing is the slow part), one corrupted."""
    root = tmp_path_factory.mktemp("cohort")
    written = client.gather(client.map(write_cohort_patient, cohort_specs(N), root=str(root)))
    manifest = write_cohort_index(root, written)
    dose = root / CORRUPT / "course1" / "RD.dcm"
    dose.write_bytes(dose.read_bytes()[:600])
    return manifest


@pytest.fixture(scope="module")
def first_run(cohort, client):
    out = cohort.parent / "out"
    killed: list[str] = []

    def kill_a_busy_worker(status) -> None:
        # once the first patient is back, kill a worker process that is running a patient
        if killed or status.done + status.failed < 1 or status.client is None:
            return
        busy = [w for w, keys in status.client.processing().items() if keys]
        if busy:
            pid = status.client.run(os.getpid, workers=busy[:1])[busy[0]]
            os.kill(pid, signal.SIGKILL)  # as the kernel's OOM killer would
            killed.append(busy[0])

    result = run_cohort(read_manifest(cohort), out, client=client, progress=kill_a_busy_worker)
    return out, result, killed


def test_cohort_completes_with_a_corrupt_patient_and_a_killed_worker(first_run):
    out, result, killed = first_run
    assert killed, "no worker was busy after the first patient finished"
    run = pd.read_parquet(out / "run.parquet").set_index("patient")
    assert len(run) == N
    assert (run.drop(index=CORRUPT)["status"] == "ok").all()
    failed = run.loc[CORRUPT]
    assert failed["status"] == "failed" and failed["error_type"] == "InputError"
    assert "RD.dcm" in failed["message"] and "\n" not in failed["message"]
    # a failed patient keeps no result rows
    voxel = pd.read_parquet(out / "voxel_metrics.parquet")
    assert CORRUPT not in set(voxel["patient"])
    assert set(voxel["patient"]) == set(run.index) - {CORRUPT}
    assert (run.drop(index=CORRUPT)["peak_memory_mib"] > 0).all()
    # no half-written file: nothing temporary left, every Parquet file reads back
    assert not [p for p in out.rglob("*") if p.name.startswith(".tmp-")]
    for path in out.rglob("*.parquet"):
        pd.read_parquet(path)


def test_cumulative_eqd2_matches_the_exact_answers(first_run, cohort):
    out, _, _ = first_run
    answers = json.loads((cohort.parent / "answers.json").read_text())["patients"]
    voxel = pd.read_parquet(out / "voxel_metrics.parquet")
    checked = 0
    for row in voxel[voxel["metric"].isin(["Dmean", "D2%"])].itertuples():
        exact = answers[row.patient]["answers"][row.structure]
        assert row.alpha_beta == exact["alpha_beta"]
        assert row.eqd2_gy == pytest.approx(exact[row.metric], rel=0.02), row
        # no recovery is credited in these cases
        assert row.eqd2_no_recovery_gy == pytest.approx(row.eqd2_gy, rel=1e-9)
        checked += 1
    assert checked == (N - 1) * 4 * 2


def test_tables_are_one_dataset_per_table(first_run):
    out, _, _ = first_run
    import pyarrow.dataset as ds

    for table in TABLES:
        frame = ds.dataset(out / f"{table}.parquet").to_table().to_pandas()
        assert list(frame.columns) == list(TABLES[table])
    dvh = pd.read_parquet(out / "dvh.parquet")
    assert {"cumulative_eqd2", "course_physical", "course_eqd2"} <= set(dvh["curve"])
    # a cumulative DVH starts at the whole covered volume and never rises
    one = dvh[(dvh["patient"] == "P0001") & (dvh["structure"] == "OAR_sphere")
              & (dvh["curve"] == "cumulative_eqd2")]  # fmt: skip
    assert one["volume_fraction"].iloc[0] == pytest.approx(1.0)
    assert (one["volume_cc"].diff().dropna() <= 1e-6).all()
    duckdb = pytest.importorskip("duckdb")
    assert duckdb.sql(f"select count(*) from '{out / 'run.parquet'}'").fetchall() == [(N,)]
    dvh_patients = f"select count(distinct patient) from '{out / 'dvh.parquet'}'"
    assert duckdb.sql(dvh_patients).fetchall() == [(N - 1,)]


def test_resume_after_deleting_three_outputs_reruns_only_those(first_run, cohort, client):
    out, first, _ = first_run
    deleted = ["P0002", "P0007", "P0011"]
    part_path(out, "voxel_metrics", deleted[0]).unlink()
    part_path(out, "dvh", deleted[1]).unlink()
    part_path(out, "run", deleted[2]).unlink()
    again = run_cohort(read_manifest(cohort), out, client=client)
    assert sorted(s.patient for s in again.summaries) == deleted
    assert len(again.skipped) == N - 3  # the corrupt patient's refusal is current too
    run = pd.read_parquet(out / "run.parquet").set_index("patient")
    assert sorted(run.index[run["run_id"] == again.run_id]) == deleted
    assert (run.drop(index=deleted)["run_id"] == first.run_id).all()
    voxel = pd.read_parquet(out / "voxel_metrics.parquet")
    assert set(voxel["patient"]) == {s.patient for s in cohort_specs(N)} - {CORRUPT}


def test_a_complete_resume_starts_no_cluster(first_run, cohort):
    out, _, _ = first_run
    # an unreachable scheduler: connecting to it would fail the run
    result = run_cohort(read_manifest(cohort), out, scheduler="tcp://127.0.0.1:9")
    assert result.summaries == () and len(result.skipped) == N


def test_changed_parameters_or_input_make_a_patient_current_no_more(first_run, cohort):
    out, _, _ = first_run
    entries = read_manifest(cohort)
    tasks, skipped = plan_cohort(entries, out, CohortParameters(methods="none"), "x")
    assert len(tasks) == N and not skipped
    case = entries[0].case
    text = case.read_text()
    try:
        case.write_text(text + "# edited\n")
        tasks, _ = plan_cohort(entries, out, CohortParameters(), "x")
        assert [t.patient for t in tasks] == [entries[0].patient]
    finally:
        case.write_text(text)


def test_an_unexpected_exception_is_recorded_and_does_not_raise(tmp_path, monkeypatch):
    import reirrad.pipelines.run as run_module

    def boom(*args, **kwargs):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(run_module, "run_case", boom)
    task = PatientTask("X1", str(tmp_path / "case.yaml"), "k", 1, str(tmp_path),
                       CohortParameters(), "r1")  # fmt: skip
    summary = run_patient(task)
    assert summary.status == "error" and summary.message == "RuntimeError: boom second line"
    row = pd.read_parquet(part_path(tmp_path, "run", "X1")).iloc[0]
    assert row["status"] == "error" and row["error_type"] == "RuntimeError"
    assert not part_path(tmp_path, "voxel_metrics", "X1").exists()
    assert Path(tmp_path / "parts" / "run").is_dir()
