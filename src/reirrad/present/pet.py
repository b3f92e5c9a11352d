"""Text and JSON for a PET measurement (``reirrad pet``)."""

from __future__ import annotations

import json

from reirrad.pipelines.pet import PetMeasurement

__all__ = ["pet_to_json", "pet_to_text"]


def _mm(xyz) -> str:
    return "(" + ", ".join(f"{v:.1f}" for v in xyz) + ") mm"


def pet_to_text(result: PetMeasurement) -> str:
    s, c = result.statistics, result.calibration
    lines = [f"PET {result.source}: {result.region}"]
    lines.append(f"  SUVmax   {s.suv_max:8.2f}  at {_mm(s.suv_max_position_mm)}")
    if s.suv_peak is not None:
        lines.append(
            f"  SUVpeak  {s.suv_peak:8.2f}  sphere centred at {_mm(s.suv_peak_position_mm)}"
        )
    else:
        lines.append("  SUVpeak      n/a  (the 1 cm^3 sphere does not fit in the image)")
    lines.append(f"  SUVmean  {s.suv_mean:8.2f}  over {s.volume_cc:.1f} cm^3 ({s.voxels} voxels)")
    if result.threshold is not None:
        lines.append(
            f"  threshold volume {result.threshold_volume_cc:.1f} cm^3: "
            f"{result.threshold.describe()} (level {result.threshold_level:.2f})"
        )
    if result.rtstruct:
        lines.append(f"  written: {result.rtstruct}")
    if result.site is not None:
        site = result.site
        lines.append(
            f"  earlier dose: {site.volume_class} ({100 * site.share_treated:.0f} % of "
            f"{site.volume_cc:.1f} cm^3 at >= {site.isodose_gy:.1f} Gy); centre of mass "
            f"{'inside' if site.centroid_inside else 'outside'} ({site.centroid_dose_gy:.1f} Gy)"
        )
        lines.append(
            f"    dose in the recurrence: mean {site.dose_mean_gy:.1f}, min {site.dose_min_gy:.1f}, "
            f"max {site.dose_max_gy:.1f}, D95 {site.d95_gy:.1f} Gy"
        )
        lines.append(f"    source: {site.citation}")
    if c.weight_kg is not None:
        lines.append(
            f"  SUVbw from {c.weight_kg:g} kg, {c.injected_bq / 1e6:.1f} MBq injected "
            f"{c.injection:%Y-%m-%d %H:%M:%S}, half-life {c.half_life_s:g} s"
        )
    lines += [f"  assumption: {a}" for a in result.assumptions]
    return "\n".join(lines)


def pet_to_dict(result: PetMeasurement) -> dict:
    s, c = result.statistics, result.calibration
    out = {
        "source": result.source,
        "series_instance_uid": result.series_instance_uid,
        "frame_of_reference_uid": result.frame_of_reference_uid,
        "region": result.region,
        "suv_max": s.suv_max,
        "suv_max_position_mm": list(s.suv_max_position_mm),
        "suv_peak": s.suv_peak,
        "suv_peak_position_mm": None
        if s.suv_peak_position_mm is None
        else list(s.suv_peak_position_mm),
        "suv_mean": s.suv_mean,
        "region_volume_cc": s.volume_cc,
        "calibration": {
            "units": c.units,
            "decay_correction": c.decay_correction,
            "weight_kg": c.weight_kg,
            "injected_bq": c.injected_bq,
            "half_life_s": c.half_life_s,
            "injection": None if c.injection is None else c.injection.isoformat(),
            "reference": c.reference,
            "notes": list(c.notes),
        },
        "threshold": None if result.threshold is None else result.threshold.describe(),
        "threshold_level": result.threshold_level,
        "threshold_volume_cc": result.threshold_volume_cc,
        "rtstruct": result.rtstruct,
        "assumptions": list(result.assumptions),
    }
    if result.site is not None:
        site = result.site
        out["recurrence_site"] = {
            "volume_class": str(site.volume_class),
            "share_treated": site.share_treated,
            "prescription_gy": site.prescription_gy,
            "isodose_gy": site.isodose_gy,
            "centroid_mm": list(site.centroid_mm),
            "centroid_dose_gy": site.centroid_dose_gy,
            "centroid_inside": site.centroid_inside,
            "dose_mean_gy": site.dose_mean_gy,
            "dose_min_gy": site.dose_min_gy,
            "dose_max_gy": site.dose_max_gy,
            "d95_gy": site.d95_gy,
            "volume_cc": site.volume_cc,
            "citation": site.citation,
        }
    return out


def pet_to_json(result: PetMeasurement) -> str:
    return json.dumps(pet_to_dict(result), indent=2)
