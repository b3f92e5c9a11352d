"""Cohorts from the registry: select patients by a query and export their case folders.

The cohort pipeline (:mod:`reirrad.pipelines.cohort`) runs case files and knows nothing of
Django; this adapter, in the web layer, turns a :class:`~reirrad.io.cohort_manifest.RegistryQuery`
into cohort entries by exporting every selected patient through the registry's own, audited
export (:func:`reirrad.web.registry.casefile.export_case`) into ``DIRECTORY/<patient>/``.
Re-exporting an unchanged patient writes the same bytes, so its resume key is unchanged and
a re-run skips it.

The CLI does not import the web layer (tests/test_architecture.py): ``reirrad cohort run
--registry`` runs the management command ``python -m reirrad.web export_cohort`` in a child
process, which calls :func:`write_cohort_manifest` and leaves a ``manifest.csv`` the cohort
pipeline reads like any other.
"""

from __future__ import annotations

import csv
from pathlib import Path

from reirrad.errors import InputError
from reirrad.io.cohort_manifest import (
    CohortEntry,
    RegistryQuery,
    check_entries,
    check_identifier,
)

__all__ = ["export_cohort", "select_patients", "write_cohort_manifest"]


def select_patients(query: RegistryQuery):
    """The registry patients matching every criterion of ``query``, by identifier."""
    from django.db.models import Q

    from reirrad.web.registry.models import Patient

    patients = Patient.objects.select_related("department")
    if query.department is not None:
        patients = patients.filter(department__name=query.department)
    if query.site is not None:
        patients = patients.filter(diagnosis__site__iexact=query.site)
    if query.start_from is not None:
        patients = patients.filter(courses__start__gte=query.start_from)
    if query.start_to is not None:
        patients = patients.filter(courses__start__lte=query.start_to)
    if query.follow_up is not None:
        # the follow-up record: response and toxicity observations (either counts)
        with_follow_up = patients.filter(Q(responses__isnull=False) | Q(toxicities__isnull=False))
        patients = (
            with_follow_up
            if query.follow_up
            else patients.exclude(pk__in=with_follow_up.values("pk"))
        )
    return patients.distinct().order_by("identifier", "department__name")


def export_cohort(
    query: RegistryQuery, directory: str | Path, source: str = "registry"
) -> tuple[CohortEntry, ...]:
    """Export every selected patient's case folder under ``directory``; the cohort's entries.

    The cohort names a patient by its registry identifier; identifiers are unique only
    within a department, so a selection holding the same identifier twice is refused
    (narrow it with ``department=``) rather than renamed silently.
    """
    from reirrad.web.registry.casefile import export_case

    directory = Path(directory)
    patients = list(select_patients(query))
    if not patients:
        raise InputError("no registry patient matches the query", source=source)
    entries: list[CohortEntry] = []
    seen: dict[str, str] = {}
    for patient in patients:
        name = patient.identifier
        if name in seen:
            raise InputError(
                f"patient {name!r} is in departments {seen[name]!r} and "
                f"{patient.department.name!r}; add department=... to the query",
                source=source,
            )  # fmt: skip
        seen[name] = patient.department.name
        check_identifier(name, source, f"patient {name}")  # it names a folder: check first
        entries.append(CohortEntry(name, export_case(patient, directory / name).resolve()))
    return check_entries(entries, source)


def write_cohort_manifest(query: RegistryQuery, directory: str | Path, source: str) -> Path:
    """Export the selected patients and write ``DIRECTORY/manifest.csv`` (patient,case)."""
    directory = Path(directory)
    entries = export_cohort(query, directory, source)
    path = directory / "manifest.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["patient", "case"])
        writer.writerows([e.patient, e.case.relative_to(directory.resolve())] for e in entries)
    return path
