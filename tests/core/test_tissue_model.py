"""The tissue model and the voxel-wise engine on synthetic grids (exact answers).

Tissue model (``reirrad.core.tissue``): a voxel belongs to a structure when at least half of
it is inside (else a structure too thin for that owns its largest-occupancy voxels); it takes
the tissue of the structures of lowest rank it belongs to, the lowest alpha/beta and,
independently, the least recovery among them; the external contour only replaces the default.
Every expected map below is written out by hand from that rule.

Engine (``reirrad.core.accumulate``): per voxel, per course ``c`` and phase ``p`` of ``n_p``
fractions, ``BED = D (1 + D / (n a/b))`` and ``EQD2 = BED / (1 + 2 / (a/b))`` (Fowler JF,
Br J Radiol 1989;62:679-694; Bentzen SM et al., Radiother Oncol 2012;105:266-268), an
earlier course weighted ``(1 - s f_c)``. Expected values are worked by hand in the comments.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reirrad.core.accumulate import (
    CoursePhysical,
    course_effective,
    cumulative_maps,
    effective_sum,
)
from reirrad.core.tissue import (
    DEFAULT_RANK,
    Tissue,
    TissueRegion,
    build_tissue_model,
    membership,
    structure_tissue,
)
from reirrad.errors import InputError

FULL = (slice(None), slice(None), slice(None))
COURSES = ("c1",)


def _line(values) -> np.ndarray:
    """A (1, 1, n) array: a row of voxels."""
    return np.asarray(values, dtype=float)[None, None, :]


def _region(name, role, alpha_beta, f, occupancy) -> TissueRegion:
    occupancy = _line(occupancy)
    return TissueRegion(name, role, Tissue(alpha_beta, {"c1": f}), FULL, membership(occupancy))


DEFAULT = Tissue(1.5, {"c1": 0.3})


# --------------------------------------------------------------------------------------
# Membership
# --------------------------------------------------------------------------------------


def test_membership_half_a_voxel_or_the_largest_occupancy():
    np.testing.assert_array_equal(
        membership(_line([0.0, 0.2, 0.5, 0.9, 0.49])), _line([0, 0, 1, 1, 0]).astype(bool)
    )
    # thinner than half a voxel everywhere: owns the voxels where it is largest (both 0.3)
    np.testing.assert_array_equal(
        membership(_line([0.0, 0.3, 0.1, 0.3, 0.05])), _line([0, 1, 0, 1, 0]).astype(bool)
    )
    assert not membership(_line([0.0, 0.0])).any()  # nothing inside: owns nothing


# --------------------------------------------------------------------------------------
# The rules on hand-built overlaps
# --------------------------------------------------------------------------------------

#: Ten voxels: BODY owns 1..8, Organ 2..7, Target 4..5; 0 and 9 are in no structure.
BODY = [0, 1, 1, 1, 1, 1, 1, 1, 1, 0]
ORGAN = [0, 0, 1, 1, 1, 1, 1, 1, 0, 0]
TARGET = [0, 0, 0, 0, 1, 1, 0, 0, 0, 0]


def _nested(order=(0, 1, 2)):
    regions = [
        _region("Target", "target", 10.0, 0.0, TARGET),
        _region("Organ", "organ_at_risk", 3.0, 0.4, ORGAN),
        # BODY has the lowest alpha/beta: it must still override nothing
        _region("BODY", "external", 2.0, 0.2, BODY),
    ]
    return [regions[i] for i in order]


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 2, 0)])
def test_target_in_organ_in_external_targets_first(order):
    model = build_tissue_model((1, 1, 10), _nested(order), DEFAULT, courses=COURSES)
    d, b, o, t = 1.5, 2.0, 3.0, 10.0
    np.testing.assert_array_equal(model.alpha_beta[0, 0], [d, b, o, o, t, t, o, o, b, d])
    d, b, o, t = 0.3, 0.2, 0.4, 0.0
    np.testing.assert_allclose(model.recovered["c1"][0, 0], [d, b, o, o, t, t, o, o, b, d])
    np.testing.assert_array_equal(model.target[0, 0], [0, 0, 0, 0, 1, 1, 0, 0, 0, 0])
    big = DEFAULT_RANK
    np.testing.assert_array_equal(model.rank[0, 0], [big, 2, 1, 1, 0, 0, 1, 1, 2, big])
    assert model.rule == "targets_first"
    assert "external contour only replaces the default" in model.description


def test_target_in_organ_most_conservative():
    """Target and organ rank together: inside the target the lowest alpha/beta (the organ's
    3 Gy) and, independently, the least recovery (the target's 0); BODY still only replaces
    the default although its alpha/beta (2 Gy) is the lowest of all."""
    model = build_tissue_model((1, 1, 10), _nested(), DEFAULT, "most_conservative", courses=COURSES)
    np.testing.assert_array_equal(model.alpha_beta[0, 0], [1.5, 2, 3, 3, 3, 3, 3, 3, 2, 1.5])
    np.testing.assert_allclose(
        model.recovered["c1"][0, 0], [0.3, 0.2, 0.4, 0.4, 0, 0, 0.4, 0.4, 0.2, 0.3]
    )
    big = DEFAULT_RANK
    np.testing.assert_array_equal(model.rank[0, 0], [big, 1, 0, 0, 0, 0, 0, 0, 1, big])


def test_two_organs_lowest_alpha_beta_and_least_recovery_independently():
    # A owns 0..2, B owns 2..3 (0.3 at voxel 4 is less than half: not B's)
    a = _region("A", "organ_at_risk", 2.0, 0.5, [1, 1, 1, 0, 0, 0])
    b = _region("B", "organ_at_risk", 3.0, 0.1, [0, 0, 1, 1, 0.3, 0])
    for rule in ("targets_first", "most_conservative"):
        for regions in ([a, b], [b, a]):
            model = build_tissue_model((1, 1, 6), regions, DEFAULT, rule, courses=COURSES)
            # voxel 2 in both: alpha/beta from A (2), recovery from B (0.1)
            np.testing.assert_array_equal(model.alpha_beta[0, 0], [2, 2, 2, 3, 1.5, 1.5])
            np.testing.assert_allclose(model.recovered["c1"][0, 0], [0.5, 0.5, 0.1, 0.1, 0.3, 0.3])


def test_priority_list():
    a = _region("A", "organ_at_risk", 2.0, 0.5, [1, 1, 1, 0, 0, 0])
    b = _region("B", "organ_at_risk", 3.0, 0.1, [0, 0, 1, 1, 0, 0])
    for regions in ([a, b], [b, a]):
        model = build_tissue_model((1, 1, 6), regions, DEFAULT, ["B", "A"], courses=COURSES)
        np.testing.assert_array_equal(model.alpha_beta[0, 0], [2, 2, 3, 3, 1.5, 1.5])
        np.testing.assert_allclose(model.recovered["c1"][0, 0], [0.5, 0.5, 0.1, 0.1, 0.3, 0.3])
        assert model.rule == "priority" and "priority order B > A" in model.description
        # only A listed: A first, B after it
        model = build_tissue_model((1, 1, 6), regions, DEFAULT, ["A"], courses=COURSES)
        np.testing.assert_array_equal(model.alpha_beta[0, 0], [2, 2, 2, 3, 1.5, 1.5])
        np.testing.assert_allclose(model.recovered["c1"][0, 0], [0.5, 0.5, 0.5, 0.1, 0.3, 0.3])


def test_priority_list_organ_over_target_and_external_never_over_anything():
    # the organ listed first wins over the (unlisted) target; BODY listed first still only
    # replaces the default
    for rule in (["Organ"], ["BODY", "Organ"]):
        model = build_tissue_model((1, 1, 10), _nested((2, 0, 1)), DEFAULT, rule, courses=COURSES)
        np.testing.assert_array_equal(model.alpha_beta[0, 0], [1.5, 2, 3, 3, 3, 3, 3, 3, 2, 1.5])
        np.testing.assert_allclose(
            model.recovered["c1"][0, 0], [0.3, 0.2, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.2, 0.3]
        )
        np.testing.assert_array_equal(model.target[0, 0], np.zeros(10))


def test_external_only_replaces_the_default():
    body = _region("BODY", "external", 2.0, 0.2, [0, 1, 1, 1, 0])
    organ = _region("Organ", "organ_at_risk", 5.0, 0.6, [0, 0, 1, 0, 0])
    for rule in ("targets_first", "most_conservative", ["Organ"], ["BODY"]):
        model = build_tissue_model((1, 1, 5), [body, organ], DEFAULT, rule, courses=COURSES)
        np.testing.assert_array_equal(model.alpha_beta[0, 0], [1.5, 2, 5, 2, 1.5])
        np.testing.assert_allclose(model.recovered["c1"][0, 0], [0.3, 0.2, 0.6, 0.2, 0.3])


def test_structure_thinner_than_half_a_voxel_owns_its_largest_voxels():
    organ = _region("Organ", "organ_at_risk", 3.0, 0.4, [0, 1, 1, 1, 1, 0])
    # a thin organ (e.g. a nerve) inside it: 0.4 at voxels 2 and 3, 0.1 at voxel 4
    nerve = _region("Nerve", "organ_at_risk", 2.0, 0.0, [0, 0, 0.4, 0.4, 0.1, 0])
    model = build_tissue_model((1, 1, 6), [organ, nerve], DEFAULT, courses=COURSES)
    np.testing.assert_array_equal(model.alpha_beta[0, 0], [1.5, 3, 2, 2, 3, 1.5])
    np.testing.assert_allclose(model.recovered["c1"][0, 0], [0.3, 0.4, 0, 0, 0.4, 0.3])


def test_tissue_model_refusals():
    a = _region("A", "organ_at_risk", 2.0, 0.5, [1, 1])
    with pytest.raises(InputError, match="overlap rule"):
        build_tissue_model((1, 1, 2), [a], DEFAULT, "average", courses=COURSES)
    with pytest.raises(InputError, match="twice"):
        build_tissue_model((1, 1, 2), [a], DEFAULT, ["A", "A"], courses=COURSES)
    with pytest.raises(InputError, match="c2"):
        build_tissue_model((1, 1, 2), [a], DEFAULT, courses=("c1", "c2"))
    with pytest.raises(InputError, match="recovered fraction"):
        Tissue(3.0, {"c1": 1.5})
    with pytest.raises(InputError, match="alpha/beta"):
        Tissue(0.0)


# --------------------------------------------------------------------------------------
# Order independence (property)
# --------------------------------------------------------------------------------------

SHAPE = (3, 4, 5)


@st.composite
def _regions(draw):
    n = draw(st.integers(1, 6))
    regions = []
    for index in range(n):
        role = draw(st.sampled_from(["target", "organ_at_risk", "external"]))
        lo = [draw(st.integers(0, s - 1)) for s in SHAPE]
        hi = [draw(st.integers(a + 1, s)) for a, s in zip(lo, SHAPE, strict=True)]
        box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        size = int(np.prod([b - a for a, b in zip(lo, hi, strict=True)]))
        bits = draw(st.lists(st.booleans(), min_size=size, max_size=size))
        member = np.array(bits, dtype=bool).reshape([b - a for a, b in zip(lo, hi, strict=True)])
        tissue = Tissue(
            draw(st.sampled_from([1.0, 2.0, 3.0, 10.0])),
            {c: draw(st.sampled_from([0.0, 0.1, 0.5, 1.0])) for c in ("c1", "c2")},
        )
        regions.append(TissueRegion(f"S{index}", role, tissue, box, member))
    return regions


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(regions=_regions(), data=st.data())
def test_maps_do_not_depend_on_the_order_of_the_structures(regions, data):
    permuted = data.draw(st.permutations(regions))
    names = [r.name for r in regions]
    listed = data.draw(st.lists(st.sampled_from(names), unique=True))
    default = Tissue(4.0, {"c1": 0.2, "c2": 0.3})
    for rule in ("targets_first", "most_conservative", listed):
        one = build_tissue_model(SHAPE, regions, default, rule, courses=("c1", "c2"))
        two = build_tissue_model(SHAPE, permuted, default, rule, courses=("c1", "c2"))
        np.testing.assert_array_equal(one.alpha_beta, two.alpha_beta)
        for course in ("c1", "c2"):
            np.testing.assert_array_equal(one.recovered[course], two.recovered[course])
        np.testing.assert_array_equal(one.target, two.target)
        np.testing.assert_array_equal(one.rank, two.rank)
        # and every voxel holds the tissue of some structure that owns it, or the default
        assert np.all(np.isfinite(one.alpha_beta))


# --------------------------------------------------------------------------------------
# A structure's own tissue maps (its DVH)
# --------------------------------------------------------------------------------------


def _neighbours():
    """Organ owns 2..6 and touches 1 (0.3) and 7 (0.3); the target owns 7..8 and touches 6."""
    organ_occ = _line([0, 0.3, 1, 1, 1, 1, 1, 0.3, 0, 0])
    target_occ = _line([0, 0, 0, 0, 0, 0, 0.2, 0.7, 1, 0])
    organ = TissueRegion(
        "Organ", "organ_at_risk", Tissue(3.0, {"c1": 0.4}), FULL, membership(organ_occ)
    )
    target = TissueRegion("PTV", "target", Tissue(10.0, {"c1": 0.0}), FULL, membership(target_occ))
    return organ, organ_occ, target, target_occ


def test_structure_tissue_touched_voxels_take_the_structure_by_the_rule():
    organ, organ_occ, target, target_occ = _neighbours()
    model = build_tissue_model((1, 1, 10), [organ, target], DEFAULT, courses=COURSES)
    np.testing.assert_array_equal(model.alpha_beta[0, 0], [1.5, 1.5, 3, 3, 3, 3, 3, 10, 10, 1.5])
    # the organ: voxel 1 (touched, default tissue) becomes the organ's; voxel 7 (touched,
    # owned by the target, which ranks first) stays the target's; outside voxels 0, 8, 9
    # take the nearest inside voxel's (1, 7, 7)
    ab, f = structure_tissue(model, organ, organ_occ)
    np.testing.assert_array_equal(ab[0, 0], [3, 3, 3, 3, 3, 3, 3, 10, 10, 10])
    np.testing.assert_allclose(f["c1"][0, 0], [0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0, 0, 0])
    # the target: voxel 6 (touched, the organ's) becomes the target's; outside voxels take
    # the nearest inside: 0..5 -> 6, 9 -> 8
    ab, f = structure_tissue(model, target, target_occ)
    np.testing.assert_array_equal(ab[0, 0], np.full(10, 10.0))
    np.testing.assert_allclose(f["c1"][0, 0], np.zeros(10))


def test_structure_tissue_ties_take_the_most_conservative():
    organ, organ_occ, target, target_occ = _neighbours()
    model = build_tissue_model(
        (1, 1, 10), [organ, target], DEFAULT, "most_conservative", courses=COURSES
    )
    # voxel 7: owned by the target, touched by the organ, same rank: min(10, 3), min(0, 0.4);
    # outside voxels 8, 9 take voxel 7's
    ab, f = structure_tissue(model, organ, organ_occ)
    np.testing.assert_array_equal(ab[0, 0], np.full(10, 3.0))
    np.testing.assert_allclose(f["c1"][0, 0], [0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0, 0, 0])
    # voxel 6: owned by the organ, touched by the target: min(3, 10), min(0.4, 0)
    ab, f = structure_tissue(model, target, target_occ)
    np.testing.assert_array_equal(ab[0, 0], [3, 3, 3, 3, 3, 3, 3, 10, 10, 10])
    np.testing.assert_allclose(f["c1"][0, 0], np.zeros(10))


def test_structure_tissue_of_a_box():
    """On a box of the grid: the same answer as on the whole grid, restricted to the box."""
    organ, organ_occ, target, target_occ = _neighbours()
    box = (slice(0, 1), slice(0, 1), slice(4, 10))
    boxed = TissueRegion("PTV", "target", target.tissue, box, target.member[box])
    model = build_tissue_model((1, 1, 10), [organ, boxed], DEFAULT, courses=COURSES)
    ab, f = structure_tissue(model, boxed, target_occ[box])
    np.testing.assert_array_equal(ab[0, 0], np.full(6, 10.0))


# --------------------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------------------


def _two_courses():
    """Voxel 0: course c1 in two phases, 20 Gy / 10 fx then 20 Gy / 5 fx; course c2 30 Gy /
    10 fx. Voxel 1: half of each dose (half the dose per fraction)."""
    half = np.array([[[1.0, 0.5]]])
    c1 = CoursePhysical("c1", ((10.0, 20.0 * half), (5.0, 20.0 * half)))
    c2 = CoursePhysical("c2", ((10.0, 30.0 * half),))
    return c1, c2


def test_course_of_two_phases_is_the_sum_of_each_phase_with_its_dose_per_fraction():
    c1, _ = _two_courses()
    # alpha/beta 3: 20 Gy at 2 Gy/fx -> 20; 20 Gy at 4 Gy/fx -> 20 (4 + 3)/(2 + 3) = 28;
    # the course: 48 Gy (not 40 Gy in 15 fractions: 40 (8/3 + 3)/5 = 45.33 Gy)
    np.testing.assert_allclose(course_effective(c1, 3.0)[0, 0, 0], 48.0, rtol=1e-12)
    # voxel 1: 10 Gy at 1 Gy/fx -> 10 (1 + 3)/5 = 8; 10 Gy at 2 Gy/fx -> 10: 18 Gy
    np.testing.assert_allclose(course_effective(c1, 3.0)[0, 0, 1], 18.0, rtol=1e-12)
    # BED: 20 (1 + 2/3) + 20 (1 + 4/3) = 33.33 + 46.67 = 80 Gy
    np.testing.assert_allclose(course_effective(c1, 3.0, "BED")[0, 0, 0], 80.0, rtol=1e-12)
    np.testing.assert_allclose(course_effective(c1, 3.0, "physical")[0, 0], [40.0, 20.0])


def test_effective_sum_by_hand_with_recovery_scale():
    c1, c2 = _two_courses()
    ab = np.array([[[3.0, 10.0]]])
    f = {"c1": np.array([[[0.4, 0.5]]])}
    # voxel 0 (a/b 3): c1 48 Gy (above); c2 30 Gy at 3 Gy/fx: 30 (3 + 3)/5 = 36 Gy
    #   s = 1: 0.6 x 48 + 36 = 64.8; s = 0.5: 0.8 x 48 + 36 = 74.4; no recovery: 84
    # voxel 1 (a/b 10): c1 10 (1 + 10)/12 + 10 (2 + 10)/12 = 9.1667 + 10 = 19.1667;
    #   c2 15 Gy at 1.5 Gy/fx: 15 (1.5 + 10)/12 = 14.375; s = 1: 0.5 x 19.1667 + 14.375
    expected = {
        1.0: [64.8, 0.5 * (110 / 12 + 10) + 14.375],
        0.5: [74.4, 0.75 * (110 / 12 + 10) + 14.375],
    }
    for scale, values in expected.items():
        got = effective_sum([c1, c2], ab, f, recovery_scale=scale)
        np.testing.assert_allclose(got[0, 0], values, rtol=1e-12)
    np.testing.assert_allclose(effective_sum([c1, c2], ab, None)[0, 0, 0], 84.0, rtol=1e-12)
    np.testing.assert_allclose(
        effective_sum([c1, c2], ab, f, recovery_scale=0.0)[0, 0, 0], 84.0, rtol=1e-12
    )
    # BED, voxel 0, s = 1: 0.6 x 80 + 30 (1 + 3/3) = 48 + 60 = 108 Gy
    np.testing.assert_allclose(
        effective_sum([c1, c2], ab, f, quantity="BED")[0, 0, 0], 108.0, rtol=1e-12
    )
    # one course's contribution; physical dose ignores recovery
    np.testing.assert_allclose(effective_sum([c1, c2], ab, f, only="c1")[0, 0, 0], 28.8)
    np.testing.assert_allclose(
        effective_sum([c1, c2], ab, f, quantity="physical")[0, 0], [70.0, 35.0]
    )


def test_effective_sum_against_the_lq_formula_on_random_maps():
    rng = np.random.default_rng(3)
    shape = (4, 5, 6)
    doses = [rng.uniform(0, 60, shape) for _ in range(3)]
    fractions = (30.0, 5.0, 8.0)
    ab = rng.choice([2.0, 3.0, 10.0], shape)
    f = {"c1": rng.uniform(0, 1, shape), "c2": rng.uniform(0, 1, shape)}
    courses = [
        CoursePhysical("c1", ((fractions[0], doses[0]),)),
        CoursePhysical("c2", ((fractions[1], doses[1]),)),
        CoursePhysical("c3", ((fractions[2], doses[2]),)),
    ]
    for quantity in ("EQD2", "BED"):
        expected = np.zeros(shape)
        expected_nr = np.zeros(shape)
        for course, dose, n in zip(("c1", "c2", "c3"), doses, fractions, strict=True):
            bed = dose * (1 + dose / n / ab)
            value = bed if quantity == "BED" else bed / (1 + 2 / ab)
            expected_nr += value
            expected += (1 - f[course]) * value if course in f else value
        np.testing.assert_allclose(
            effective_sum(courses, ab, f, quantity=quantity), expected, rtol=1e-12
        )
        total, total_nr = cumulative_maps(courses, ab, f, quantity=quantity)
        np.testing.assert_allclose(total, expected, rtol=1e-12)
        np.testing.assert_allclose(total_nr, expected_nr, rtol=1e-12)


def test_cumulative_maps_equal_effective_sum_in_float32():
    rng = np.random.default_rng(5)
    shape = (6, 7, 8)
    courses = [
        CoursePhysical("c1", ((30.0, rng.uniform(0, 60, shape).astype(np.float32)),)),
        CoursePhysical(
            "c2",
            (
                (3.0, rng.uniform(0, 20, shape).astype(np.float32)),
                (5.0, rng.uniform(0, 20, shape).astype(np.float32)),
            ),
        ),
    ]
    ab = rng.choice([2.0, 3.0, 10.0], shape).astype(np.float32)
    f = {"c1": rng.uniform(0, 1, shape).astype(np.float32)}
    total, total_nr = cumulative_maps(courses, ab, f)
    assert total.dtype == np.float32
    np.testing.assert_array_equal(total, effective_sum(courses, ab, f))
    np.testing.assert_array_equal(total_nr, effective_sum(courses, ab, None))


def test_engine_refusals():
    c1, c2 = _two_courses()
    with pytest.raises(InputError, match="no course"):
        effective_sum([], 3.0)
    with pytest.raises(InputError, match="no course 'c9'"):
        effective_sum([c1, c2], 3.0, only="c9")
    with pytest.raises(InputError, match="no phase"):
        course_effective(CoursePhysical("empty", ()), 3.0)
    with pytest.raises(InputError, match="quantity"):
        course_effective(c1, 3.0, "EQD3")
    ab = np.full((1, 1, 2), 3.0)
    with pytest.raises(InputError, match="alpha/beta"):
        cumulative_maps([c1, c2], np.zeros((1, 1, 2)), {})
    with pytest.raises(InputError, match="recovered fraction"):
        cumulative_maps([c1, c2], ab, {"c1": np.full((1, 1, 2), 1.2)})


def test_effective_sum_refuses_bad_tissue_values():
    c1, c2 = _two_courses()
    with pytest.raises(InputError, match="alpha/beta"):
        effective_sum([c1, c2], 0.0)
    with pytest.raises(InputError, match="recovered fraction"):
        effective_sum([c1, c2], 3.0, {"c1": 1.5})
