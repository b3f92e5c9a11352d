"""The report as a physician signs it: what leads, what the summary counts, the provenance,
the explorer's verdict and the pages themselves (PDF printed by Chromium, read back with
poppler).

Expected values come from the run's own result objects (the verdicts a limit got), from
hashlib over the files on disk (SHA-256, the series hash by its stated definition) and from
the printed pages; never from the report's own tables.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html as html_lib
import json
import re

import numpy as np
import pytest

from reirrad.present.report import build_report, render_html

#: CT slices per course of the phantom case (tests/present/conftest.py)
PHANTOM_CT_SLICES = 160

#: Printable area of the page: the footer lives in the bottom margin (17 mm of 297 mm).
FOOTER_FRACTION = 17.0 / 297.0


@pytest.fixture(params=["npc", "phantom3"])
def rendered(request):
    return request.getfixturevalue(f"{request.param}_rendered")


def _element(html: str, element_id: str) -> str:
    """The HTML of the element with this id (up to its closing tag of the same name)."""
    match = re.search(rf'<(\w+)[^>]*\bid="{element_id}"', html)
    assert match, element_id
    tag = match.group(1)
    depth, position = 0, match.start()
    for token in re.finditer(rf"<(/?){tag}\b[^>]*>", html[match.start() :]):
        depth += -1 if token.group(1) else 1
        if depth == 0:
            return html[position : match.start() + token.end()]
    raise AssertionError(f"unclosed {element_id}")


def _count(html: str, element_id: str) -> int:
    return int(re.search(rf'id="{element_id}">(\d+)<', html).group(1))


def _pages(rendered) -> tuple[list[str], list[np.ndarray]]:
    """The printed pages (text, image); skips without Chromium or poppler."""
    if rendered.pages is None:
        pytest.skip("Chromium and poppler-utils (pdftotext, pdftoppm) are needed")
    return rendered.pages, rendered.images


def _expected_verdicts(rendered) -> list[str]:
    """The verdicts of the result the report must lead with: the voxel-wise limits when the
    voxel-wise sum ran, else the structure-level ones (from the run, not the report)."""
    run = rendered.run
    if run.voxel is not None:
        return [item.result.status for item in run.voxel.constraints]
    return [o.result.status for r in run.assessment.results for o in r.constraints]


# ------------------------------------------------------------------ summary and results


def test_summary_boxes_count_the_limits_table(rendered):
    html = rendered.html
    table = _element(html, "limits-table")
    shown_pass = table.count('<span class="verdict PASS">')
    shown_fail = table.count('<span class="verdict FAIL">')
    expected = _expected_verdicts(rendered)
    assert (shown_pass, shown_fail) == (expected.count("pass"), expected.count("fail"))
    assert _count(html, "count-met") == shown_pass
    assert _count(html, "count-exceeded") == shown_fail
    # each exceeded limit is named in its box
    box = _element(html, "overview")
    for row in re.findall(r"<tr>.*?</tr>", table, flags=re.S):
        if '<span class="verdict FAIL">' in row:
            structure = html_lib.unescape(re.search(r"<td>(.*?)</td>", row).group(1))
            assert html_lib.escape(structure) in box


def test_voxel_wise_result_leads_and_structure_level_is_a_labelled_comparison(
    phantom3_rendered,
):
    html, voxel = phantom3_rendered.html, phantom3_rendered.run.voxel
    assert voxel is not None
    summary = _element(html, "summary-table")
    # the main table holds the voxel-wise cumulative EQD2 of every structure
    for s in voxel.structures:
        assert f"<strong>{s.metric('Dmean').eqd2_gy:.2f}</strong>" in summary, s.name
    basis = _element(html, "basis")
    assert "voxel-wise" in basis
    # the structure-level approximation comes after the result, under its own heading
    comparison = _element(html, "comparison")
    assert "Structure-level approximation, for comparison" in comparison
    assert html.index('id="limits-table"') < html.index('id="comparison"')
    structure_level = phantom3_rendered.run.assessment.results
    dmean = next(r for r in structure_level if r.statistic == "Dmean")
    assert f"<strong>{dmean.cumulative.eqd2_gy:.2f}</strong>" in comparison


def test_npc_leads_with_the_structure_level_result_and_names_what_was_not_evaluable(
    npc_rendered,
):
    html = npc_rendered.html
    assert npc_rendered.run.voxel is None
    assert 'id="comparison"' not in html
    not_evaluated = npc_rendered.run.assessment.not_evaluated
    assert not_evaluated  # the case report gives the carotid Dmax for the second course only
    assert _count(html, "count-not-evaluable") == len(not_evaluated)
    box = _element(html, "overview")
    for item in not_evaluated:
        assert html_lib.escape(item.structure) in box


def test_partial_coverage_flag_reaches_the_summary(phantom3_rendered):
    run = phantom3_rendered.run
    flag = "PARTIAL COVERAGE: test flag"
    structure = next(s for s in run.voxel.structures if s.role != "target")
    voxel = dataclasses.replace(
        run.voxel,
        structures=tuple(
            dataclasses.replace(s, flags=(flag,)) if s is structure else s
            for s in run.voxel.structures
        ),
        constraints=tuple(
            dataclasses.replace(c, flags=(flag,)) if c.structure == structure.name else c
            for c in run.voxel.constraints
        ),
    )
    assessment = dataclasses.replace(run.assessment, voxel=voxel)
    html = render_html(build_report(dataclasses.replace(run, assessment=assessment)))
    box = _element(html, "overview")
    assert f"{structure.name}: {flag}" in box
    assert flag in _element(html, "summary-table")


def test_no_developer_wording_in_the_report(rendered):
    text = html_lib.unescape(rendered.html)
    for phrase in (
        "project brief",
        "not checked against the full text",
        "declare a mixed statistic",
        "planning document",
    ):
        assert phrase not in text, phrase


# ------------------------------------------------------------------ provenance


def test_provenance_is_one_line_per_series_with_a_reproducible_series_hash(phantom3_rendered):
    written = phantom3_rendered.written
    case_dir = phantom3_rendered.run.base
    files = sorted(p for p in case_dir.rglob("*") if p.is_file())
    digests = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    table = _element(phantom3_rendered.html, "files-table")
    # each CT series: 160 files, one SHA-256 over the sorted per-file digests
    for folder in sorted({p.parent for p in files if p.parent.name == "CT"}):
        members = sorted(digests[p] for p in files if p.parent == folder)
        assert len(members) == PHANTOM_CT_SLICES
        series = hashlib.sha256("".join(d + "\n" for d in members).encode()).hexdigest()
        assert series in table, folder
        for digest in members:  # the per-file digests are in the appendix, not the report
            assert digest not in phantom3_rendered.html
    # the appendix: every input file with its own SHA-256, referenced by name and hash
    appendix = written.provenance
    assert appendix == written.html.with_name("report.provenance.json")
    assert appendix.name in phantom3_rendered.html
    assert hashlib.sha256(appendix.read_bytes()).hexdigest() in phantom3_rendered.html
    listed = {row["sha256"] for row in json.loads(appendix.read_text())["files"]}
    assert set(digests.values()) <= listed


def test_provenance_fits_on_one_page(phantom3_rendered):
    pages, _ = _pages(phantom3_rendered)
    start = [i for i, page in enumerate(pages) if "Input files (SHA-256)" in page]
    end = [i for i, page in enumerate(pages) if "provenance appendix" in page]
    assert len(start) == 1 and len(end) == 1 and start == end
    # no page lists per-file hashes: at most one SHA-256 per series row, plus the appendix's
    hashes = re.findall(r"\b[0-9a-f]{64}\b", "\n".join(pages))
    series_rows = _element(phantom3_rendered.html, "files-table").count("<tr>") - 1
    assert len(hashes) <= series_rows + 1


# ------------------------------------------------------------------ explorer


def test_no_feasible_scheme_is_said_with_the_limits_already_exceeded(npc_rendered):
    exploration = npc_rendered.run.exploration
    assert exploration is not None and not any(r.feasible for r in exploration.result.rows)
    html = npc_rendered.html
    message = html_lib.unescape(_element(html, "no-feasible-scheme"))
    assert "No feasible scheme" in message
    for exceeded in exploration.exceeded:
        assert exceeded in message
    assert 'id="explorer-table"' not in html  # no table of "none" rows
    assert "no feasible scheme" in _element(html, "overview-explorer")


def test_no_feasible_scheme_is_printed(npc_rendered):
    pages, _ = _pages(npc_rendered)
    assert any("No feasible scheme" in page for page in pages)


# ------------------------------------------------------------------ pages


def _fill(image: np.ndarray) -> float:
    """Lowest printed row above the footer, as a fraction of the page height."""
    height = image.shape[0]
    body = image[: int(height * (1.0 - FOOTER_FRACTION))]
    rows = np.flatnonzero((body < 0.9).any(axis=(1, 2)))
    return 0.0 if rows.size == 0 else float(rows[-1] + 1) / height


def _section_titles(html: str) -> list[str]:
    titles = re.findall(r"<h2[^>]*>(.*?)</h2>", html, flags=re.S)
    return [html_lib.unescape(re.sub(r"<[^>]+>", "", t)).strip() for t in titles]


def _starts_section(page: str, titles: list[str]) -> bool:
    lines = [line.strip() for line in page.splitlines() if line.strip()]
    return bool(lines) and any(lines[0].startswith(t[:30]) for t in titles)


def test_no_page_is_under_a_third_full_except_the_last_of_a_section(rendered):
    titles = _section_titles(rendered.html)
    assert len(titles) >= 10
    pages, images = _pages(rendered)
    assert len(pages) == len(images)
    for number, image in enumerate(images):
        last = number == len(images) - 1
        section_ends = last or _starts_section(pages[number + 1], titles)
        if not section_ends:
            assert _fill(image) >= 1 / 3, f"page {number + 1} is {_fill(image):.0%} full"


def test_pages_are_a4_and_numbered(rendered):
    pages, images = _pages(rendered)
    for image in images:
        height, width = image.shape[:2]
        assert height / width == pytest.approx(297 / 210, rel=0.01)
    for number, page in enumerate(pages, start=1):
        assert f"page {number} of {len(pages)}" in page


def test_recovery_outside_its_evidence_is_a_verdict_to_check(npc_rendered):
    # the case report's model credits 50 % "after an interval of 2 years"; the interval from
    # the end of IMRT (2024-02-13) to the start of HFRS (2025-05-27) is 469 days
    html = npc_rendered.html
    box = html_lib.unescape(_element(html, "overview"))
    assert "recovery after IMRT (469 d) credited with marinova2026-fixed-50" in box
    assert _count(html, "count-to-check") >= 1


# --------------------------------------------------------------------------------------
# Figures as printed: orientation letters (text in the PDF, the figures are SVG) and one
# distinct colour per structure (pixels of the printed legend)
# --------------------------------------------------------------------------------------


def _words(pdf, page: int) -> list[tuple[str, float, float, float, float]]:
    """Words of a PDF page (1-based) with their boxes in points (``pdftotext -bbox``)."""
    import subprocess

    xml = subprocess.run(
        ["pdftotext", "-bbox", "-f", str(page), "-l", str(page), str(pdf), "-"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    found = re.findall(
        r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>', xml
    )
    return [(w, float(a), float(b), float(c), float(d)) for a, b, c, d, w in found]


def _page_with(rendered, *needles: str) -> int:
    pages, _ = _pages(rendered)
    for index, text in enumerate(pages, start=1):
        if all(n in text for n in needles):
            return index
    raise AssertionError(f"no page holds {needles}")


def test_printed_dose_planes_carry_orientation_letters(phantom3_rendered):
    page = _page_with(phantom3_rendered, "axial", "coronal", "sagittal")
    words = _words(phantom3_rendered.written.pdf, page)
    letters = {w for w, *_ in words if w in set("RLAPSI")}
    assert letters == set("RLAPSI"), letters
    # the phantom is head first supine: on every row holding R and L, R is on the left
    rows = {}
    for w, x0, y0, _, _ in words:
        if w in ("R", "L"):
            rows.setdefault(round(y0), {})[w] = x0
    pairs = [r for r in rows.values() if len(r) == 2]
    assert pairs and all(r["R"] < r["L"] for r in pairs)
    assert any(w == "cm" for w, *_ in words)  # the scale bar's label


def test_printed_dvh_legend_has_one_distinct_colour_per_structure(phantom3_rendered, tmp_path):
    import subprocess

    from matplotlib.image import imread
    from skimage.color import deltaE_ciede2000, rgb2lab

    from reirrad.present.colours import MIN_DELTA_E, of_structures

    rendered = phantom3_rendered
    page = _page_with(rendered, "volume (%)")
    dpi = 150
    subprocess.run(
        ["pdftoppm", "-png", "-r", str(dpi), "-f", str(page), "-l", str(page),
         str(rendered.written.pdf), str(tmp_path / "dvh")], check=True,
    )  # fmt: skip
    image = imread(next(tmp_path.glob("dvh*.png")))[..., :3]
    scale = dpi / 72.0
    expected = of_structures(rendered.run.voxel.structures)
    names = [c.name for c in expected.colours]
    seen = {}
    for word, x0, y0, _, y1 in _words(rendered.written.pdf, page):
        if word not in names or word in seen:
            continue
        # the legend handle: a short line left of the name, on its middle row
        row = int(round((y0 + y1) / 2 * scale))
        strip = image[row, int((x0 - 22) * scale) : int((x0 - 4) * scale)]
        # neither paper white nor the dark outline of a light colour's handle
        coloured = strip[(strip.min(axis=1) < 0.95) & (strip.max(axis=1) > 0.3)]
        if len(coloured) >= 5:
            seen[word] = np.median(coloured, axis=0)
    assert set(seen) == set(names), set(names) - set(seen)
    for name, rgb in seen.items():
        want = np.array(expected[name].rgb)
        difference = deltaE_ciede2000(rgb2lab(rgb[None, None]), rgb2lab(want[None, None]))
        assert float(difference[0, 0]) < 6.0, name
    labs = [rgb2lab(v[None, None]) for v in seen.values()]
    pairwise = [
        float(deltaE_ciede2000(a, b)[0, 0]) for i, a in enumerate(labs) for b in labs[i + 1 :]
    ]
    assert min(pairwise) >= MIN_DELTA_E - 2.0  # printed: anti-aliasing moves colours slightly


def test_report_and_terminal_agree_on_the_verdicts_near_the_limit(npc_rendered, capsys):
    """The limits the terminal lists as near the limit (met at nominal values, not in every
    sensitivity scenario) are the report's verdicts to check."""
    from reirrad.cli import main

    assert main(["assess", str(npc_rendered.run.case_path)]) == 0
    text = capsys.readouterr().out
    block = text.split("NEAR THE LIMIT", 1)[1].split("NOT EVALUABLE", 1)[0]
    near = [line.strip().split(" Dmean")[0] for line in block.splitlines()[1:] if line.strip()]
    assert near == ["Right parotid gland", "Right internal carotid artery"]
    overview = _element(npc_rendered.html, "overview")
    for name in near:
        assert f"{name}: marinova2026-" in overview and "verdict changes" in overview
