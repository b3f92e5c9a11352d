"""NTCP/TCP models against values worked out by hand from the published formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reirrad.core.ntcp import (
    EQD2_ASSUMPTION,
    cumulative_to_differential,
    geud,
    lkb_ntcp,
    logit_ntcp,
    ntcp_from_parameter_set,
    poisson_tcp,
    relative_seriality_ntcp,
)
from reirrad.errors import InputError
from reirrad.io.ntcp_data import load_ntcp_parameter_sets

PHI_1 = 0.8413447460685429  # standard normal CDF at 1 (tables: 0.84134)


def test_lkb_uniform_at_td50_is_half():
    r = lkb_ntcp([66.5], [1.0], td50_gy=66.5, m=0.175, n=0.05)
    assert r.probability == pytest.approx(0.5, abs=1e-12)
    assert r.geud_gy == pytest.approx(66.5)
    assert EQD2_ASSUMPTION in r.assumptions


def test_lkb_one_slope_unit_above_td50_is_phi_1():
    td50, m = 107.84, 0.16
    r = lkb_ntcp(np.full(10, td50 * (1 + m)), td50_gy=td50, m=m, n=0.04)
    assert r.probability == pytest.approx(PHI_1, abs=1e-12)


def test_lkb_partial_volume_scaling():
    # Uniform dose to a quarter of the organ: NTCP = 0.5 at TD50(v) = TD50(1) v^-n.
    td50, m, n, v = 46.0, 0.18, 0.7, 0.25
    dose = td50 * v**-n
    r = lkb_ntcp([dose, 0.0], [v, 1 - v], td50_gy=td50, m=m, n=n)
    assert r.probability == pytest.approx(0.5, abs=1e-12)
    # and one slope unit above TD50(v): t = (D - TD50(v))/(m TD50(v)) = 1
    r = lkb_ntcp([dose * (1 + m), 0.0], [v, 1 - v], td50_gy=td50, m=m, n=n)
    assert r.probability == pytest.approx(PHI_1, abs=1e-12)


def test_geud_two_bins_by_hand():
    # (0.25*10^2 + 0.75*20^2)^(1/2) = sqrt(325)
    assert geud([10.0, 20.0], [1.0, 3.0], n=0.5) == pytest.approx(math.sqrt(325.0), rel=1e-14)


def test_geud_n1_is_mean_dose():
    assert geud([10.0, 20.0, 40.0], [1.0, 1.0, 2.0], n=1.0) == pytest.approx(27.5, rel=1e-14)


def test_geud_voxels_equal_weights_and_small_n():
    assert geud(np.array([[10.0, 30.0], [20.0, 40.0]]), n=1.0) == pytest.approx(25.0)
    # n -> 0 tends to the maximum; 1/n = 100 must not overflow
    value = geud([100.0, 150.0], [1.0, 1.0], n=0.01)
    assert value == pytest.approx(150.0 * 0.5**0.01, rel=1e-12)


def test_logit_at_td50_and_at_three_to_one_odds():
    assert logit_ntcp([39.9], td50_gy=39.9, gamma50=1.0, n=1.0).probability == pytest.approx(0.5)
    # (TD50/gEUD)^(4 g) = 1/3  =>  NTCP = 1/(1 + 1/3) = 0.75
    td50, g = 50.0, 2.0
    dose = td50 * 3.0 ** (1.0 / (4.0 * g))
    assert logit_ntcp([dose], td50_gy=td50, gamma50=g, n=0.3).probability == pytest.approx(0.75)
    assert logit_ntcp([0.0], td50_gy=td50, gamma50=g, n=1.0).probability == 0.0


def test_relative_seriality_s1_by_hand():
    d50, gamma = 50.0, 2.0
    p40 = 2.0 ** (-math.exp(math.e * gamma * (1 - 40.0 / d50)))
    p60 = 2.0 ** (-math.exp(math.e * gamma * (1 - 60.0 / d50)))
    expected = 1.0 - (1.0 - p40) ** 0.5 * (1.0 - p60) ** 0.5
    r = relative_seriality_ntcp([40.0, 60.0], [2.0, 2.0], d50_gy=d50, gamma=gamma, s=1.0)
    assert r.probability == pytest.approx(expected, rel=1e-12)


def test_relative_seriality_uniform_d50_is_half_for_any_s():
    # P(D50) = 2^-1 and (1 - (1 - 0.5^s))^(1/s) = 0.5
    for s in (0.05, 0.5, 1.0, 3.0):
        r = relative_seriality_ntcp([57.0] * 3, d50_gy=57.0, gamma=6.7, s=s)
        assert r.probability == pytest.approx(0.5, rel=1e-12)


def test_poisson_tcp_uniform_by_hand():
    eqd2, alpha, ab, n0 = 60.0, 0.3, 10.0, 1e7
    bed = eqd2 * (1 + 2 / ab)  # 72 Gy
    expected = math.exp(-n0 * math.exp(-alpha * bed))
    r = poisson_tcp(np.full(5, eqd2), alpha_per_gy=alpha, alpha_beta_gy=ab, clonogens=n0)
    assert r.probability == pytest.approx(expected, rel=1e-12)


def test_poisson_tcp_two_compartments_by_hand():
    # half the clonogens at 70 Gy, half at 50 Gy EQD2
    alpha, ab, n0 = 0.25, 10.0, 1e8
    surviving = n0 * 0.5 * (math.exp(-alpha * 84.0) + math.exp(-alpha * 60.0))
    r = poisson_tcp([70.0, 50.0], [3.0, 3.0], alpha_per_gy=alpha, alpha_beta_gy=ab, clonogens=n0)
    assert r.probability == pytest.approx(math.exp(-surviving), rel=1e-12)


def test_cumulative_to_differential():
    centres, vols = cumulative_to_differential([0, 10, 20, 30], [100, 80, 30, 5])
    np.testing.assert_allclose(centres, [5, 15, 25, 30])
    np.testing.assert_allclose(vols, [20, 50, 25, 5])


def test_bad_inputs_raise_input_error():
    with pytest.raises(InputError):
        geud([1.0, 2.0], [1.0], n=1.0)
    with pytest.raises(InputError):
        geud([-1.0], n=1.0)
    with pytest.raises(InputError):
        lkb_ntcp([10.0], td50_gy=0.0, m=0.1, n=0.1)


def test_packaged_parameter_sets():
    sets = load_ntcp_parameter_sets()
    tl = sets["temporal_lobe_reirradiation_npc_lkb"]
    assert dict(tl.parameters) == {"td50_gy": 107.84, "m": 0.16, "n": 0.04}
    cord = sets["spinal_cord_burman1991_lkb"]
    assert dict(cord.parameters) == {"td50_gy": 66.5, "m": 0.175, "n": 0.05}
    for s in sets.values():
        assert s.citation and s.evidence
    r = ntcp_from_parameter_set(tl, [107.84], [1.0])
    assert r.probability == pytest.approx(0.5)
    assert "Lyman" in r.citation and "Temporal Lobe" in r.citation
    assert r.evidence == tl.evidence


# ------------------------------------------------------- NTCP of a voxel-wise assessment


class _DVH:
    """A differential DVH (bin centres in Gy, bin volumes), as the DVH class exposes it."""

    def __init__(self, centres, volumes):
        self.differential = (np.asarray(centres, float), np.asarray(volumes, float))


def _voxel(*structures):
    from types import SimpleNamespace

    return SimpleNamespace(structures=tuple(structures))


def _structure(name, organ, alpha_beta, with_recovery, without_recovery):
    from types import SimpleNamespace

    return SimpleNamespace(
        name=name,
        organ=organ,
        alpha_beta=alpha_beta,
        dvh=_DVH(*with_recovery),
        dvh_no_recovery=_DVH(*without_recovery),
    )


def test_structure_ntcp_lkb_by_hand():
    from reirrad.core.ntcp import structure_ntcp

    cord = load_ntcp_parameter_sets()["spinal_cord_burman1991_lkb"]  # TD50 66.5, m .175, n .05
    # with recovery: half the cord at D1, half at 0 Gy -> gEUD = 0.5^n D1 = TD50: NTCP 1/2;
    # without recovery: the whole cord at TD50 (1 + m) -> t = 1: NTCP Phi(1)
    d1 = 66.5 / 0.5**0.05
    empty_bin = 0.0  # an empty bin is dropped, a bin at 0 Gy with volume is kept
    s = _structure(
        "SpinalCanal",
        "spinal_cord",
        2.0,
        ([0.0, 30.0, d1], [2.0, empty_bin, 2.0]),
        ([66.5 * 1.175], [4.0]),
    )
    other = _structure("Lens", "lens", 1.0, ([5.0], [1.0]), ([5.0], [1.0]))
    items = structure_ntcp(_voxel(other, s), [cord])
    assert [(i.structure, i.variant) for i in items] == [
        ("SpinalCanal", "with recovery"),
        ("SpinalCanal", "without recovery"),
    ]
    assert items[0].geud_gy == pytest.approx(66.5, rel=1e-12)
    assert items[0].probability == pytest.approx(0.5, abs=1e-12)
    assert items[1].geud_gy == pytest.approx(78.1375, rel=1e-12)
    assert items[1].probability == pytest.approx(PHI_1, rel=1e-12)
    first = items[0]
    assert first.parameter_set == "spinal_cord_burman1991_lkb"
    assert first.parameters_text == "TD50 66.5 Gy, m 0.175, n 0.05"
    assert first.endpoint == cord.endpoint
    assert first.citation == cord.citation and first.evidence == cord.evidence
    assert EQD2_ASSUMPTION in first.assumptions
    assert first.notes == ()  # the set states no alpha/beta


def test_structure_ntcp_matching_and_alpha_beta_note():
    from reirrad.core.ntcp import NTCPParameterSet, organ_matches, structure_ntcp

    assert organ_matches("parotid gland", None, "Parotid")  # name, first word of the organ
    assert organ_matches("spinal cord", "spinal_cord", "Cord PRV")
    assert not organ_matches("spinal cord", "cord", "x")  # a prefix of words, not a suffix
    assert not organ_matches("parotid gland", None, "Parotid_L")
    # mean-dose parotid set (n = 1): gEUD is the mean dose; uniform 39.9 Gy gives 1/2
    pset = NTCPParameterSet(
        key="test_parotid",
        model="lkb",
        organ="parotid gland",
        endpoint="xerostomia",
        parameters={"td50_gy": 39.9, "m": 0.4, "n": 1.0},
        citation="test",
        evidence="test",
        alpha_beta_gy=3.0,
    )
    s = _structure("Parotid", None, 2.0, ([20.0, 59.8], [1.0, 1.0]), ([39.9], [7.0]))
    items = structure_ntcp(_voxel(s), [pset])
    assert [i.geud_gy for i in items] == pytest.approx([39.9, 39.9], rel=1e-12)
    assert [i.probability for i in items] == pytest.approx([0.5, 0.5], abs=1e-12)
    assert items[0].notes == (
        "Parotid: the EQD2 uses alpha/beta 2 Gy; the parameter source states 3 Gy",
    )
    assert structure_ntcp(_voxel(s), []) == ()


def test_structure_ntcp_without_volume_says_so():
    from reirrad.core.ntcp import structure_ntcp

    cord = load_ntcp_parameter_sets()["spinal_cord_burman1991_lkb"]
    s = _structure("Cord", "spinal_cord", 2.0, ([1.0], [0.0]), ([1.0], [0.0]))
    items = structure_ntcp(_voxel(s), [cord])
    assert [i.probability for i in items] == [None, None]
    assert "no NTCP" in items[0].notes[-1]
