"""One tissue model for voxel-wise accumulation: every voxel gets exactly one alpha/beta and
one recovered fraction per earlier course, by a rule that does not depend on the order in
which the structures are declared.

Membership
    A voxel belongs to a structure when at least half of it lies inside the structure
    (partial-volume occupancy from the DVH engine, :func:`reirrad.core.dvh.structure_occupancy`,
    ``>= 0.5``). A structure too thin to hold half of any voxel owns the voxels where its
    occupancy is largest, so that its own tissue is used somewhere. Voxels touched only at
    their edge keep the tissue of what fills them, so an organ at risk next to a target does
    not take the target's parameters (nor the reverse).

Overlap rule (voxels belonging to several structures)
    Each structure has a rank; a voxel takes the tissue of the structures of lowest rank that
    it belongs to, and among those the most conservative parameters: the lowest alpha/beta
    and, independently, the lowest recovered fraction (least recovery counts most of the
    earlier dose; the lowest alpha/beta gives the highest EQD2 where the dose per fraction
    exceeds 2 Gy). Minimum and rank are commutative, so the result does not depend on the
    order of the structures.

    ``"targets_first"`` (default)
        targets rank 0, organs at risk 1, the external contour 2: a target keeps its own
        tissue inside BODY and inside any organ that overlaps it.
    ``"most_conservative"``
        targets and organs at risk rank 0, the external contour 1.
    a priority list of structure names
        listed structures rank by their position; unlisted ones after them in the
        ``targets_first`` order.

    In every rule the external contour (role ``external``, or RT ROI Interpreted Type
    ``EXTERNAL``) never overrides another structure: it only replaces the default tissue of
    voxels that are in no other structure. A voxel that no other structure owns but that other
    structures of one rank touch (any part inside) takes their tissue by the same rule rather
    than the external contour's or the default: a target's boundary voxels in BODY are the
    target's. Where structures of different ranks touch such a voxel (the gap between a target
    and an organ) it keeps the external or default tissue.

The effective dose between voxel centres
    Every voxel centre is converted with its one tissue; between centres the DVH engine
    interpolates the converted map trilinearly. The cumulative map, every DVH computed from
    it and the exported RTDOSE are therefore one and the same field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from reirrad.errors import InputError

__all__ = [
    "OVERLAP_RULES",
    "Tissue",
    "TissueModel",
    "TissueRegion",
    "build_tissue_model",
    "membership",
    "rule_text",
    "structure_tissue",
]

#: Named overlap rules (a list of structure names is the priority rule).
OVERLAP_RULES = ("targets_first", "most_conservative")

Role = Literal["target", "organ_at_risk", "external"]

#: Box of a region on the reference grid: slices along ``[k, j, i]``.
Box = tuple[slice, slice, slice]

#: Rank of the default tissue (voxels in no structure): below every structure.
DEFAULT_RANK = int(np.iinfo(np.int16).max)

_RANKS = {
    "targets_first": {"target": 0, "organ_at_risk": 1, "external": 2},
    "most_conservative": {"target": 0, "organ_at_risk": 0, "external": 1},
}


@dataclass(frozen=True)
class Tissue:
    """alpha/beta (Gy) and the recovered fraction of each earlier course (course id -> f)."""

    alpha_beta: float
    recovered: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (np.isfinite(self.alpha_beta) and self.alpha_beta > 0):
            raise InputError(f"alpha/beta must be finite and > 0 Gy, not {self.alpha_beta}")
        for course, f in self.recovered.items():
            if not (0.0 <= f <= 1.0):
                raise InputError(f"recovered fraction of course {course} must be in [0, 1]")


@dataclass(frozen=True)
class TissueRegion:
    """A structure as the tissue model sees it: role, tissue and voxels it owns on its box."""

    name: str
    role: Role
    tissue: Tissue
    box: Box
    member: NDArray[np.bool_] = field(repr=False)
    #: Voxels any part of which is inside (default: ``member``): where the structure displaces
    #: the external contour and the default tissue.
    touched: NDArray[np.bool_] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.touched is None:
            object.__setattr__(self, "touched", self.member)


@dataclass(frozen=True)
class TissueModel:
    """Per-voxel alpha/beta and recovered fractions on the reference grid.

    Attributes
    ----------
    alpha_beta
        alpha/beta in Gy, float32, the grid's shape.
    recovered
        Per earlier course id, the recovered fraction of each voxel (float32).
    rule
        The rule's name (``"targets_first"``, ``"most_conservative"`` or ``"priority"``).
    description
        The rule in words, for the assumptions of every output.
    """

    alpha_beta: NDArray[np.float32] = field(repr=False)
    recovered: Mapping[str, NDArray[np.float32]] = field(repr=False)
    rule: str
    description: str
    #: 1 where the voxel's tissue is a target's (its alpha/beta is not shifted in the
    #: sensitivity analysis of normal tissue), else 0.
    target: NDArray[np.uint8] = field(repr=False, default=None)
    #: Rank of the structures that gave each voxel its tissue (``DEFAULT_RANK``: none).
    rank: NDArray[np.int16] = field(repr=False, default=None)
    #: Rank of each structure under the rule.
    ranks: Mapping[str, int] = field(default_factory=dict)
    #: Voxels the external contour (or the default) gave to the structures touching them.
    claimed: NDArray[np.bool_] = field(repr=False, default=None)

    def on(self, box: Box) -> tuple[NDArray[np.float32], dict[str, NDArray[np.float32]]]:
        """The maps restricted to a box (views, not copies)."""
        return self.alpha_beta[box], {c: f[box] for c, f in self.recovered.items()}


def membership(occupancy: NDArray) -> NDArray[np.bool_]:
    """Voxels a structure owns: at least half inside, else those where it is largest.

    Parameters
    ----------
    occupancy
        Fraction of each voxel inside the structure (0..1).
    """
    occupancy = np.asarray(occupancy)
    owned = occupancy >= 0.5
    if not owned.any():
        top = float(occupancy.max()) if occupancy.size else 0.0
        owned = (occupancy >= top) & (occupancy > 0.0)
    return owned


def _ranks(
    regions: Sequence[TissueRegion], rule: str | Sequence[str]
) -> tuple[dict[str, int], str]:
    if isinstance(rule, str):
        if rule not in _RANKS:
            raise InputError(
                f"overlap rule must be one of {OVERLAP_RULES} or a list of structure names, "
                f"not {rule!r}",
                field="analysis.overlap_rule",
            )
        return {r.name: _RANKS[rule][r.role] for r in regions}, rule
    order = list(rule)
    if len(set(order)) != len(order):
        raise InputError("the priority list names a structure twice", field="analysis.overlap_rule")
    after = len(order)
    ranks = {}
    for region in regions:
        if region.role == "external":
            ranks[region.name] = after + 3  # never over another structure
        elif region.name in order:
            ranks[region.name] = order.index(region.name)
        else:
            ranks[region.name] = after + _RANKS["targets_first"][region.role]
    return ranks, "priority"


def rule_text(rule: str | Sequence[str]) -> str:
    """The overlap rule in words (stated in every output)."""
    if rule == "targets_first":
        head = (
            "targets over organs at risk; among structures of the same kind the most "
            "conservative (lowest alpha/beta and, independently, least recovery)"
        )
    elif rule == "most_conservative":
        head = (
            "most conservative of the structures covering a voxel (lowest alpha/beta and, "
            "independently, least recovery)"
        )
    else:
        head = (
            "priority order "
            + " > ".join(rule)
            + ", then targets over organs at risk; ties most conservative"
        )
    return (
        head + "; the external contour only replaces the default tissue; a voxel belongs to a "
        "structure when at least half of it is inside"
    )


def build_tissue_model(
    shape: tuple[int, int, int],
    regions: Sequence[TissueRegion],
    default: Tissue,
    rule: str | Sequence[str] = "targets_first",
    *,
    courses: Sequence[str] = (),
) -> TissueModel:
    """Build the per-voxel tissue maps from the structures' owned voxels.

    Parameters
    ----------
    shape
        The reference grid's shape ``(k, j, i)``.
    regions
        The structures, each with its tissue and owned voxels on its box.
    default
        Tissue of voxels in no structure.
    rule
        ``"targets_first"``, ``"most_conservative"`` or a priority list of structure names.
    courses
        Ids of the earlier courses (each gets a recovered-fraction map).

    Returns
    -------
    TissueModel
        The same maps whatever the order of ``regions``.
    """
    ranks, name = _ranks(regions, rule)
    big = DEFAULT_RANK
    rank_map = np.full(shape, big, dtype=np.int16)
    ab = np.full(shape, np.inf, dtype=np.float32)
    recovered = {c: np.full(shape, np.inf, dtype=np.float32) for c in courses}
    target = np.zeros(shape, dtype=np.uint8)
    for region in regions:
        missing = [c for c in courses if c not in region.tissue.recovered]
        if missing:
            raise InputError(f"{region.name}: no recovered fraction for course(s) {missing}")
    maps = (rank_map, ab, recovered, target)
    # 1. owners: voxels at least half inside a structure
    _assign(maps, [(r, r.member) for r in regions], ranks)
    # 2. the external contour and the default tissue give way to every other structure that
    #    touches a voxel: a target's (or organ's) boundary voxel that no other structure owns
    #    takes its tissue, so the exported map matches the structure's own table there
    external = min([ranks[r.name] for r in regions if r.role == "external"] + [big])
    weak = rank_map >= external
    claims = [
        (r, r.touched & weak[r.box])
        for r in regions
        if r.role != "external" and r.touched is not None
    ]
    claimed = np.full(shape, big, dtype=np.int16)
    highest = np.full(shape, -1, dtype=np.int16)
    for region, where in claims:
        view = claimed[region.box]
        np.minimum(view, np.where(where, ranks[region.name], big), out=view)
        view = highest[region.box]
        np.maximum(view, np.where(where, ranks[region.name], -1), out=view)
    owned_rank = rank_map.copy()
    # only where the touching structures agree in rank: a voxel in the gap between a target
    # and an organ keeps the external/default tissue rather than lending either one's tissue
    # to the other's boundary in the exported map
    take = (claimed < big) & (claimed == highest)
    claims = [(r, w & take[r.box]) for r, w in claims]
    rank_map[take] = big
    ab[take] = np.inf
    for f in recovered.values():
        f[take] = np.inf
    target[take] = 0
    _assign(maps, claims, ranks)
    unassigned = rank_map == big
    ab[unassigned] = default.alpha_beta
    for course in courses:
        recovered[course][unassigned] = default.recovered[course]
    return TissueModel(
        alpha_beta=ab,
        recovered=recovered,
        rule=name,
        description=rule_text(rule),
        target=target,
        rank=owned_rank,
        ranks=ranks,
        claimed=take,
    )


def _assign(maps, masks, ranks: Mapping[str, int]) -> None:
    """Give each voxel of the masks the tissue of its lowest-rank structures (ties: the lowest
    alpha/beta and, independently, the least recovery); order-independent (min and rank)."""
    rank_map, ab, recovered, target = maps
    big = DEFAULT_RANK
    for region, where in masks:
        view = rank_map[region.box]
        np.minimum(view, np.where(where, ranks[region.name], big), out=view)
    for region, where in masks:
        here = where & (rank_map[region.box] == ranks[region.name])
        if not here.any():
            continue
        view = ab[region.box]
        view[here] = np.minimum(view[here], region.tissue.alpha_beta)
        for course, f_map in recovered.items():
            view_f = f_map[region.box]
            view_f[here] = np.minimum(view_f[here], region.tissue.recovered[course])
        if region.role == "target":
            target[region.box][here] = 1


def structure_tissue(
    model: TissueModel, region: TissueRegion, occupancy: NDArray
) -> tuple[NDArray[np.float32], dict[str, NDArray[np.float32]]]:
    """The tissue maps a structure's DVH uses, on its box.

    Voxels the structure owns keep the model's tissue (the exported map's). Voxels it only
    touches (less than half inside) add the structure itself to the structures that own them
    and apply the same rule, because the part of the voxel inside the structure is the
    structure's tissue; the voxels just outside it, which the DVH engine only uses to
    interpolate the dose at its boundary, take the tissue of the nearest voxel inside. So a
    target inside BODY, or an organ next to a target, keeps its own parameters up to its
    contour, and a homogeneous dose gives exactly the structure's own EQD2.
    """
    from scipy import ndimage

    box = region.box
    ab = model.alpha_beta[box].copy()
    recovered = {c: f[box].copy() for c, f in model.recovered.items()}
    own_rank = model.ranks[region.name]
    touched = (occupancy > 0.0) & ~region.member
    if touched.any():
        rank = model.rank[box]
        wins = touched & (own_rank < rank)
        ties = touched & (own_rank == rank)
        ab[wins] = region.tissue.alpha_beta
        ab[ties] = np.minimum(ab[ties], region.tissue.alpha_beta)
        for course, f in recovered.items():
            mine = region.tissue.recovered[course]
            f[wins] = mine
            f[ties] = np.minimum(f[ties], mine)
    if region.role == "external" and model.claimed is not None:
        # the external contour's own DVH: in the voxels it owns but lent to a structure that
        # touches them, its part is still its own tissue
        lent = region.member & model.claimed[box]
        ab[lent] = region.tissue.alpha_beta
        for course, f in recovered.items():
            f[lent] = region.tissue.recovered[course]
    outside = occupancy <= 0.0
    if outside.any() and not outside.all():
        nearest = ndimage.distance_transform_edt(
            outside, return_distances=False, return_indices=True
        )
        index = tuple(nearest)
        ab = ab[index]
        recovered = {c: f[index] for c, f in recovered.items()}
    return ab, recovered
