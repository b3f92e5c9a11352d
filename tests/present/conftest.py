"""Rendered reports, once per case: HTML, the provenance appendix, the PDF printed by headless
Chromium and its pages read back with poppler (``pdftotext`` per page, ``pdftoppm`` PNGs).

Rendering takes seconds per case (the 3-course phantom with 160 CT slices per course is
written, run and printed), so every page test shares these fixtures.  Without Chromium or
poppler the PDF keys are ``None`` and the page tests skip.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from reirrad.pipelines.run import CaseRun, run_case
from reirrad.present.report import WrittenReport, find_chromium, write_report

ROOT = Path(__file__).resolve().parents[2]
NPC_CASE = ROOT / "examples" / "npc-reirradiation-2026.yaml"
#: CT slices per course of the phantom (a head-and-neck-sized series).
PHANTOM_CT_SLICES = 160
#: Resolution of the page images (dots per inch): enough to find the lowest printed row.
PAGE_DPI = 50

HAVE_PDF_TOOLS = (
    find_chromium() is not None
    and shutil.which("pdftotext") is not None
    and shutil.which("pdftoppm") is not None
)


@dataclass(frozen=True)
class RenderedReport:
    """A report as written and, when the tools are there, as printed."""

    run: CaseRun
    written: WrittenReport
    html: str
    #: text of each PDF page (``pdftotext -layout``), in order
    pages: list[str] | None
    #: each page as an RGB array in [0, 1] (``pdftoppm -r PAGE_DPI``)
    images: list[np.ndarray] | None


def _render(run: CaseRun, folder: Path) -> RenderedReport:
    pdf = folder / "report.pdf" if HAVE_PDF_TOOLS else None
    written = write_report(run, folder / "report.html", pdf=pdf)
    html = written.html.read_text(encoding="utf-8")
    if pdf is None:
        return RenderedReport(run, written, html, None, None)
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    pages = text.split("\f")
    if pages and not pages[-1].strip():
        pages = pages[:-1]
    subprocess.run(
        ["pdftoppm", "-png", "-r", str(PAGE_DPI), str(pdf), str(folder / "page")], check=True
    )
    from matplotlib.image import imread

    files = sorted(folder.glob("page-*.png"), key=lambda p: int(re.findall(r"\d+", p.stem)[-1]))
    images = [imread(p)[..., :3] for p in files]
    return RenderedReport(run, written, html, pages, images)


@pytest.fixture(scope="session")
def npc_rendered(tmp_path_factory) -> RenderedReport:
    """The bundled NPC case report (structure level: typed-in statistics, no DICOM)."""
    return _render(run_case(NPC_CASE), tmp_path_factory.mktemp("npc-report"))


@pytest.fixture(scope="session")
def phantom3_rendered(tmp_path_factory) -> RenderedReport:
    """The 3-course DICOM phantom case (``reirrad phantom``'s example case) with a CT of
    :data:`PHANTOM_CT_SLICES` slices per course: the voxel-wise path."""
    from reirrad.io.phantom import write_example_case

    folder = tmp_path_factory.mktemp("phantom3-report")
    case = write_example_case(folder / "case", n_courses=3, ct_slices=PHANTOM_CT_SLICES)
    return _render(run_case(case), folder)
