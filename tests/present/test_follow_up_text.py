"""Follow-up texts for the report: the case report's observations, dated from its courses."""

from pathlib import Path

from reirrad.io.casefile import load_case
from reirrad.present.follow_up import (
    follow_up_schedule,
    response_to_initial_course,
    structure_outcomes,
    toxicity_summary,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "npc-reirradiation-2026.yaml"


def test_case_report_follow_up_texts():
    case = load_case(EXAMPLE)
    outcomes = structure_outcomes(case)
    assert outcomes["Nasopharyngeal and pharyngeal mucosa"].startswith("Pharyngeal mucositis G3")
    assert outcomes["Right parotid gland"].startswith("Dry mouth G2")
    assert "Recurrence" not in outcomes
    # "After 6 months of RT, a control PET/CT ... local tumor control"; IMRT ended 2024-02-13
    initial = response_to_initial_course(case)
    assert "local tumour control (2024-08-13, 6.0 months after IMRT)" in initial
    # "PET/CT after 3 months from the RS": 2025-09-11 is 104 days after 2025-05-30
    schedule = follow_up_schedule(case)
    assert schedule.startswith("PET/CT 2025-09-11 (3.4 months after HFRS")
    assert toxicity_summary(case).startswith("Pharyngeal mucositis G3")
