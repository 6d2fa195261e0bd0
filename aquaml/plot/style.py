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
from typing import Iterator

from aquaml.tools.console import check_output as check_suffix

#: colour-blind-safe palette: Okabe-Ito without its yellow (hard to see on white), then Tol's
#: muted colours for figures with more groups
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
           "#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677", "#882255")
FIRST = 7  #: groups hash into the first, most distinct colours; a clash moves on to the next free one

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


def colors_for(groups) -> dict[str, str]:
    """``group -> colour``, chosen from the group's name: the same in every figure unless two
    groups of a figure hash to one colour (then the later one, in name order, moves to the next
    free colour)."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for g in sorted(map(str, groups)):
        i = zlib.crc32(g.encode()) % FIRST
        order = [PALETTE[(i + k) % FIRST] for k in range(FIRST)] + list(PALETTE[FIRST:])
        c = next((c for c in order if c not in used), order[0])
        out[g] = c
        used.add(c)
    return out


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
