"""The clinical report (``reirrad report``): what the rendered HTML and PDF show.

Chromium renders the HTML (``--dump-dom``, ``--screenshot``) and prints the PDF; poppler's
``pdftotext``/``pdftoppm`` read the PDF back.  The expected numbers are published or exact:
the Li 2018 index of the case report's patient is 224.86 (Marinova et al. 2026 report 224.8),
AJCC 9 stage III for cT4 cN1 M0, and the SHA-256 of the case file is recomputed here with
hashlib, independently of the report code.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

from reirrad.cli.app import main  # noqa: E402
from reirrad.errors import InputError  # noqa: E402
from reirrad.pipelines.run import CaseRun, run_case  # noqa: E402
from reirrad.present.report import (  # noqa: E402
    build_report,
    chromium_command,
    find_chromium,
    write_report,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "npc-reirradiation-2026.yaml"
STRUCTURES = (
    "Recurrence",
    "Right parotid gland",
    "Mandibular joint (masseter muscles)",
    "Right internal carotid artery",
    "Right submandibular gland",
    "Levator and tensor veli palatini / pharyngeal constrictor muscles",
    "Nasopharyngeal and pharyngeal mucosa",
)

CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium')"
)
needs_poppler = pytest.mark.skipif(
    shutil.which("pdftotext") is None or shutil.which("pdftoppm") is None,
    reason="poppler-utils (pdftotext, pdftoppm) are not installed",
)


def _chromium(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="reirrad-test-chromium-") as profile:
        return subprocess.run(
            chromium_command(CHROMIUM, profile, *args),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@pytest.fixture(scope="module")
def example_report(npc_rendered) -> dict:
    """The example case's report, written once per session (tests/present/conftest.py)."""
    written = npc_rendered.written
    return {"folder": written.html.parent, "html": written.html, "pdf": written.pdf}


@pytest.fixture(scope="module")
def example_run() -> CaseRun:
    return run_case(EXAMPLE)


# ------------------------------------------------------------------ HTML content (no browser)


def test_html_is_self_contained(example_report):
    text = example_report["html"].read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    # no external resources: every image is inline, no stylesheet or script is fetched
    assert "data:image/svg+xml;base64," in text
    for external in ('src="http', "src='http", 'href="http', "<script", "<link "):
        assert external not in text
    assert "@page" in text and "A4" in text


def test_report_data_sections(example_run):
    data = build_report(example_run)
    s = data.sections
    assert data.patient_id == "MARINOVA-2026-NPC"
    assert [c["id"] for c in s["courses"]] == ["IMRT", "HFRS"]
    # interval: end of IMRT 2024-02-13 to start of HFRS 2025-05-27 = 469 days
    assert s["courses"][0]["interval"].startswith("469 d")
    assert {t["structure"] for t in s["tissues"]} == set(STRUCTURES)
    assert {t["alpha_beta"] for t in s["tissues"]} == {"15 Gy", "3 Gy"}
    assert s["files"][0]["sha256"] == hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()
    assert s["prognosis"]["li"]["index"] == "224.86"
    assert s["prognosis"]["stage"]["group"] == "III"
    # structure-level case: the DICOM-only sections say why they are empty
    for key in ("dvh", "images", "sensitivity", "reirradiation_type"):
        assert s[key]["unavailable"] == "not available: the case has no DICOM doses"
    assert "needs a dose-volume histogram" in s["ntcp"]["unavailable"]


def test_verdicts_follow_the_limits(example_run):
    s = build_report(example_run).sections
    by_id = {row["id"]: row for row in s["limits"]}
    # parotid: cumulative Dmean EQD2 (a/b 3) = 0.5 x EQD2(29.9 Gy/33) + EQD2(5.1 Gy/4)
    parotid = 0.5 * 29.9 * (1 + 29.9 / 33 / 3) / (1 + 2 / 3) + 5.1 * (1 + 5.1 / 4 / 3) / (1 + 2 / 3)
    row = by_id["marinova2026-parotid-dmean"]
    assert row["value"] == f"{parotid:.2f} Gy"
    assert row["verdict"] == ("PASS" if parotid < 26 else "FAIL")
    submandibular = (
        0.5 * 63.7 * (1 + 63.7 / 33 / 3) / 1.6666666666666667
        + 4.47 * (1 + 4.47 / 4 / 3) / 1.6666666666666667
    )
    row = by_id["marinova2026-submandibular-dmean"]
    assert row["value"] == f"{submandibular:.2f} Gy"
    assert row["verdict"] == "FAIL"  # above the 26 Gy limit


