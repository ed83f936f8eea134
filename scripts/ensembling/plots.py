"""The ensemble report's figures: the coverage curve with its tau labels, the reliability diagrams, and the grid
of deferred images; PNG bytes without a date, so the same runs give the same files."""

from __future__ import annotations

import io
import math
from typing import Any

import torch

from trickbench.scripts.ensembling.metrics import spread_over_classes


# --- outputs ----------------------------------------------------------------------------------------------
def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})  # byte-identical from the same runs
    plt.close(fig)
    return buf.getvalue()


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def tau_labels(curve: list[dict[str, float]], min_gap: float = 0.06) -> list[tuple[float, float, str]]:
    """(coverage, accuracy, label) for the coverage plot: thresholds that give the same point share one label
    ("τ=0-0.3"), and a label closer than `min_gap` (in axis fractions) to the previous one is left out."""
    pts = [(r["coverage"], r["accuracy"], r["tau"]) for r in curve if r["coverage"] > 0]
    groups: list[list[Any]] = []
    for cov, acc, tau in pts:
        if groups and (groups[-1][0], groups[-1][1]) == (cov, acc):
            groups[-1][3] = tau
        else:
            groups.append([cov, acc, tau, tau])
    if not groups:
        return []
    covs, accs = [g[0] for g in groups], [g[1] for g in groups]
    span_c, span_a = (max(covs) - min(covs)) or 1.0, (max(accs) - min(accs)) or 1.0
    out, last = [], None
    for cov, acc, lo, hi in groups:
        here = (cov / span_c, acc / span_a)
        if last is not None and math.dist(here, last) < min_gap:
            continue
        out.append((cov, acc, f"τ={lo:g}" if lo == hi else f"τ={lo:g}-{hi:g}"))
        last = here
    return out


def coverage_png(curve: list[dict[str, float]], overall: float) -> bytes:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.6, 4.0), dpi=110)
    pts = [(r["coverage"], r["accuracy"]) for r in curve if r["coverage"] > 0]
    ax.plot([p[0] * 100 for p in pts], [p[1] * 100 for p in pts], "o-", markersize=3)
    right = max((p[0] for p in pts), default=1.0)
    for cov, acc, text in tau_labels(curve):
        near_edge = cov > 0.85 * right  # labels of the right-most points go to their left, inside the axes
        ax.annotate(
            text,
            (cov * 100, acc * 100),
            fontsize=7,
            xytext=(-5, -3) if near_edge else (4, 2),
            textcoords="offset points",
            ha="right" if near_edge else "left",
        )
    ax.axhline(overall * 100, color="grey", linestyle="--", linewidth=1, label=f"ensemble, all images ({overall:.2%})")
    ax.set_xlabel("coverage: images predicted (%)")
    ax.set_ylabel("accuracy on them (%)")
    ax.set_title("agree and mean max-probability > τ")
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return _png(fig)


def reliability_png(rel: dict[str, list[dict[str, float]]]) -> bytes:
    """Accuracy against confidence per bin for each model and the ensemble, and below it how many images each of
    the ensemble's bins holds (a bin of 20 images says little), the count written on each bar."""
    plt = _plt()
    fig, (ax, bottom) = plt.subplots(
        2, 1, figsize=(4.8, 5.6), dpi=110, sharex=True, gridspec_kw={"height_ratios": [3, 1.3]}
    )
    ax.plot([0, 1], [0, 1], color="grey", linewidth=1, linestyle="--")
    for name, rows in rel.items():
        pts = [(r["confidence"], r["accuracy"]) for r in rows if r["n"]]
        ax.plot(
            [p[0] for p in pts],
            [p[1] for p in pts],
            "o-",
            markersize=3,
            label=name,
            linewidth=2 if name == "ensemble" else 1,
        )
    ax.set_ylabel("accuracy")
    ax.set_title("reliability")
    ax.legend(fontsize=7)
    rows = rel.get("ensemble") or next(iter(rel.values()), [])
    for r in rows:
        if r["n"]:
            width = r["high"] - r["low"]
            bottom.bar(r["low"] + width / 2, r["n"], width=0.9 * width, color="#4c72b0")
            bottom.text(r["low"] + width / 2, r["n"], str(int(r["n"])), ha="center", va="bottom", fontsize=6)
    bottom.set_yscale("log")
    bottom.set_ylabel("images (log)")
    bottom.set_xlabel(f"confidence ({len(rows)} bins); counts: {'ensemble' if 'ensemble' in rel else 'first model'}")
    bottom.set_xlim(0, 1)
    fig.tight_layout()
    return _png(fig)


def deferred_png(
    images: torch.Tensor,
    idx: torch.Tensor,
    labels: torch.Tensor,
    preds: torch.Tensor,
    class_names: list[str] | tuple[str, ...] | None = None,
) -> bytes:
    """Deferred images spread over the classes (`spread_over_classes`), each titled with its true class and the
    models' predictions, by name when the DataModule has `class_names`."""
    plt = _plt()
    name = (lambda k: class_names[k]) if class_names else str  # noqa: E731
    shown = spread_over_classes(idx, labels, 64)
    n, cols = len(shown), 8
    rows = max(1, math.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.35, rows * 1.7), dpi=100, squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= n:
            continue
        i = int(shown[k])
        img = images[i]
        ax.imshow(img[0] if img.shape[0] == 1 else img.permute(1, 2, 0), cmap="gray" if img.shape[0] == 1 else None)
        guesses = "/".join(name(int(p)) for p in preds[:, i])
        ax.set_title(f"#{i} {name(int(labels[i]))}\n{guesses}", fontsize=5.5)
    fig.suptitle(
        f"deferred ({len(idx)} images; {n} shown, spread over the classes): true class, then each model's prediction",
        fontsize=8,
    )
    fig.tight_layout()
    return _png(fig)
