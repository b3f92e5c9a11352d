"""One colour per structure, the same in every figure (DVH curves, plane outlines, legends).

Rules
-----
1. **DICOM first.** A structure keeps the ROI Display Color (3006,002A) of its RTSTRUCT
   (DICOM PS3.3 C.8.8.6, ROI Contour Module) when the file gives one.
2. **Distinct.** Two colours are too close when their CIEDE2000 colour difference
   (Sharma G, Wu W, Dalal EN, "The CIEDE2000 color-difference formula: implementation notes,
   supplementary test data, and mathematical observations", Color Res Appl 2005;30(1):21-30;
   computed with :func:`skimage.color.deltaE_ciede2000` in CIELAB, D65) is below
   :data:`MIN_DELTA_E`.  Structures are visited in a stable order, by name (case-folded), so
   the colours do not depend on the order in which the case file lists them: the first of two
   clashing DICOM colours is kept, the other structure gets the palette colour nearest to its
   DICOM colour among those that are far enough from every colour in use, and the figure
   caption says so (:attr:`StructureColours.notes`).
3. **Palette.** Structures without a DICOM colour take, in the same order, the first palette
   colour far enough from every colour in use.  The palette is the union of categorical
   colour sets shipped with matplotlib: Tableau 10 (``tab10``) and the ColorBrewer qualitative
   sets ``Dark2``, ``Set1``, ``Paired`` and ``Set2`` (Harrower M, Brewer CA, "ColorBrewer.org:
   an online tool for selecting colour schemes for maps", Cartogr J 2003;40(1):27-37), plus
   black, without colours too light to read as a line on white (CIELAB L* above
   :data:`OUTLINE_LIGHTNESS`, 75) and without
   greys; ordered by greedy farthest-point selection in CIEDE2000, so that the first colours
   taken are the most different from each other.  When more structures than distinct
   colours exist, the colour farthest from those in use is taken and the caption names the
   pairs that remain close.
4. **Readable on white.** A DICOM colour lighter than L* = 75 (yellow, white, pale cyan) is
   kept as given, so that it matches the planning system, and drawn with a dark outline
   (:attr:`StructureColour.outlined`; :func:`line_effects`); darkening it instead would make
   it a colour the planning system does not show.

Colour-vision deficiency was not checked: no set of 16 or more colours stays distinct for
every reader, so every figure also names each structure (legend, and the organ's limit on each
isodose line).

The threshold :data:`MIN_DELTA_E` is this module's design choice, not a published value: at
12 CIEDE2000 units the palette gives 19 colours that are all pairwise distinct, enough for a
head-and-neck plan of 16 structures with room for DICOM colours taking some of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import to_hex, to_rgb
from numpy.typing import NDArray
from skimage.color import deltaE_ciede2000, rgb2lab

__all__ = [
    "MIN_DELTA_E",
    "OUTLINE_LIGHTNESS",
    "StructureColour",
    "StructureColours",
    "assign_colours",
    "delta_e",
    "line_effects",
    "line_style",
    "palette",
]

#: Minimum CIEDE2000 difference between two structures' colours (design choice, see above).
MIN_DELTA_E = 12.0
#: CIELAB L* above which a colour is too light to read as a line on white: a DICOM colour
#: that light is drawn with a dark outline, a palette colour that light is left out.
OUTLINE_LIGHTNESS = 75.0
#: Palette colours of lower CIELAB chroma are greys (left out: greys read as "unimportant").
_PALETTE_MIN_CHROMA = 15.0
_SOURCES = ("tab10", "Dark2", "Set1", "Paired", "Set2")

RGB = tuple[float, float, float]


def _lab(rgb: NDArray[np.float64] | Sequence[float]) -> NDArray[np.float64]:
    """CIELAB (D65) of sRGB colours in [0, 1], shape ``(..., 3)``."""
    a = np.asarray(rgb, dtype=float)
    return rgb2lab(a.reshape(-1, 1, 3)).reshape(a.shape)


def delta_e(rgb1: Sequence[float], rgb2: Sequence[float]) -> float:
    """CIEDE2000 difference between two sRGB colours given in [0, 1]."""
    return float(deltaE_ciede2000(_lab(rgb1), _lab(rgb2)))


@lru_cache(maxsize=1)
def palette() -> tuple[RGB, ...]:
    """The palette colours (sRGB in [0, 1]), most mutually different first."""
    pool: list[RGB] = [(0.0, 0.0, 0.0)]
    for name in _SOURCES:
        for colour in colormaps[name].colors:
            rgb = tuple(float(c) for c in to_rgb(colour))
            if rgb not in pool:
                pool.append(rgb)
    lab = _lab(np.array(pool))
    chroma = np.hypot(lab[:, 1], lab[:, 2])
    keep = (lab[:, 0] <= OUTLINE_LIGHTNESS) & ((chroma >= _PALETTE_MIN_CHROMA) | (lab[:, 0] < 5))
    pool = [c for c, k in zip(pool, keep, strict=True) if k]
    lab = lab[keep]
    # greedy farthest-point order, starting from the first Tableau colour (blue)
    order = [1]
    nearest = deltaE_ciede2000(lab, lab[1][None, :])
    while len(order) < len(pool):
        nearest[order] = -1.0
        pick = int(np.argmax(nearest))
        order.append(pick)
        nearest = np.minimum(nearest, deltaE_ciede2000(lab, lab[pick][None, :]))
    return tuple(pool[i] for i in order)


@dataclass(frozen=True)
class StructureColour:
    """The colour of one structure in every figure.

    Attributes
    ----------
    name
        Structure name (as in the case file).
    rgb
        sRGB in [0, 1], as drawn.
    source
        ``"dicom"`` (the RTSTRUCT's ROI Display Color) or ``"palette"``.
    dicom_rgb
        The RTSTRUCT's ROI Display Color (0-255), if it gave one (also when replaced).
    outlined
        Light colour (L* > :data:`OUTLINE_LIGHTNESS`): drawn with a dark outline.
    """

    name: str
    rgb: RGB
    source: str
    dicom_rgb: tuple[int, int, int] | None = None
    outlined: bool = False

    @property
    def hex(self) -> str:
        """``#rrggbb``."""
        return to_hex(self.rgb)


@dataclass(frozen=True)
class StructureColours:
    """The colours of a set of structures, with what the caption must say.

    Attributes
    ----------
    colours
        One :class:`StructureColour` per structure, in the order the structures were given.
    notes
        Sentences for the figure caption: replaced DICOM colours, colours left close.
    """

    colours: tuple[StructureColour, ...]
    notes: tuple[str, ...] = field(default=())

    def __getitem__(self, name: str) -> StructureColour:
        for item in self.colours:
            if item.name == name:
                return item
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return any(item.name == name for item in self.colours)

    def rgb(self, name: str, default: RGB = (0.0, 0.0, 0.0)) -> RGB:
        """The colour of ``name``; ``default`` for a name not in the set."""
        return self[name].rgb if name in self else default

    @property
    def caption(self) -> str:
        """What every figure that uses these colours states (may be empty)."""
        return " ".join(self.notes)


def _pick(
    candidates_lab: NDArray[np.float64], used_lab: list[NDArray[np.float64]], taken: set[int]
) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    """Which palette colours are far enough from every used colour; their nearest distance."""
    if used_lab:
        nearest = np.min([deltaE_ciede2000(candidates_lab, u[None, :]) for u in used_lab], axis=0)
    else:
        nearest = np.full(len(candidates_lab), np.inf)
    nearest[list(taken)] = -1.0
    return nearest >= MIN_DELTA_E, nearest


def assign_colours(
    structures: Iterable[tuple[str, tuple[int, int, int] | None]],
) -> StructureColours:
    """One distinct colour per structure (rules in the module docstring).

    Parameters
    ----------
    structures
        ``(name, ROI Display Color 0-255 or None)`` per structure; names must be unique.

    Returns
    -------
    StructureColours
        The colours in the given order, with the notes for the caption.
    """
    given = list(structures)
    order = sorted(range(len(given)), key=lambda i: (given[i][0].casefold(), given[i][0]))
    pal = np.array(palette())
    pal_lab = _lab(pal)
    chosen: dict[int, tuple[RGB, str]] = {}
    used_lab: list[NDArray[np.float64]] = []
    clash: dict[int, str] = {}
    for i in order:  # 1. DICOM colours, first of a clashing pair kept
        dicom = given[i][1]
        if dicom is None:
            continue
        rgb = tuple(min(max(int(c), 0), 255) / 255.0 for c in dicom)
        lab = _lab(rgb)
        close = [
            j
            for j, u in zip(chosen, used_lab, strict=True)
            if deltaE_ciede2000(lab, u) < MIN_DELTA_E
        ]
        if close:
            clash[i] = given[close[0]][0]
            continue
        chosen[i] = (rgb, "dicom")
        used_lab.append(lab)
    taken: set[int] = set()
    notes: list[str] = []
    for i in order:  # 2. palette colours for the rest
        if i in chosen:
            continue
        ok, nearest = _pick(pal_lab, used_lab, taken)
        dicom = given[i][1]
        if ok.any():
            candidates = np.flatnonzero(ok)
            if dicom is not None:  # the palette colour nearest the DICOM one
                target = _lab(tuple(c / 255.0 for c in dicom))
                pick = int(
                    candidates[np.argmin(deltaE_ciede2000(pal_lab[candidates], target[None, :]))]
                )
            else:
                pick = int(candidates[0])
        else:
            pick = int(np.argmax(nearest))
            notes.append(
                f"{given[i][0]}: no palette colour differs by {MIN_DELTA_E:g} CIEDE2000 units "
                f"from all others (closest {nearest[pick]:.0f})."
            )
        if i in clash:
            notes.append(
                f"{given[i][0]}: its DICOM colour RGB {tuple(int(c) for c in dicom)} is too close "
                f"to that of {clash[i]}, shown in {to_hex(tuple(pal[pick]))} instead."
            )
        taken.add(pick)
        chosen[i] = (tuple(float(c) for c in pal[pick]), "palette")
        used_lab.append(pal_lab[pick])
    colours = []
    for i, (name, dicom) in enumerate(given):
        rgb, source = chosen[i]
        lightness = float(_lab(rgb)[0])
        colours.append(
            StructureColour(
                name=name,
                rgb=rgb,
                source=source,
                dicom_rgb=None if dicom is None else tuple(int(c) for c in dicom),
                outlined=lightness > OUTLINE_LIGHTNESS,
            )
        )
    if any(c.source == "dicom" for c in colours):
        notes.insert(0, "Structure colours from the RTSTRUCT (ROI Display Color) where given.")
    if any(c.outlined for c in colours):
        notes.append("Light colours are drawn with a dark outline.")
    return StructureColours(tuple(colours), tuple(notes))


def line_effects(colour: StructureColour, linewidth: float) -> list | None:
    """Path effects for a line of ``colour``: a dark outline under a light colour, else none."""
    if not colour.outlined:
        return None
    from matplotlib import patheffects

    return [
        patheffects.Stroke(linewidth=linewidth + 1.6, foreground="0.2"),
        patheffects.Normal(),
    ]


def line_style(colour: StructureColour, linewidth: float) -> dict:
    """Matplotlib line keywords for a structure's curve: its colour, width and outline."""
    return {"color": colour.rgb, "lw": linewidth, "path_effects": line_effects(colour, linewidth)}


def of_structures(structures: Iterable) -> StructureColours:
    """Colours of objects with ``name`` and ``display_color`` attributes (e.g.
    :class:`reirrad.core.voxel.VoxelStructure`)."""
    return assign_colours((s.name, getattr(s, "display_color", None)) for s in structures)
