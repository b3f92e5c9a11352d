"""Files of a voxel-wise result: the cumulative EQD2 as RTDOSE and NRRD, and a JSON summary."""

from __future__ import annotations

import json
from pathlib import Path

from reirrad.errors import InputError
from reirrad.io.export import write_cumulative_rtdose, write_nrrd
from reirrad.pipelines.accumulate import VoxelAssessment
from reirrad.present.render import voxel_to_dict

__all__ = ["write_voxel_outputs"]


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
    paths = {
        "rtdose": write_cumulative_rtdose(result, out / "cumulative_eqd2_RD.dcm"),
        "nrrd": write_nrrd(result.total, out / "cumulative_eqd2.nrrd"),
    }
    summary = out / "summary.json"
    summary.write_text(json.dumps(voxel_to_dict(result), indent=2), encoding="utf-8")
    paths["summary"] = summary
    return paths
