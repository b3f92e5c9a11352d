"""Every mutation, and deterministic fuzz cases drawn from a seed.

A :class:`FuzzCase` names one mutation and one target; ``build(work)`` writes the mutated
input into ``work`` and returns the :class:`~fuzz.model.Built` record.  The same seed and
index (long run) or the same id (CI subset) always build the same input.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import case_mutators, dicom_mutators, inputs, option_mutators
from .model import Built

#: Families and their share of a long run.
WEIGHTS = {"dicom": 0.42, "file": 0.12, "case": 0.30, "option": 0.16}


@dataclass(frozen=True)
class FuzzCase:
    """One mutation of one target; ``case_id`` names the class, the mutation and the target."""

    case_id: str
    family: str
    mutation: Any
    target: Any
    rng_seed: str

    @property
    def mutation_class(self) -> str:
        return self.mutation.mutation_class

    def build(self, work: Path) -> Built:
        rng = random.Random(self.rng_seed)
        if self.family in ("dicom", "file"):
            return dicom_mutators.build(self.mutation, self.target, rng, work)
        if self.family == "case":
            return case_mutators.build(self.mutation, self.target, rng, work)
        return option_mutators.build(self.mutation, rng, work)


def _family_members(family: str) -> list[Any]:
    return {
        "dicom": dicom_mutators.DICOM_MUTATIONS,
        "file": dicom_mutators.FILE_MUTATIONS,
        "case": case_mutators.CASE_MUTATIONS,
        "option": [
            m
            for m in option_mutators.OPTION_MUTATIONS
            if m.base is None or inputs.available(m.base)
        ],
    }[family]


def _targets(family: str, mutation: Any) -> list[Any]:
    if family in ("dicom", "file"):
        return dicom_mutators.applicable_targets(mutation)
    if family == "case":
        return list(mutation.bases)
    return [None]


def _target_label(target: Any) -> str:
    if target is None:
        return ""
    if isinstance(target, tuple):
        base, kind, course, command = target
        where = f"{kind}{course}" if base == "phantom" else kind
        return f"@{base}:{where}:{command}"
    return f"@{target}"


def make_case(family: str, mutation: Any, target: Any, rng_seed: str, prefix: str = "") -> FuzzCase:
    case_id = f"{prefix}{mutation.mutation_class}/{mutation.name}{_target_label(target)}"
    return FuzzCase(case_id, family, mutation, target, rng_seed)


def case_at(seed: int, index: int) -> FuzzCase:
    """Case ``index`` of the long run with ``seed`` (independent of the other indices)."""
    rng = random.Random(f"reirrad-fuzz/{seed}/{index}")
    family = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
    mutation = rng.choice(_family_members(family))
    target = rng.choice(_targets(family, mutation))
    return make_case(family, mutation, target, f"{seed}/{index}", prefix=f"{seed}.{index}:")


def generate(seed: int, runs: int) -> list[FuzzCase]:
    """The first ``runs`` cases of the long run with ``seed``."""
    return [case_at(seed, index) for index in range(runs)]


#: The CI subset: ``mutation name @ target`` (``#k``: k-th draw of a hypothesis-driven
#: mutation).  Chosen to cover every class and the audit's themes (non-finite and absurd values,
#: inconsistent sizes, extreme geometry, special files, YAML traps, bad options) within the
#: 4-minute budget: the phantom and ``reirrad dvh`` where possible, one case per shared example.
SUBSET = """
del-DoseGridScaling@phantom:RD2:dvh
del-ContourData@phantom:RS2:dvh
del-ReferencedROINumber@phantom:RS2:accumulate
del-FrameOfReferenceTransformationMatrix@phantom:REG1:accumulate
DoseGridScaling=nan@phantom:RD2:dvh
DoseGridScaling=huge@dicompyler:RD:dvh
ImagePositionPatient=inf@phantom:RD1:accumulate
ContourData=nan@phantom:RS2:dvh
ContourData=huge@eclipse:RS:dvh
REG-matrix=nan@phantom:REG1:accumulate
NumberOfFractionsPlanned=0@phantom:RP2:accumulate
NumberOfFrames=huge@phantom:RD2:dvh
PixelData-truncated@eclipse:RD:dvh
NumberOfContourPoints+5@phantom:RS2:dvh
grid-shift-x+1000mm@phantom:RD2:accumulate
grid-cropped-3-frames@phantom:RD2:accumulate
contour-scaled-1e8@phantom:RS2:dvh
REG-translation+1e6mm@phantom:REG1:accumulate
orientation-not-orthogonal@phantom:RD2:dvh
all-contours-2-points@phantom:RS2:dvh
duplicate-ROI-name@phantom:RS2:accumulate
ReferencedROINumber-other-ROI@phantom:RS2:dvh
given-RS@phantom:RD2:dvh
DoseUnits=CGY@phantom:RD2:dvh
empty@phantom:RD2:dvh
preamble-random@phantom:REG1:accumulate
fifo@phantom:RD2:dvh
directory@phantom:RD1:accumulate
bad-number@npc#0
bad-number@npc#1
fractional-count@npc#0
wrong-type-number@npc#0
wrong-type-node@npc#0
numeric-string@npc#0
formatting@npc#0
missing-required@npc#0
dates@npc#0
unknown-name@npc#0
duplicate-declaration@npc#0
octal-looking@npc#0
duplicate-key@npc#0
deep-nesting@npc#0
alias-bomb@npc#0
not-a-mapping@npc#0
same-rtdose-twice@phantom#0
same-rtdose-twice@phantom#1
dicom-links@phantom#0
case-file-fifo@npc#0
case-file-dev-zero@npc#0
lq--dose=nan
lq--fractions=0
lq--fractions=abc
lq-dose-and-eqd2
explore--fractions=1-100000000
explore--fractions=5-1
dvh-metrics-D150%
dvh-reference-dose-nan
dvh-end-cap-nan
assess--method=twice-same-course
assess--method=unknown-course
accumulate--reference=unknown
""".split()


def _all_mutations() -> dict[str, tuple[str, Any]]:
    found: dict[str, tuple[str, Any]] = {}
    for family in WEIGHTS:
        for mutation in _family_members(family):
            if mutation.name in found:
                raise ValueError(f"two mutations named {mutation.name!r}")
            found[mutation.name] = (family, mutation)
    return found


def _parse_target(text: str) -> Any:
    if ":" not in text:
        return text or None
    base, where, command = text.split(":")
    kind, course = (where[:-1], int(where[-1])) if where[-1].isdigit() else (where, 1)
    return (base, kind, course, command)


def subset() -> list[FuzzCase]:
    """The fixed CI subset (:data:`SUBSET`); entries whose input set is missing are left out."""
    mutations = _all_mutations()
    cases = []
    for entry in SUBSET:
        name, _, rest = entry.partition("@")
        where, _, draw_index = rest.partition("#")
        family, mutation = mutations[name]
        target = _parse_target(where)
        base = (
            target[0] if isinstance(target, tuple) else (target or getattr(mutation, "base", None))
        )
        if base is not None and not inputs.available(base):
            continue
        case = make_case(family, mutation, target, f"subset/{entry}")
        suffix = f"#{draw_index}" if draw_index else ""
        cases.append(FuzzCase(case.case_id + suffix, family, mutation, target, case.rng_seed))
    return cases


def find_subset_case(case_id: str) -> FuzzCase:
    for case in subset():
        if case.case_id == case_id:
            return case
    raise KeyError(case_id)
