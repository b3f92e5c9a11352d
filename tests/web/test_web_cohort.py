"""Cohorts selected from the registry (``reirrad cohort run --registry``): the web adapter.

The registry is seeded by the web fixtures: the NPC example case (diagnosis site
nasopharynx, courses started 2023-12-13 and 2025-05-27, a follow-up record) and the DICOM
phantom (no diagnosis, courses from 2016, no follow-up), in one department.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from reirrad.errors import InputError
from reirrad.io.casefile import load_case
from reirrad.io.cohort_manifest import RegistryQuery, parse_registry_query, read_manifest
from reirrad.web.registry.casefile import import_case
from reirrad.web.registry.cohort import export_cohort, select_patients
from reirrad.web.registry.models import AuditEvent

NPC_CASE = Path(__file__).resolve().parents[2] / "examples" / "npc-reirradiation-2026.yaml"


@pytest.fixture
def registry(department, npc_patient, phantom_case):
    return {"npc": npc_patient, "phantom": import_case(phantom_case, department)}


def _ids(query: RegistryQuery) -> list[str]:
    return [p.identifier for p in select_patients(query)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ["MARINOVA-2026-NPC", "PHANTOM-EXAMPLE"]),
        ("site=Nasopharynx", ["MARINOVA-2026-NPC"]),
        ("department=Radiotherapy A", ["MARINOVA-2026-NPC", "PHANTOM-EXAMPLE"]),
        ("department=Radiotherapy B", []),
        ("follow_up=yes", ["MARINOVA-2026-NPC"]),
        ("follow_up=no", ["PHANTOM-EXAMPLE"]),
        ("start_from=2025-05-27", ["MARINOVA-2026-NPC"]),  # the HFRS course, bound included
        ("start_from=2025-05-28", []),
        ("start_to=2019-06-01", ["PHANTOM-EXAMPLE"]),
        ("start_from=2023-09-02,start_to=2023-12-13", ["MARINOVA-2026-NPC"]),
    ],
)
def test_query_selects_by_each_criterion(registry, other_department, text, expected):
    assert _ids(parse_registry_query(text)) == expected


def test_export_writes_the_registry_case_folders(registry, tmp_path):
    entries = export_cohort(RegistryQuery(follow_up=False), tmp_path)
    assert [e.patient for e in entries] == ["PHANTOM-EXAMPLE"]
    assert entries[0].case == (tmp_path / "PHANTOM-EXAMPLE" / "case.yaml").resolve()
    assert load_case(entries[0].case).patient.id == "PHANTOM-EXAMPLE"
    # through the registry's audited export: one export event per patient
    assert (
        AuditEvent.objects.filter(action="export", patient_id=registry["phantom"].pk).count() == 1
    )


def test_export_command_writes_a_manifest_the_pipeline_reads(registry, tmp_path):
    call_command("export_cohort", str(tmp_path), "--query", "site=nasopharynx")
    with (tmp_path / "manifest.csv").open() as handle:
        assert list(csv.reader(handle)) == [
            ["patient", "case"], ["MARINOVA-2026-NPC", "MARINOVA-2026-NPC/case.yaml"]
        ]  # fmt: skip
    (entry,) = read_manifest(tmp_path / "manifest.csv")
    assert load_case(entry.case).courses[1].start == dt.date(2025, 5, 27)


def test_manifest_yaml_with_a_registry_section(registry, tmp_path):
    manifest = tmp_path / "cohort.yaml"
    manifest.write_text("registry:\n  site: nasopharynx\n  start_from: 2023-01-01\n")
    with pytest.raises(InputError, match="registry query"):
        read_manifest(manifest)  # a case-file reader does not silently read it as empty
    call_command("export_cohort", str(tmp_path / "cases"), "--manifest", str(manifest))
    assert [e.patient for e in read_manifest(tmp_path / "cases" / "manifest.csv")] == [
        "MARINOVA-2026-NPC"
    ]


def test_bad_queries_are_refused_with_the_field(registry, tmp_path):
    with pytest.raises(InputError, match="registry.start_from"):
        parse_registry_query("start_from=May 2025")
    with pytest.raises(InputError, match="unknown key"):
        parse_registry_query("organ=parotid")
    with pytest.raises(InputError, match="no registry patient matches"):
        export_cohort(parse_registry_query("site=larynx"), tmp_path)
    with pytest.raises(CommandError, match="follow_up=yes"):
        call_command("export_cohort", str(tmp_path), "--query", "follow_up=maybe")


def test_same_identifier_in_two_departments_is_refused(registry, other_department, tmp_path):
    import_case(NPC_CASE, other_department)
    with pytest.raises(InputError, match="add department="):
        export_cohort(RegistryQuery(site="nasopharynx"), tmp_path)
    named = export_cohort(RegistryQuery(site="nasopharynx", department="Radiotherapy B"), tmp_path)
    assert [e.patient for e in named] == ["MARINOVA-2026-NPC"]