def test_bad_input_is_one_input_error(tmp_path, example_run):
    with pytest.raises(InputError, match="not found"):
        run_case(tmp_path / "missing.yaml")
    with pytest.raises(TypeError, match="CaseRun"):
        build_report(EXAMPLE)  # the report runs nothing: run_case(path) first
    with pytest.raises(InputError, match=r"\.html"):
        write_report(example_run, tmp_path / "report.txt")
    with pytest.raises(InputError, match=r"\.pdf"):
        write_report(example_run, tmp_path / "r.html", pdf=tmp_path / "r.png")


def test_missing_dicom_file_is_named(tmp_path):
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        '    doses:                                   # Table 1, "mean dose (Gy) from IMRT"',
        "    dicom: {rtdose: missing/RD.dcm, rtstruct: missing/RS.dcm}\n    doses:",
        1,
    )
    case = tmp_path / "case.yaml"
    case.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match="missing/RD.dcm"):
        run_case(case)


def test_cli_writes_html_and_reports_errors_in_one_line(tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", str(EXAMPLE), "--out", str(out)]) == 0
    assert out.is_file()
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed
    assert "sections without content (the report says why): dvh, images, ntcp" in printed
    assert main(["report", str(tmp_path / "nope.yaml"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("reirrad: error:")


def test_pdf_without_chromium_fails_with_install_hint(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("REIRRAD_CHROMIUM", str(tmp_path / "no-such-chromium"))
    code = main(
        [
            "report",
            str(EXAMPLE),
            "--out",
            str(tmp_path / "r.html"),
            "--pdf",
            str(tmp_path / "r.pdf"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "apt-get install chromium" in err[0]


# ------------------------------------------------------------------ rendered by Chromium


@needs_chromium
def test_rendered_dom_shows_the_report(example_report):
    done = _chromium("--dump-dom", example_report["html"].resolve().as_uri())
    dom = done.stdout
    assert "MARINOVA-2026-NPC" in dom
    for name in STRUCTURES:
        assert name.replace("/", "/") in dom.replace("&amp;", "&")
    assert 'id="li-index">224.86<' in dom
    assert '<span class="verdict PASS">PASS</span>' in dom
    assert '<span class="verdict FAIL">FAIL</span>' in dom
    for text in (
        "Not a medical device",
        "alpha/beta",
        "marinova2026-fixed-50",
        hashlib.sha256(EXAMPLE.read_bytes()).hexdigest(),
        "ESTRO-EORTC",
        "Signature",
        "not available: the case has no DICOM doses",
    ):
        assert text in dom, text


@needs_chromium
def test_screenshot_is_not_blank(example_report):
    shot = example_report["folder"] / "shot.png"
    _chromium(
        "--hide-scrollbars",
        "--window-size=1000,1400",
        f"--screenshot={shot}",
        example_report["html"].resolve().as_uri(),
    )
    from matplotlib.image import imread

    pixels = imread(shot)[..., :3]
    assert pixels.shape[0] >= 1000 and pixels.shape[1] >= 900
    assert float(np.std(pixels)) > 0.05  # text, tables and the timeline, not a blank page
    # the header's accent colour (#1f4e79) is drawn somewhere on the first screen
    accent = np.array([0x1F, 0x4E, 0x79]) / 255.0
    assert np.any(np.all(np.abs(pixels - accent) < 0.04, axis=-1))


@needs_chromium
@needs_poppler
def test_pdf_pages_show_the_report(example_report):
    pdf = example_report["pdf"]
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    pages = int(next(x for x in info.stdout.splitlines() if x.startswith("Pages:")).split()[1])
    assert pages >= 1
    assert "595 x 842" in info.stdout or "594.96 x 841.92" in info.stdout  # A4 in points
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    for key in (
        "MARINOVA-2026-NPC",
        "224.86",
        "NOT A MEDICAL DEVICE",
        "Right parotid gland",
        "PASS",
        "FAIL",
        "Review and sign-off",
        "page 1 of",
    ):
        assert key in text, key
    out = example_report["folder"] / "page"
    subprocess.run(
        ["pdftoppm", "-png", "-r", "40", "-f", "1", "-l", "1", str(pdf), str(out)], check=True
    )
    from matplotlib.image import imread

    first = imread(next(example_report["folder"].glob("page*.png")))[..., :3]
    assert float(np.std(first)) > 0.05


# ------------------------------------------------------------------ DICOM phantom case

PHANTOM_CASE = """\
reirrad_case: 1
patient: {id: REIRRAD-PHANTOM, sex: other}
tissue_defaults:
  target: {alpha_beta: 10, recovery: none}
  organ_at_risk: {alpha_beta: 2, recovery: nieder-step}
structures:
  - {name: PTV_reirr, role: target}
  - {name: SpinalCanal, role: organ_at_risk, organ: spinal_cord}
  - {name: OAR_sphere, role: organ_at_risk, alpha_beta: 3}
courses:
  - id: C1
    start: 2016-03-01
    end: 2016-04-11
    fractions: 30
    prescriptions: [{target: PTV, dose_gy: 60, fractions: 30}]
    dicom:
      rtdose: course1/RD.dcm
      rtplan: course1/RP.dcm
      rtstruct: course1/RS.dcm
      ct: course1/CT
      registration: {method: reg, file: course1/REG_to_reference.dcm}
  - id: C2
    start: 2023-09-01
    end: 2023-09-08
    fractions: 5
    prescriptions: [{target: PTV_reirr, dose_gy: 30, fractions: 5}]
    dicom:
      rtdose: course2/RD.dcm
      rtplan: course2/RP.dcm
      rtstruct: course2/RS.dcm
      ct: course2/CT
analysis:
  reirradiation_type_threshold_gy: 10
constraints:
  sets: [reirradiation]
"""


@pytest.fixture(scope="module")
def phantom_report(tmp_path_factory) -> dict:
    from reirrad.io.phantom import default_phantom, write_phantom_case

    folder = tmp_path_factory.mktemp("phantom")
    written = write_phantom_case(default_phantom(2), folder)
    case = folder / "case.yaml"
    case.write_text(PHANTOM_CASE, encoding="utf-8")
    html = folder / "report.html"
    # HTML only: the printed pages are checked on the 3-course phantom (conftest.py)
    write_report(run_case(case), html)
    return {"folder": folder, "case": case, "html": html, "pdf": None, "written": written}


def test_phantom_report_has_the_dicom_sections(phantom_report):
    text = phantom_report["html"].read_text(encoding="utf-8")
    assert "not available: the case has no DICOM doses" not in text
    # timeline, DVHs (per course physical/EQD2 and cumulative), orthogonal planes
    assert text.count("data:image/svg+xml;base64,") >= 3
    for heading in ("Dose-volume histograms", "Cumulative EQD2 (with recovery)", "axial"):
        assert heading in text
    # the REG object maps course 1; course 2 is the reference
    assert "reg: DICOM Spatial Registration" in text
    # Type 1: the 10 Gy isodoses of the two courses overlap (both cover the PTV)
    assert "Type 1 re-irradiation" in text
    # NTCP of the cord with the packaged Burman 1991 LKB set
    assert "TD50 66.5 Gy, m 0.175, n 0.05" in text
    # the voxel-wise result leads; the structure-level methods are the comparison
    assert "Verdicts from the voxel-wise cumulative EQD2" in text
    assert "Structure-level approximation, for comparison" in text
    # interval from the end of C1 to the start of C2, by the calendar
    import datetime as dt

    days = (dt.date(2023, 9, 1) - dt.date(2016, 4, 11)).days
    assert f"{days} d" in text


def test_phantom_report_hashes_every_dicom_file(phantom_report):
    # every input file's SHA-256 is in the provenance appendix beside the report; the
    # report names the appendix and gives its SHA-256
    import json

    text = phantom_report["html"].read_text(encoding="utf-8")
    appendix = phantom_report["html"].with_name("report.provenance.json")
    assert appendix.name in text
    assert hashlib.sha256(appendix.read_bytes()).hexdigest() in text
    listed = {row["path"]: row["sha256"] for row in json.loads(appendix.read_text())["files"]}
    written = phantom_report["written"]
    files = [phantom_report["case"]]
    for course in written.courses:
        files += [course.rtdose, course.rtplan, course.rtstruct, *course.ct]
    files.append(written.courses[0].registration)
    for path in files:
        key = str(Path(path).relative_to(phantom_report["folder"]))
        assert listed[key] == hashlib.sha256(Path(path).read_bytes()).hexdigest(), path


def test_report_runs_the_case_once(phantom_report, tmp_path, monkeypatch):
    # `reirrad report` runs the voxel-wise accumulation exactly once (run_case), and the
    # report is built from that CaseRun: the explorer, NTCP and per-course DVHs reuse it
    import reirrad.pipelines.accumulate as accumulate
    import reirrad.pipelines.assess as assess
    import reirrad.pipelines.explore as explore
    import reirrad.present.report as report

    calls, given = [], []
    original = accumulate.accumulate_case

    def counting(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    for module in (accumulate, assess, explore):
        monkeypatch.setattr(module, "accumulate_case", counting)
    build = report.build_report

    def spy(run, **kwargs):
        given.append(run)
        return build(run, **kwargs)

    monkeypatch.setattr(report, "build_report", spy)
    out = tmp_path / "r.html"
    assert main(["report", str(phantom_report["case"]), "--out", str(out)]) == 0
    assert len(calls) == 1
    assert len(given) == 1 and isinstance(given[0], CaseRun)
    assert given[0].voxel is not None and given[0].ntcp


@pytest.fixture(scope="module")
def phantom_run(phantom_report) -> CaseRun:
    return run_case(phantom_report["case"])


def test_build_report_reads_no_dose_or_structure_file(phantom_run, monkeypatch):
    run = phantom_run
    import reirrad.io.dicom as dicom

    def refuse(*args, **kwargs):
        raise AssertionError("the report read a DICOM dose, plan or structure file")

    for name in ("read_rtdose", "read_rtstruct", "read_rtplan"):
        monkeypatch.setattr(dicom, name, refuse)
    s = build_report(run).sections
    assert "unavailable" not in s["dvh"] and "unavailable" not in s["images"]
    # the NTCP rows are the run's (structure_ntcp), one per recovery variant
    rows = s["ntcp"]["tables"][0]["rows"]
    assert [(r[0], r[3]) for r in rows] == [(i.structure, i.variant) for i in run.ntcp]
    assert [r[5] for r in rows] == [f"{100 * i.probability:.1f}" for i in run.ntcp]


def test_course_dvhs_add_up_to_the_cumulative_dvhs(phantom_run):
    # The mean dose is linear in the dose map (the DVH engine's mean is exact for the
    # interpolated dose), so the per-course means on the reference grid add up to the
    # cumulative mean: physical, and EQD2 without recovery with the run's tissue model.
    from reirrad.pipelines.accumulate import course_dvhs, structure_dvh

    voxel = phantom_run.voxel
    dvhs = course_dvhs(voxel)
    assert list(dvhs) == [c.course for c in voxel.courses]
    for s in voxel.structures:
        physical = sum(dvhs[c][s.name][0].dmean for c in dvhs)
        eqd2 = sum(dvhs[c][s.name][1].dmean for c in dvhs)
        total = structure_dvh(voxel, s.name, "physical")
        assert physical == pytest.approx(total.dmean, rel=1e-5), s.name
        assert eqd2 == pytest.approx(s.dvh_no_recovery.dmean, rel=1e-5), s.name
        for c in dvhs:
            assert dvhs[c][s.name][0].volume_cc == pytest.approx(s.dvh.volume_cc, rel=1e-9)


def test_partial_coverage_flag_is_shown_with_the_verdict(phantom_run):
    import dataclasses

    run = phantom_run
    voxel = run.voxel
    flag = "PARTIAL COVERAGE: test flag"
    structure = next(s for s in voxel.structures if s.role != "target")
    structures = tuple(
        dataclasses.replace(s, flags=(flag,)) if s is structure else s for s in voxel.structures
    )
    constraints = tuple(
        dataclasses.replace(c, flags=(flag,)) if c.structure == structure.name else c
        for c in voxel.constraints
    )
    voxel = dataclasses.replace(voxel, structures=structures, constraints=constraints)
    assessment = dataclasses.replace(run.assessment, voxel=voxel)
    data = build_report(dataclasses.replace(run, assessment=assessment))
    flagged = [row for row in data.sections["limits"] if row["structure"] == structure.name]
    assert flagged and all(row["flags"] == [flag] for row in flagged)
    cells = [
        cell
        for table in data.sections["sensitivity"]["tables"]
        for row in table["rows"]
        if row[0] == structure.name
        for cell in row
        if isinstance(cell, dict)
    ]
    assert cells and all(cell["flags"] == [flag] for cell in cells)
    from reirrad.present.report import render_html

    html = render_html(data)
    assert f'FAIL</span><span class="flag">⚠ {flag}</span>' in html or (
        f'PASS</span><span class="flag">⚠ {flag}</span>' in html
    )


def test_phantom_pdf_shows_dvh_and_planes(phantom3_rendered):
    # the 3-course phantom printed once per session (tests/present/conftest.py)
    if phantom3_rendered.pages is None:
        pytest.skip("Chromium and poppler-utils (pdftotext, pdftoppm) are needed")
    text = "\f".join(phantom3_rendered.pages)
    for key in ("PHANTOM-EXAMPLE", "PTV_reirr", "SpinalCanal", "OAR_sphere", "Type 1", "NTCP"):
        assert key in text, key
    # the page with the orthogonal planes is rendered: a colour image, not blank
    number = next(
        i for i, page in enumerate(phantom3_rendered.pages) if "axial, coronal and sagittal" in page
    )
    image = phantom3_rendered.images[number]
    saturation = image.max(axis=-1) - image.min(axis=-1)
    assert float(np.mean(saturation > 0.5)) > 0.01  # the colour-mapped dose


def test_dicom_case_without_voxel_sum_says_why(phantom_report):
    # course C1 typed in, C2 from DICOM: the structure level works, the voxel sum cannot
    text = PHANTOM_CASE.replace(
        """    dicom:
      rtdose: course1/RD.dcm
      rtplan: course1/RP.dcm
      rtstruct: course1/RS.dcm
      ct: course1/CT
      registration: {method: reg, file: course1/REG_to_reference.dcm}
""",
        """    doses:
      PTV_reirr: {Dmean: 50, Dmax: 62, D2%: 60, D98%: 40, D0.035cc: 61}
      SpinalCanal: {Dmean: 15, Dmax: 40, D2%: 35, D98%: 2, D0.035cc: 38}
      OAR_sphere: {Dmean: 35, Dmax: 50, D2%: 48, D98%: 20, D0.035cc: 49}
""",
    )
    case = phantom_report["folder"] / "mixed.yaml"
    case.write_text(text, encoding="utf-8")
    s = build_report(run_case(case)).sections
    for key in ("dvh", "images", "sensitivity"):
        assert "the voxel-wise accumulation could not run" in s[key]["unavailable"]
    assert any("could not run" in w for w in s["warnings"])
