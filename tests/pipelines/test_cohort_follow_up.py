"""The follow-up record in the cohort tables: the case report's observations, as Parquet."""

from pathlib import Path

import pytest

from reirrad.io import cohort_store as store
from reirrad.pipelines.cohort_tables import TABLES, case_run_rows
from reirrad.pipelines.run import run_case

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "npc-reirradiation-2026.yaml"


@pytest.fixture(scope="module")
def rows():
    return case_run_rows("NPC", run_case(EXAMPLE))


def test_toxicity_rows_join_organs_to_their_doses(rows):
    toxicity = {r["structure"]: r for r in rows["toxicity"] if r["structure"]}
    mucosa = toxicity["Nasopharyngeal and pharyngeal mucosa"]
    # Tables 1-2 of the case report: "mucositis - III degree"
    assert (mucosa["term"], mucosa["grade"], mucosa["organ"]) == (
        "Pharyngeal mucositis",
        3.0,
        "pharyngeal_mucosa",
    )
    assert (
        toxicity["Levator and tensor veli palatini / pharyngeal constrictor muscles"]["grade"]
        is None
    )
    doses = {r["structure"] for r in rows["structure_courses"]}
    assert set(toxicity) <= doses  # every organ with a toxicity has its dose rows
    assert len(rows["toxicity"]) == 7


def test_response_rows_are_dated_from_the_last_course(rows):
    # "PET/CT after 3 months from the RS": 11.09.2025, 104 days after HFRS ended 30.05.2025
    pet = [r for r in rows["response"] if r["suv_max"] == 9.79]
    assert len(pet) == 1 and pet[0]["days_after_last_course"] == 104
    assert pet[0]["size_mm"] == "28x24"


def test_follow_up_tables_write_and_read_as_parquet(rows, tmp_path):
    for table in ("toxicity", "response"):
        store.write_part(tmp_path, table, "NPC", rows[table], TABLES[table])
        back = store.read_parts(tmp_path, table, TABLES[table])
        assert len(back) == len(rows[table])
