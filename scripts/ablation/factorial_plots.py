"""The factorial report's figures: every effect with its 95% interval (sorted, zero line), and interaction plots of
the strongest two-factor interactions (mean response at the four combinations of the pair's levels)."""

from __future__ import annotations

import math

import numpy as np

from trickbench.scripts.ablation.design import Design
from trickbench.scripts.ablation.effects import Analysis, by_size
from trickbench.scripts.ablation.plots import _png


def effects_png(name: str, a: Analysis, scale: float, unit: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    effects = sorted((e for e in a.effects if not math.isnan(e.effect)), key=lambda e: e.effect)
    fig, ax = plt.subplots(figsize=(7.0, max(2.5, 0.22 * len(effects) + 1.2)), dpi=110)
    colours = {"main": "tab:blue", "test": "tab:blue", "2fi": "tab:gray", "test:main": "tab:gray"}
    for y, e in enumerate(effects):
        c = colours[e.kind]
        if not math.isnan(e.low):
            ax.plot([e.low * scale, e.high * scale], [y, y], color=c, lw=1.4)
        ax.plot(e.effect * scale, y, "o", color=c, ms=4)
    ax.axvline(0.0, color="black", lw=0.8)
    ax.set_yticks(range(len(effects)))
    ax.set_yticklabels([e.term for e in effects], fontsize=7)
    ax.set_xlabel(f"effect {unit} (95% CI); blue: main effects, gray: interactions")
    ax.set_title(f"{name}: effects ({a.runs} runs, seeds {', '.join(map(str, a.blocks))})", fontsize=9)
    return _png(fig)


def interactions_png(
    name: str, design: Design, a: Analysis, trained: dict[tuple[int, int], float], scale: float, top: int = 4
) -> bytes | None:
    """Mean response at (A-, B-), (A-, B+), (A+, B-), (A+, B+) for the `top` strongest trained interactions."""
    strongest = sorted((e for e in a.effects if e.kind == "2fi"), key=by_size)[:top]
    keys = [(i, s) for s in a.blocks for i in range(design.runs)]
    if not strongest or not keys:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    terms = design.terms()
    y = np.array([trained[k] for k in keys]) * scale
    rows = [i for i, _ in keys]
    fig, axes = plt.subplots(1, len(strongest), figsize=(2.6 * len(strongest), 2.8), dpi=110, squeeze=False)
    for ax, e in zip(axes[0], strongest):
        first, second = e.term.split(":")
        ca, cb = terms[first][rows], terms[second][rows]
        for level, style in ((-1, "--"), (1, "-")):
            means = [y[(ca == x) & (cb == level)].mean() for x in (-1, 1)]
            ax.plot([0, 1], means, style, marker="o", label=f"{second} {'+' if level > 0 else '-'}")
        ax.set_xticks([0, 1])
        ax.set_xticklabels([f"{first} -", f"{first} +"], fontsize=7)
        ax.set_title(f"{e.term}: {e.effect * scale:+.2f}", fontsize=8)
        ax.legend(fontsize=6)
    axes[0][0].set_ylabel("mean response")
    fig.suptitle(f"{name}: strongest interactions (aliases in the report)", fontsize=9)
    return _png(fig)
