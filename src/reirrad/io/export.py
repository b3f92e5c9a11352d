"""Export of dose maps: DICOM RTDOSE for a planning system, NRRD/NIfTI for research tools.

RTDOSE of an effective dose
---------------------------
* Dose Type (3004,0004) ``EFFECTIVE``, Dose Units (3004,0002) ``GY``, Dose Summation Type
  (3004,000A) ``MULTI_PLAN`` for a cumulative map (``PLAN`` otherwise).
* The method is coded with the Radiobiological Dose Effect Description Macro of DICOM
  PS3.3 C.36.2.1.5 inside a Radiobiological Dose Effect Sequence (3010,0001) item:
  Radiobiological Dose Effect Flag (3010,0002) ``YES``; Effective Dose Calculation Method
  Category Code Sequence (3010,0003) = (130127, DCM, "Fractionation-based or temporally-based
  methods") from CID 9537; nested Effective Dose Calculation Method Code Sequence
  (3010,0004) = (130130, DCM, "Equivalent 2-Gray Fractions Model") from CID 9539
  "Fractionation-based Effective Dose Method Modifier" (for BED: (130131, DCM,
  "Linear-Quadratic Model")); Effective Dose Calculation Method Description (3010,0005) in
  words. The codes were checked against the PS3.16 tables shipped with pydicom 3.0
  (``pydicom.sr``: CID 9537 and 9539) and the macro layout against PS3.3 C.36.2.1.5.
  **Caveat:** that macro belongs to the second-generation RT objects; in the classic RT Dose
  IOD it is not part of the RT Dose Module, so this file is a Standard Extended SOP
  Instance. A planning system that ignores the sequence still sees DoseType EFFECTIVE, the
  Series Description and the Dose Comment, which name the method and assumptions.
* Frame of reference: that of the reference course (the grid's patient coordinates).

RTDOSE of a residual budget (:func:`write_residual_budget`)
-----------------------------------------------------------
* Dose Type ``PHYSICAL``: PS3.3 C.8.8.3 defines PHYSICAL as physical dose and EFFECTIVE as
  physical dose corrected for a biological effect by a user-defined model; the budget is a
  physical dose of the planned fractionation (the LQ model was used to find it, but its values
  are what a plan may still deliver in Gy, not equieffective Gy). It is *not* a delivered or
  planned dose: the Series Description starts ``RESIDUAL BUDGET`` and the Dose Comment says
  what the unconstrained voxels hold.
* Voxels no limited structure covers have no budget; DICOM needs a finite value, so they hold
  a cap (default: the largest budget of any constrained voxel), named in the Dose Comment.
* Neither is labelled as a dose from a prior treatment: the budget is not a dose at all, and
  CID 7220 has no concept for an allowance, so it carries no derivation code (a planning
  system must not add it to anything).

Derivation of the cumulative EQD2 (DICOM CP-2379)
-------------------------------------------------
DICOM CP-2379 "Add new codes for referencing prior dose" (PS3.3, PS3.16; Letter Ballot,
correction package 126, last updated 2024-03-19;
https://www.dicomstandard.org/news-dir/current/docs/cpack126/cp2379.pdf, first page read)
adds a code for a dose from a prior treatment, for an RT Plan's Referenced Instance Sequence
(CID 7022), and codes for an RT Dose derived with radiobiological effects or for partial
deliveries (CID 7220). Its code values were read from a secondary source: the PS3.16 tables
bundled with pydicom, where DCM 129212 "Dose from prior Treatment" (CID 7022) and DCM 121377
"Composed with radiobiological effects" / 121378 "Composed with weighting for fractions
delivered" (CID 7220) first appear in the update to the **2024c** edition (pydicom commit
5b5fdb8 "Update concepts to 2024c", 2024-06-24); so they are in released editions from 2024c
on. The cumulative EQD2 RTDOSE carries, in Derivation Code Sequence (0008,9215):

* (121377, DCM, "Composed with radiobiological effects") -- CP-2379, PS3.16 2024c;
* (121370, DCM, "Composed from prior doses"), or (121371, DCM, "Composed from prior doses and
  current plan") when the newest course is the plan being made (the send-back) -- CID 7220,
  in PS3.16 before 2024c (same secondary source);

and, in Referenced Instance Sequence (0008,114A), every course's RTDOSE with Purpose of
Reference Code Sequence (0040,A170) = (121372, DCM, "Source dose for composing current dose"),
CID 7221. DCM 121378 is not written: recovery is a radiobiological effect, not a weighting for
fractions delivered. DCM 129212 is not written: it annotates an RT Plan's reference to a prior
dose, and reirrad writes no RT Plan (the planning system's plan may reference our cumulative
RTDOSE with it). David Clunie's dciodvfy (dicom3tools, built from the standard of 2022-06)
accepts both sequences as part of the RT Dose IOD and flags only the Radiobiological Dose
Effect Sequence as outside it (tests/io/test_rtdose_conformance.py).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, RTPlanStorage, generate_uid

from reirrad.core.geometry import Dose, DoseKind, Grid
from reirrad.core.registration import sitk_from_array
from reirrad.core.residual_budget import ResidualBudget
from reirrad.core.voxel import VoxelAssessment
from reirrad.errors import InputError

__all__ = [
    "write_cumulative_rtdose",
    "RT_DOSE_STORAGE",
    "code_item",
    "grid_geometry_attributes",
    "write_nifti",
    "write_nrrd",
    "write_residual_budget",
    "write_rtdose",
]

RT_DOSE_STORAGE = "1.2.840.10008.5.1.4.1.1.481.2"
_IMPLEMENTATION_UID = "1.2.826.0.1.3680043.8.498.1"  # pydicom's root, used by generate_uid

# PS3.16 codes (verified against pydicom 3.0's bundled CID tables)
_CATEGORY_FRACTIONATION = ("130127", "DCM", "Fractionation-based or temporally-based methods")
_METHOD_EQD2 = ("130130", "DCM", "Equivalent 2-Gray Fractions Model")
_METHOD_LQ = ("130131", "DCM", "Linear-Quadratic Model")
# CID 7220 "RT Dose Derivation" and CID 7221 "RT Dose Purpose of Reference" (see the module
# docstring for the editions; secondary source: pydicom's PS3.16 tables)
COMPOSED_FROM_PRIOR_DOSES = ("121370", "DCM", "Composed from prior doses")
COMPOSED_WITH_CURRENT_PLAN = ("121371", "DCM", "Composed from prior doses and current plan")
COMPOSED_WITH_RADIOBIOLOGY = ("121377", "DCM", "Composed with radiobiological effects")
SOURCE_DOSE = ("121372", "DCM", "Source dose for composing current dose")


def code_item(value: str, scheme: str, meaning: str) -> Dataset:
    """One item of a Code Sequence Macro."""
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def grid_geometry_attributes(grid: Grid) -> dict:
    """ImagePositionPatient, ImageOrientationPatient, PixelSpacing and frame offsets of a grid.

    The k axis must be perpendicular to the image planes (no shear); offsets are signed
    distances along the plane normal (row x column direction).
    """
    direction = grid.direction
    row, col, slice_axis = direction[:, 0], direction[:, 1], direction[:, 2]
    normal = np.cross(row, col)
    if abs(abs(float(np.dot(normal, slice_axis))) - 1.0) > 1e-4:
        raise InputError(
            "the grid's slice axis is not perpendicular to its planes; RTDOSE cannot store it",
            field="grid",
        )
    step = float(np.dot(grid.affine[:3, 2], normal))
    offsets = [round(step * k, 6) for k in range(grid.shape[0])]
    spacing = grid.spacing
    return {
        "ImagePositionPatient": [round(float(v), 6) for v in grid.origin],
        "ImageOrientationPatient": [round(float(v), 8) for v in (*row, *col)],
        "PixelSpacing": [round(float(spacing[1]), 6), round(float(spacing[0]), 6)],
        "GridFrameOffsetVector": offsets,
        "SliceThickness": round(abs(step), 6),
    }


def _new_dataset(sop_class: str, sop_instance: str) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_instance
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = _IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_instance
    ds.SpecificCharacterSet = "ISO_IR 192"
    now = _dt.datetime.now()
    ds.InstanceCreationDate = now.strftime("%Y%m%d")
    ds.InstanceCreationTime = now.strftime("%H%M%S")
    return ds


def _copy_patient_study(ds: Dataset, template: Dataset | None, study_uid: str | None) -> None:
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex"):
        setattr(ds, keyword, getattr(template, keyword, "") if template is not None else "")
    if template is not None:
        for keyword in (
            "StudyDate",
            "StudyTime",
            "StudyID",
            "AccessionNumber",
            "ReferringPhysicianName",
        ):
            setattr(ds, keyword, getattr(template, keyword, ""))
    else:
        for keyword in (
            "StudyDate",
            "StudyTime",
            "StudyID",
            "AccessionNumber",
            "ReferringPhysicianName",
        ):
            setattr(ds, keyword, "")
    ds.StudyInstanceUID = study_uid or (
        template.StudyInstanceUID
        if template is not None and "StudyInstanceUID" in template
        else generate_uid()
    )


def write_rtdose(
    dose: Dose,
    path: str | Path,
    *,
    frame_of_reference_uid: str | None = None,
    reference_ct: Dataset | str | Path | None = None,
    series_description: str | None = None,
    dose_comment: str | None = None,
    summation_type: str | None = None,
    study_instance_uid: str | None = None,
    series_instance_uid: str | None = None,
    referenced_plan_uid: str | Sequence[str] | None = None,
    patient: dict | None = None,
    derivation: Sequence[tuple[str, str, str]] = (),
    source_dose_uids: Sequence[str] = (),
) -> Path:
    """Write a dose as a DICOM RTDOSE file.

    Parameters
    ----------
    dose
        The dose; an EFFECTIVE dose is written with DoseType EFFECTIVE and the coded method
        (see the module docstring), a PHYSICAL one with DoseType PHYSICAL.
    path
        Output file.
    frame_of_reference_uid
        Frame of reference of the grid's coordinates (the reference course's). Taken from
        ``reference_ct`` when not given; one of the two is required.
    reference_ct
        A CT slice or the plan's RTDOSE (dataset or file) of the reference course: patient and
        study attributes and the frame of reference are copied from it.
    series_description
        Shown by planning systems; for effective doses it should name the method and the
        main assumptions (a default is built from the dose's provenance).
    dose_comment
        Dose Comment (3004,0006), at most 64 characters.
    summation_type
        DoseSummationType; default ``MULTI_PLAN`` for a cumulative effective dose
        (provenance has ``courses``), ``PLAN`` otherwise.
    referenced_plan_uid
        SOP Instance UID(s) of the RT Plan(s) to reference (classic RT Dose requires the
        reference when the summation type is PLAN/MULTI_PLAN: give every course's plan for a
        cumulative map; omitted when unknown).
    patient
        ``{"PatientName": ..., "PatientID": ...}`` overriding the template's.
    derivation
        Codes (value, scheme, meaning) for Derivation Code Sequence (0008,9215).
    source_dose_uids
        RTDOSE SOP Instance UIDs the dose was composed from: Referenced Instance Sequence
        (0008,114A), purpose (121372, DCM, "Source dose for composing current dose").
    """
    path = Path(path)
    template = _template(reference_ct)
    if frame_of_reference_uid is None:
        if template is None or "FrameOfReferenceUID" not in template:
            raise InputError(
                "the RTDOSE needs the reference frame of reference: give frame_of_reference_uid "
                "or a reference CT",
                field="frame_of_reference_uid",
            )
        frame_of_reference_uid = template.FrameOfReferenceUID
    values = np.asarray(dose.values, dtype=float)
    if np.any(~np.isfinite(values)) or np.any(values < 0):
        raise InputError(
            "dose values must be finite and >= 0 to be written as RTDOSE", field="dose"
        )
    ds = _new_dataset(RT_DOSE_STORAGE, generate_uid())
    _copy_patient_study(ds, template, study_instance_uid)
    for key, value in (patient or {}).items():
        setattr(ds, key, value)
    ds.Modality = "RTDOSE"
    ds.Manufacturer = "reirrad"
    ds.OperatorsName = ""  # RT Series Module, Type 2 (PS3.3 C.8.8.1): present, may be empty
    ds.SeriesInstanceUID = series_instance_uid or generate_uid()
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.FrameOfReferenceUID = frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    _write_pixels(ds, dose.grid, values)
    effective = dose.kind is DoseKind.EFFECTIVE
    ds.DoseType = "EFFECTIVE" if effective else "PHYSICAL"
    cumulative = "courses" in dose.provenance
    ds.DoseSummationType = (summation_type or ("MULTI_PLAN" if cumulative else "PLAN")).upper()
    _write_plan_references(ds, referenced_plan_uid)
    _write_derivation(ds, derivation, source_dose_uids)
    if effective:
        ds.RadiobiologicalDoseEffectSequence = [_effect_item(dose)]
    description = series_description or (_method_text(dose) if effective else "physical dose")
    ds.SeriesDescription = description[:64]
    comment = dose_comment or (_assumption_text(dose) if effective else "")
    if comment:
        ds.DoseComment = comment[:64]
    ds.ContentDate = ds.InstanceCreationDate
    ds.ContentTime = ds.InstanceCreationTime
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def _template(reference: Dataset | str | Path | None) -> Dataset | None:
    if reference is None or isinstance(reference, Dataset):
        return reference
    return pydicom.dcmread(reference, stop_before_pixels=True)


def _write_pixels(ds: Dataset, grid: Grid, values: np.ndarray) -> None:
    """Geometry, image pixel attributes and the dose as 32-bit unsigned integers scaled by
    Dose Grid Scaling (the largest value maps to 4e9, below 2**32)."""
    for key, value in grid_geometry_attributes(grid).items():
        setattr(ds, key, value)
    nk, nj, ni = grid.shape
    ds.NumberOfFrames = nk
    ds.FrameIncrementPointer = (0x3004, 0x000C)
    ds.Rows, ds.Columns = nj, ni
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 32
    ds.BitsStored = 32
    ds.HighBit = 31
    ds.PixelRepresentation = 0
    peak = float(values.max()) if values.size else 0.0
    scaling = peak / 4.0e9 if peak > 0 else 1.0
    ds.DoseGridScaling = f"{scaling:.10g}"
    scaling = float(ds.DoseGridScaling)
    ds.PixelData = np.round(values / scaling).astype("<u4").tobytes()
    ds.DoseUnits = "GY"


def _write_plan_references(ds: Dataset, plan_uids: str | Sequence[str] | None) -> None:
    if not plan_uids:
        return
    uids = [plan_uids] if isinstance(plan_uids, str) else list(plan_uids)
    ds.ReferencedRTPlanSequence = [_reference(RTPlanStorage, uid) for uid in uids]


def _reference(sop_class_uid: str, sop_instance_uid: str) -> Dataset:
    """One item of a reference sequence (Referenced SOP Class and Instance UID)."""
    ref = Dataset()
    ref.ReferencedSOPClassUID = sop_class_uid
    ref.ReferencedSOPInstanceUID = sop_instance_uid
    return ref


def _effect_item(dose: Dose) -> Dataset:
    """The Radiobiological Dose Effect Sequence item coding the method (module docstring)."""
    quantity = dose.quantity.upper()
    if quantity not in ("EQD2", "BED"):
        raise InputError(
            f"cannot code the effective quantity {dose.quantity!r}", field="dose.quantity"
        )
    effect = Dataset()
    effect.RadiobiologicalDoseEffectFlag = "YES"
    category = code_item(*_CATEGORY_FRACTIONATION)
    category.EffectiveDoseCalculationMethodCodeSequence = [
        code_item(*(_METHOD_EQD2 if quantity == "EQD2" else _METHOD_LQ))
    ]
    effect.EffectiveDoseCalculationMethodCategoryCodeSequence = [category]
    effect.EffectiveDoseCalculationMethodDescription = _method_text(dose)[:64]
    return effect


def write_cumulative_rtdose(
    result: VoxelAssessment,
    path: str | Path,
    *,
    reference_ct: Dataset | None = None,
    frame_of_reference_uid: str | None = None,
    includes_current_plan: bool = False,
) -> Path:
    """The voxel-wise cumulative EQD2 (with recovery) as RTDOSE: DoseType EFFECTIVE, every
    course's RT Plan and RTDOSE referenced, derivation codes of CID 7220 (module docstring), a
    series description naming the method and its main assumptions, the overlap rule in the
    Dose Comment.

    ``reference_ct`` and ``frame_of_reference_uid`` default to the result's (its reference
    course); the send-back to the planning system gives the new plan's RTDOSE instead, for
    its patient and study, and ``includes_current_plan=True`` (the newest course is the plan
    being made: 121371 instead of 121370).
    """
    reference_ct = result.reference_ct if reference_ct is None else reference_ct
    frame = frame_of_reference_uid or result.frame_of_reference_uid
    if frame is None and reference_ct is None:
        raise InputError("the reference dose has no Frame of Reference UID; cannot write RTDOSE")
    rule = result.case.analysis.overlap_rule
    rules = rule if isinstance(rule, str) else "priority list"
    return write_rtdose(
        result.total,
        path,
        frame_of_reference_uid=frame,
        reference_ct=reference_ct,
        series_description=_cumulative_series_description(result),
        dose_comment=f"a/b map ({rules}); recovery per tissue; see summary JSON",
        referenced_plan_uid=list(result.plan_uids) or None,
        derivation=(
            COMPOSED_WITH_CURRENT_PLAN if includes_current_plan else COMPOSED_FROM_PRIOR_DOSES,
            COMPOSED_WITH_RADIOBIOLOGY,
        ),
        source_dose_uids=result.dose_uids,
    )


def _write_derivation(
    ds: Dataset, derivation: Sequence[tuple[str, str, str]], source_dose_uids: Sequence[str]
) -> None:
    if derivation:
        ds.DerivationCodeSequence = [code_item(*code) for code in derivation]
    references = []
    for uid in dict.fromkeys(source_dose_uids):  # a dose summed twice is one source
        ref = _reference(RT_DOSE_STORAGE, uid)
        ref.PurposeOfReferenceCodeSequence = [code_item(*SOURCE_DOSE)]
        references.append(ref)
    if references:
        ds.ReferencedInstanceSequence = references


def _cumulative_series_description(result: VoxelAssessment) -> str:
    """At most 64 characters (LO): quantity, method, courses, recovery, mapping."""
    short = {"identity": "id", "reg": "REG", "rigid": "rigid", "deformable": "DIR"}
    kinds = sorted({short[m.mapping.split(" ")[0]] for m in result.courses})
    n = len(result.courses)
    if result.uncertain:
        return f"EQD2 DEFORMABLE-UNCERTAIN; LQ voxel sum {n} courses +recovery"[:64]
    return f"EQD2 LQ voxelwise sum {n} courses +recovery; map {'/'.join(kinds)}"[:64]


def write_residual_budget(
    budget: ResidualBudget,
    grid: Grid,
    path: str | Path,
    *,
    cap_gy: float | None = None,
    **rtdose_options,
) -> Path:
    """Write a residual budget as a PHYSICAL RTDOSE on the new course's grid.

    Parameters
    ----------
    budget
        From :func:`reirrad.core.residual_budget.residual_budget` on ``grid``.
    grid
        The new course's dose grid.
    path
        Output file.
    cap_gy
        Value of the voxels without any limit; default the largest constrained budget.
    rtdose_options
        Passed to :func:`write_rtdose` (``reference_ct`` = the new plan's RTDOSE or CT,
        ``referenced_plan_uid`` = the new plan, ...).
    """
    values = np.asarray(budget.values, dtype=float)
    if values.shape != tuple(grid.shape):
        raise InputError(
            f"budget shape {values.shape} is not the grid's {tuple(grid.shape)}", field="budget"
        )
    if not budget.constrained.any():
        raise InputError(
            "no voxel has a cumulative limit: there is no residual budget to send; check that "
            "the organs at risk with Dmax limits are in the new course's structure set",
            field="budget",
        )
    if cap_gy is None:
        cap_gy = float(values[budget.constrained].max())
    if not (np.isfinite(cap_gy) and cap_gy >= 0):
        raise InputError("cap must be finite and >= 0 Gy", field="cap_gy")
    values = np.where(budget.constrained, values, cap_gy)
    dose = Dose.physical(grid, values, fractions=budget.fractions)
    options = {
        "series_description": f"RESIDUAL BUDGET {budget.fractions} fx - NOT A DOSE",
        "dose_comment": f"no limit outside OARs: {cap_gy:.4g} Gy written there",
        "summation_type": "PLAN",
        **rtdose_options,
    }
    return write_rtdose(dose, path, **options)


def _method_text(dose: Dose) -> str:
    prov = dose.provenance
    parts = [f"{dose.quantity} LQ voxelwise"]
    if "courses" in prov:
        parts.append(f"sum of {len(prov['courses'])} courses")
    if prov.get("recovery") == "applied":
        parts.append("with recovery")
    elif prov.get("recovery") == "none":
        parts.append("no recovery")
    if prov.get("uncertain"):
        parts.append("DEFORMABLE-UNCERTAIN")
    return ", ".join(parts)


def _assumption_text(dose: Dose) -> str:
    prov = dose.provenance
    values = prov.get("alpha_beta_values_gy")
    parts = []
    if values:
        parts.append("a/b " + "/".join(f"{v:g}" for v in values[:4]) + " Gy")
    if prov.get("alpha_beta_rule"):
        parts.append(str(prov["alpha_beta_rule"]))
    if prov.get("uncertain"):
        parts.append("deformable mapping uncertain")
    return "; ".join(parts) or "effective dose, see report"


def write_nrrd(dose: Dose, path: str | Path) -> Path:
    """Write the dose (Gy) as NRRD through SimpleITK (LPS patient coordinates, as DICOM)."""
    return _write_sitk(dose, Path(path), (".nrrd", ".nhdr"))


def write_nifti(dose: Dose, path: str | Path) -> Path:
    """Write the dose (Gy) as NIfTI through SimpleITK (ITK converts LPS to the NIfTI RAS header)."""
    return _write_sitk(dose, Path(path), (".nii", ".nii.gz"))


def _write_sitk(dose: Dose, path: Path, suffixes: tuple[str, ...]) -> Path:
    import SimpleITK as sitk

    if not any(str(path).endswith(s) for s in suffixes):
        raise InputError(f"file name must end with {' or '.join(suffixes)}", source=str(path))
    image = sitk_from_array(np.asarray(dose.values, dtype=np.float32), dose.grid)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path), True)
    return path
