"""Paper style for every AquaML figure: vector-friendly fonts, labelled axes, one colour per group.

A group keeps its colour across figures: the colour is chosen from the group's name, not from
its position in a legend, so ``sac`` is the same blue in the curves, the aggregate plot and the
profile of one paper.
"""
from __future__ import annotations

import contextlib
import os
import zlib
from pathlib import Path
from typing import Iterator, NamedTuple

from aquaml.tools.console import check_output as check_suffix

#: Paul Tol's "bright" qualitative scheme (colour-blind safe, for lines and markers) and black:
#: blue, red, green, purple, cyan, black, then the two light ones, yellow and grey. Every pair
#: differs by a CIEDE2000 of at least 20 in normal vision and 14 under simulated deuteranopia and
#: protanopia (tested), where Okabe-Ito's orange and vermillion fall to 12
PALETTE = ("#4477AA", "#EE6677", "#228833", "#AA3377", "#66CCEE", "#000000", "#CCBB44", "#BBBBBB")
FIRST = 6  #: groups hash into the first, strongest colours; yellow and grey serve a 7th and 8th group
#: line styles and markers for groups beyond the palette's colours (a colour comes back with another)
LINESTYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D")


class Style(NamedTuple):
    """How a group is drawn: its colour, and the line style and marker that tell apart groups
    sharing a colour (in figures of more groups than colours)."""

    color: str
    linestyle: str
    marker: str

FORMATS = (".png", ".pdf", ".svg")

RC = {
    "font.family": "DejaVu Sans", "font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9,
    "legend.fontsize": 8, "xtick.labelsize": 8, "ytick.labelsize": 8, "axes.spines.top": False,
    "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3, "lines.linewidth": 1.5,
    "pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "none",  # text stays text in vector files
    "savefig.bbox": "tight", "savefig.dpi": 200, "figure.dpi": 100,
}


def pyplot():
    """matplotlib's pyplot on the non-interactive Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@contextlib.contextmanager
def paper_style() -> Iterator[None]:
    """Within the block, figures use :data:`RC`."""
    plt = pyplot()
    with plt.rc_context(RC):
        yield


def styles_for(groups) -> dict[str, Style]:
    """``group -> Style``, chosen from the group's name: the same colour in every figure unless two
    groups of a figure hash to one colour (then the later one, in name order, moves to the next
    free colour; yellow and grey last). Past the palette's colours, colours come back with another
    line style and marker."""
    n = len(PALETTE)
    out: dict[str, Style] = {}
    used: set[int] = set()
    for g in sorted(map(str, groups)):
        first = zlib.crc32(g.encode()) % FIRST
        lap = len(used) // n  # the palette used up lap times: colours start over with the next style
        order = [(first + k) % FIRST for k in range(FIRST)] + list(range(FIRST, n))
        k = next(lap * n + k for k in order if lap * n + k not in used)
        used.add(k)
        out[g] = Style(PALETTE[k % n], LINESTYLES[lap % len(LINESTYLES)], MARKERS[lap % len(MARKERS)])
    return out


def colors_for(groups) -> dict[str, str]:
    """``group -> colour`` (see :func:`styles_for`)."""
    return {g: style.color for g, style in styles_for(groups).items()}


def check_output(path: str | Path, formats: tuple[str, ...] = FORMATS, what: str = "figures") -> Path:
    """The figure's path, refused before any work if its suffix is not one of ``formats``."""
    return check_suffix(path, formats, what)


def save(fig, path: str | Path) -> Path:
    """Write ``fig`` (parents created) beside ``path`` and rename it into place, so a crash
    leaves no half-written figure; the figure is closed either way."""
    path = check_output(path)
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with pyplot().rc_context(RC):  # the vector font settings apply when the file is written
            fig.savefig(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        pyplot().close(fig)
    return path
