"""Constraint library: evaluation rules, packaged data, YAML loader and CLI.

Published values are checked against the abstracts quoted in docs/constraints.md (Nieder
2006, Sahgal 2012, Guan 2024, Embring 2021, Deasy 2010, Kirkpatrick 2010, Mayo 2010) and
against the case report (Marinova et al. 2026).
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import yaml

from reirrad.cli import main
from reirrad.core.constraints import KNOWN_ORGANS, Constraint, evaluate
from reirrad.core.metrics import parse_metric
from reirrad.errors import InputError
from reirrad.io.constraint_sets import available_constraint_sets, load_constraint_set

PACKAGED = ("marinova2026", "quantec-head-neck", "reirradiation")


def make(**changes) -> Constraint:
    base = Constraint(
        id="test-limit",
        organ="spinal_cord",
        metric="Dmax",
        quantity="eqd2",
        scope="cumulative",
        comparator="<",
        limit=50.0,
        alpha_beta_gy=2.0,
        recovery_credit=False,
        min_interval_days=None,
        tier=None,
        endpoint="myelopathy",
        source="test",
        evidence="test",
    )
    return replace(base, **changes)


# --- evaluate() -----------------------------------------------------------------------------


def test_strict_upper_limit_fails_at_equality():
    result = evaluate(make(comparator="<"), 50.0)
    assert result.status == "fail"
    assert result.margin == 0.0


def test_inclusive_upper_limit_passes_at_equality():
    result = evaluate(make(comparator="<="), 50.0)
    assert result.status == "pass"
    assert result.margin == 0.0


def test_upper_limit_margin_sign():
    assert evaluate(make(), 45.0).margin == pytest.approx(5.0)
    below = evaluate(make(), 45.0)
    above = evaluate(make(), 52.5)
    assert below.status == "pass" and below.warnings == ()
    assert above.status == "fail" and above.margin == pytest.approx(-2.5)


def test_lower_limits_for_target_coverage():
    assert evaluate(make(comparator=">="), 50.0).status == "pass"
    assert evaluate(make(comparator=">"), 50.0).status == "fail"
    result = evaluate(make(comparator=">="), 53.0)
    assert result.status == "pass" and result.margin == pytest.approx(3.0)
    assert evaluate(make(comparator=">="), 49.0).margin == pytest.approx(-1.0)


def test_interval_shorter_than_validated_fails_with_warning():
    constraint = make(comparator="<=", min_interval_days=182.6)
    result = evaluate(constraint, 10.0, interval_days=100)
    assert result.status == "fail"
    assert result.margin == pytest.approx(40.0)  # the dose itself is within the limit
    assert len(result.warnings) == 1
    assert "limit not validated for intervals < 182.6 days" in result.warnings[0]


def test_unknown_interval_fails_conservatively():
    result = evaluate(make(min_interval_days=182.6), 10.0)
    assert result.status == "fail"
    assert "unknown" in result.warnings[0]
    assert "limit not validated for intervals < 182.6 days" in result.warnings[0]


def test_interval_at_or_above_minimum_passes():
    constraint = make(min_interval_days=182.6)
    assert evaluate(constraint, 10.0, interval_days=182.6).status == "pass"
    assert evaluate(constraint, 10.0, interval_days=700).warnings == ()
    # The interval is irrelevant when the constraint has no interval condition.
    assert evaluate(make(), 10.0, interval_days=1).status == "pass"


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_value_is_input_error(value):
    with pytest.raises(InputError):
        evaluate(make(), value)


def test_negative_interval_is_input_error():
    with pytest.raises(InputError):
        evaluate(make(min_interval_days=10), 1.0, interval_days=-1)


@pytest.mark.parametrize(
    "changes",
    [
        {"metric": "D95"},
        {"organ": "Spinal Cord"},
        {"quantity": "eqd3"},
        {"scope": "total"},
        {"comparator": "=="},
        {"limit": 0.0},
        {"limit": float("nan")},
        {"alpha_beta_gy": -2.0},
        {"quantity": "physical"},  # physical dose with an alpha/beta
        {"source": " "},
        {"evidence": ""},
        {"min_interval_days": -1.0},
    ],
)
def test_invalid_constraint_is_input_error(changes):
    with pytest.raises(InputError):
        make(**changes)


def test_alpha_beta_for():
    assert make(alpha_beta_gy=2.0).alpha_beta_for(3.0) == 2.0
    assert make(alpha_beta_gy=None).alpha_beta_for(3.0) == 3.0


# --- packaged data ------------------------------------------------------------------------


def test_packaged_sets_available():
    assert set(PACKAGED) <= set(available_constraint_sets())


def all_packaged():
    return [c for name in PACKAGED for c in load_constraint_set(name).constraints]


def test_every_packaged_constraint_is_documented_and_parses():
    constraints = all_packaged()
    assert len(constraints) >= 20
    ids = [c.id for c in constraints]
    assert len(ids) == len(set(ids)), "constraint ids must be unique across packaged sets"
    for c in constraints:
        assert c.source.strip() and c.evidence.strip() and c.endpoint.strip(), c.id
        parse_metric(c.metric)
        assert c.organ in KNOWN_ORGANS, c.id
        if "not verified" in c.evidence:
            # what is unverified is said, with what was assumed instead
            assert "assumption" in c.evidence or "verified from" in c.evidence, c.id


def test_set_metadata():
    for name in PACKAGED:
        constraint_set = load_constraint_set(name)
        assert constraint_set.id == name
        assert constraint_set.title and constraint_set.source


def test_nieder_2006_values():
    # Nieder et al. 2006 abstract: <= 135.5 Gy2 cumulative, interval >= 6 months, each
    # course <= 98 Gy2, BED with alpha/beta 2 Gy for the cervical and thoracic cord.
    rs = load_constraint_set("reirradiation")
    cumulative = rs.get("nieder2006-cord-cumulative-bed")
    course = rs.get("nieder2006-cord-course-bed")
    assert (cumulative.limit, cumulative.comparator, cumulative.quantity) == (135.5, "<=", "bed")
    assert (course.limit, course.scope) == (98.0, "course")
    for c in (cumulative, course):
        assert c.alpha_beta_gy == 2.0
        assert c.recovery_credit is False
        assert c.min_interval_days == pytest.approx(6 * 365.25 / 12, abs=0.05)


def test_sahgal_guan_embring_values():
    rs = load_constraint_set("reirradiation")
    sahgal = rs.get("sahgal2012-cord-cumulative-eqd2")
    assert (sahgal.limit, sahgal.quantity, sahgal.alpha_beta_gy) == (70.0, "eqd2", 2.0)
    assert sahgal.min_interval_days == pytest.approx(5 * 365.25 / 12, abs=0.05)
    td5 = rs.get("guan2024-temporal-lobe-td5")
    td50 = rs.get("guan2024-temporal-lobe-td50")
    assert (td5.limit, td5.tier, td5.metric, td5.alpha_beta_gy) == (65.26, "TD5", "D1.5cc", 3.0)
    assert (td50.limit, td50.tier) == (125.25, "TD50")
    carotid = rs.get("embring2021-carotid-cumulative-dmax")
    assert (carotid.organ, carotid.metric, carotid.limit) == ("internal_carotid", "Dmax", 119.0)


def test_marinova_values():
    ms = load_constraint_set("marinova2026")
    expected = {
        "parotid": 26,
        "submandibular": 26,
        "pharyngeal_constrictors": 55,
        "oral_mucosa": 30,
        "pharyngeal_mucosa": 30,
        "internal_carotid": 40,
    }
    for organ, limit in expected.items():
        (constraint,) = ms.for_organ(organ)
        assert constraint.metric == "Dmean"
        assert constraint.comparator == "<"
        assert constraint.limit == limit


def test_quantec_values():
    qs = load_constraint_set("quantec-head-neck")
    assert qs.get("quantec-parotid-dmean-both").limit == 25  # Deasy et al. 2010
    assert qs.get("quantec-parotid-dmean-one").limit == 20
    assert qs.get("quantec-spinal-cord-dmax-54").limit == 54  # Kirkpatrick et al. 2010
    assert qs.get("quantec-brainstem-dmax-whole").limit == 54  # Mayo et al. 2010
    assert qs.get("quantec-brainstem-d1cc").limit == 59
    for c in qs.constraints:
        assert c.quantity == "eqd2" and c.alpha_beta_gy is None


# --- loader ---------------------------------------------------------------------------------


def write_set(tmp_path, limits, **top):
    data = {"id": "mine", "title": "My limits", "source": "me", "limits": limits, **top}
    path = tmp_path / "my-set.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def good_limit(i: int = 0) -> dict:
    return {
        "id": f"l{i}",
        "organ": "parotid",
        "metric": "Dmean",
        "quantity": "eqd2",
        "scope": "cumulative",
        "comparator": "<",
        "limit": 26,
        "recovery_credit": True,
        "endpoint": "xerostomia",
        "source": "somewhere",
        "evidence": "expert opinion",
    }


def test_user_file_loads(tmp_path):
    path = write_set(tmp_path, [good_limit(0), good_limit(1)])
    loaded = load_constraint_set(path)
    assert loaded.id == "mine" and len(loaded.constraints) == 2
    assert loaded.constraints[0].alpha_beta_gy is None  # optional fields default to null
    assert load_constraint_set(str(path)).origin == str(path)


def test_bad_limit_names_file_and_field(tmp_path):
    limits = [good_limit(i) for i in range(4)]
    limits[3]["limit"] = -1
    path = write_set(tmp_path, limits)
    with pytest.raises(InputError) as info:
        load_constraint_set(path)
    assert str(info.value) == f"{path}: limits[3].limit: must be > 0"


@pytest.mark.parametrize(
    ("mutate", "field", "words"),
    [
        (lambda d: d.update(metric="D95"), "limits[0].metric", "not a metric"),
        (lambda d: d.pop("source"), "limits[0].source", "required"),
        (lambda d: d.update(evidence=""), "limits[0].evidence", "empty"),
        (lambda d: d.update(colour="red"), "limits[0].colour", "unknown field"),
        (lambda d: d.update(quantity="eqd3"), "limits[0].quantity", "must be one of"),
        (lambda d: d.update(organ="Parotid L"), "limits[0].organ", "lower-case"),
        (lambda d: d.update(quantity="physical", alpha_beta_gy=3), "limits[0]", "alpha/beta"),
    ],
)
def test_field_errors(tmp_path, mutate, field, words):
    limit = good_limit()
    mutate(limit)
    path = write_set(tmp_path, [limit])
    with pytest.raises(InputError) as info:
        load_constraint_set(path)
    assert info.value.source == str(path)
    assert info.value.field == field
    assert words in info.value.problem


def test_duplicate_ids(tmp_path):
    path = write_set(tmp_path, [good_limit(0), good_limit(0)])
    with pytest.raises(InputError, match=r"limits\[1\]\.id: duplicate"):
        load_constraint_set(path)


def test_invalid_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: [unclosed\n", encoding="utf-8")
    with pytest.raises(InputError, match="not valid YAML"):
        load_constraint_set(bad)
    with pytest.raises(InputError, match="no constraint set"):
        load_constraint_set("no-such-set")
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just text\n", encoding="utf-8")
    with pytest.raises(InputError, match="mapping"):
        load_constraint_set(scalar)


# --- CLI ------------------------------------------------------------------------------------


def test_cli_list_all_table(capsys):
    assert main(["constraints", "list"]) == 0
    out = capsys.readouterr().out
    for name in PACKAGED:
        assert name in out
    assert "nieder2006-cord-cumulative-bed" in out


def test_cli_list_json(capsys):
    assert main(["constraints", "list", "--set", "reirradiation", "--format", "json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload[0]["id"] == "reirradiation"
    limits = {c["id"]: c for c in payload[0]["constraints"]}
    assert limits["nieder2006-cord-cumulative-bed"]["limit"] == 135.5


def test_cli_list_user_file(tmp_path, capsys):
    path = write_set(tmp_path, [good_limit()])
    assert main(["constraints", "list", "--set", str(path)]) == 0
    assert "mine" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["constraints", "list", "--set", "nope"],
        ["constraints", "list", "--format", "xml"],
    ],
)
def test_cli_bad_input(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("reirrad: error: ") and "\n" not in err


def test_cli_bad_user_file(tmp_path, capsys):
    limit = good_limit()
    limit["limit"] = 0
    path = write_set(tmp_path, [limit])
    assert main(["constraints", "list", "--set", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"reirrad: error: {path}: limits[0].limit: must be > 0"
