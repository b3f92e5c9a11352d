"""Cohort manifests (CSV, YAML, folder), input-file lists, atomic Parquet parts."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from reirrad.errors import InputError
from reirrad.io import cohort_store as store
from reirrad.io.cohort_manifest import case_input_files, hash_files, read_manifest

CASE = """reirrad_case: 1
patient: {id: X}
structures: [{name: Cord, role: organ_at_risk, organ: spinal_cord, alpha_beta: 2, recovery: none}]
courses:
  - id: C1
    start: 2016-01-04
    end: 2016-02-12
    fractions: 30
    dicom: {rtdose: d/RD.dcm, rtstruct: d/RS.dcm, ct: d/CT, registration: {method: reg, file: d/REG.dcm}}
  - id: C2
    start: 2020-01-06
    end: 2020-01-10
    fractions: 5
    dicom: {rtdose: e/RD.dcm, rtstruct: e/RS.dcm}
"""


@pytest.fixture
def cases(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "case.yaml").write_text("x: 1\n")
    return tmp_path


def test_csv_yaml_and_folder_give_the_same_cohort(cases):
    (cases / "m.csv").write_text("patient,case\nA1,a/case.yaml\nB1,b/case.yaml\n")
    (cases / "m.yaml").write_text(
        "patients:\n  - {patient: A1, case: a/case.yaml}\n  - {patient: B1, case: b/case.yaml}\n"
    )
    csv_entries = read_manifest(cases / "m.csv")
    assert [e.patient for e in csv_entries] == ["A1", "B1"]
    assert csv_entries[0].case == (cases / "a" / "case.yaml").resolve()
    assert read_manifest(cases / "m.yaml") == csv_entries
    assert [e.patient for e in read_manifest(cases)] == ["a", "b"]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("patient,case\nA1,a/case.yaml\nA1,b/case.yaml\n", "listed twice"),
        ("id,file\nA1,a/case.yaml\n", "patient,case"),
        ("patient,case\nA1,missing.yaml\n", "does not exist"),
        ("patient,case\n../x,a/case.yaml\n", "identifier"),
        ("patient,case\n", "no patient"),
    ],
)
def test_bad_manifests_are_refused_with_the_reason(cases, text, needle):
    (cases / "m.csv").write_text(text)
    with pytest.raises(InputError, match=needle) as error:
        read_manifest(cases / "m.csv")
    assert "m.csv" in str(error.value)


def test_input_files_are_the_case_and_every_dicom_file_it_names(tmp_path):
    (tmp_path / "d" / "CT").mkdir(parents=True)
    for name in ("d/RD.dcm", "d/RS.dcm", "d/REG.dcm", "d/CT/1.dcm", "d/CT/2.dcm"):
        (tmp_path / name).write_bytes(b"x")
    case = tmp_path / "case.yaml"
    case.write_text(CASE)
    files = case_input_files(case)
    names = sorted(str(p.relative_to(tmp_path)) for p in files)
    assert names == ["case.yaml", "d/CT/1.dcm", "d/CT/2.dcm", "d/RD.dcm", "d/REG.dcm",
                     "d/RS.dcm", "e/RD.dcm", "e/RS.dcm"]  # fmt: skip
    before = hash_files(files, tmp_path)
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "RD.dcm").write_bytes(b"y")  # a missing file appears: new key
    assert hash_files(files, tmp_path) != before


def test_an_interrupted_part_write_leaves_no_file(tmp_path, monkeypatch):
    columns = {"patient": "string", "value": "float64"}

    def fail(table, where, **kwargs):
        with open(where, "wb") as handle:
            handle.write(b"PAR1 half")
        raise KeyboardInterrupt

    monkeypatch.setattr(pq, "write_table", fail)
    with pytest.raises(KeyboardInterrupt):
        store.write_part(tmp_path, "t", "P1", [{"patient": "P1", "value": 1.0}], columns)
    assert not list(tmp_path.rglob("*.parquet")) and not list(tmp_path.rglob(".tmp-*"))


def test_parts_compact_into_one_table_with_one_schema(tmp_path):
    columns = {"patient": "string", "value": "float64"}
    store.write_part(tmp_path, "t", "P1", [{"patient": "P1", "value": None}], columns)
    store.write_part(tmp_path, "t", "P2", [{"patient": "P2", "value": 2.5}], columns)
    (tmp_path / "parts" / "t" / ".tmp-stale-P3.parquet").write_bytes(b"half")
    paths = store.compact(tmp_path, {"t": columns})
    table = pq.read_table(paths["t"])
    assert table.column("patient").to_pylist() == ["P1", "P2"]
    assert table.column("value").to_pylist() == [None, 2.5]
    assert not list(tmp_path.rglob(".tmp-*"))


def test_compaction_is_redone_only_after_a_part_changes(tmp_path):
    columns = {"patient": "string", "value": "float64"}
    store.write_part(tmp_path, "t", "P1", [{"patient": "P1", "value": 1.0}], columns)
    path = store.compact(tmp_path, {"t": columns})["t"]
    stamp = path.stat().st_mtime_ns
    assert store.compact(tmp_path, {"t": columns})["t"].stat().st_mtime_ns == stamp
    store.remove_parts(tmp_path, ["t"], "P1")
    store.compact(tmp_path, {"t": columns})
    assert pq.read_table(path).num_rows == 0
