"""Files of a voxel-wise result: the cumulative EQD2 as RTDOSE and NRRD, and a JSON summary."""

from __future__ import annotations

import json
from pathlib import Path

from reirrad.errors import InputError
from reirrad.io.export import write_nrrd, write_rtdose
from reirrad.pipelines.accumulate import VoxelAssessment
from reirrad.present.render import voxel_to_dict

__all__ = ["write_voxel_outputs"]


def _series_description(result: VoxelAssessment) -> str:
    """At most 64 characters (LO): quantity, method, courses, recovery, mapping."""
    short = {"identity": "id", "reg": "REG", "rigid": "rigid", "deformable": "DIR"}
    kinds = sorted({short[m.mapping.split(" ")[0]] for m in result.courses})
    n = len(result.courses)
    if result.uncertain:
        return f"EQD2 DEFORMABLE-UNCERTAIN; LQ voxel sum {n} courses +recovery"[:64]
    return f"EQD2 LQ voxelwise sum {n} courses +recovery; map {'/'.join(kinds)}"[:64]


def write_voxel_outputs(result: VoxelAssessment, directory: str | Path) -> dict[str, Path]:
    """Write the cumulative EQD2 (with recovery) as RTDOSE and NRRD, plus a JSON summary.

    RTDOSE: DoseType EFFECTIVE, the EQD2 method coded (CID 9539, see
    :func:`reirrad.io.export.write_rtdose`), the reference course's frame of reference (and
    patient/study from its CT when given), every course's RT Plan referenced, a series
    description naming the method and its main assumptions.
    """
    out = Path(directory)
    if out.exists() and not out.is_dir():
        raise InputError("--out must name a directory, not a file", source=str(out), field="--out")
    out.mkdir(parents=True, exist_ok=True)
    if result.frame_of_reference_uid is None and result.reference_ct is None:
        raise InputError("the reference dose has no Frame of Reference UID; cannot write RTDOSE")
    rule = result.case.analysis.overlap_rule
    rules = rule if isinstance(rule, str) else "priority list"
    comment = f"a/b map ({rules}); recovery per tissue; see summary JSON"
    paths = {
        "rtdose": write_rtdose(
            result.total,
            out / "cumulative_eqd2_RD.dcm",
            frame_of_reference_uid=result.frame_of_reference_uid,
            reference_ct=result.reference_ct,
            series_description=_series_description(result),
            dose_comment=comment,
            referenced_plan_uid=list(result.plan_uids) or None,
        ),
        "nrrd": write_nrrd(result.total, out / "cumulative_eqd2.nrrd"),
    }
    summary = out / "summary.json"
    summary.write_text(json.dumps(voxel_to_dict(result), indent=2), encoding="utf-8")
    paths["summary"] = summary
    return paths
