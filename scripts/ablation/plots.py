"""The report's figures: the delta-bar chart, the forest plot of paired differences and the per-epoch curves;
PNG bytes without a Software tag or date, so the same runs give the same files."""

from __future__ import annotations

import io
import math

from trickbench.scripts.ablation.collect import paired_differences

OFF_SCALE = 4.0  # an arm reaching this many times further from zero than every other arm is drawn off scale


def _png(fig) -> bytes:
    """The figure as PNG bytes without a Software tag (no version string: byte-identical output), then closed."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def chart_png(name: str, rows: list[dict], metric: str, baseline: str, scale: float) -> bytes:
    """Bars of each arm's mean paired difference from the baseline (seed by seed), the per-seed differences as dots,
    and the zero line, so sub-point effects are as visible as large ones; the baseline's own mean is in the title.
    An arm far off the others' scale is clipped at the axis edge with its value written on it (`forest_range`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    diffs = paired_differences(rows, baseline)
    arms = [r for r in rows if r["arm"] != baseline]
    half, off = forest_range(arms, diffs)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.8 * len(arms) + 1.5), 3.8), dpi=110)
    for x, r in enumerate(arms):
        mean = r["paired_delta"] * scale
        if math.isnan(mean):
            continue
        shown = max(-half * scale, min(half * scale, mean))
        colour = "#c44e52" if r["arm"] in off else "#55a868" if mean > 0 else "#4c72b0"
        ax.bar(x, shown, color=colour, width=0.7)
        if r["arm"] in off:
            ax.text(x, shown * 0.5, f"{mean:+.1f}\noff scale", ha="center", va="center", fontsize=7, color="white")
            continue
        ax.plot([x + 0.22] * len(diffs[r["arm"]]), [d * scale for d in diffs[r["arm"]]], "k.", markersize=4)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_ylim(-half * scale, half * scale)
    ax.set_xticks(range(len(arms)), [r["arm"] for r in arms], rotation=30, ha="right")
    unit = " (points)" if scale == 100 else ""
    ax.set_ylabel(f"{metric} minus {baseline}{unit}")
    base = next((r for r in rows if r["arm"] == baseline), None)
    where = (
        f" ({baseline} {base['mean'] * scale:.2f}{'%' if scale == 100 else ''})"
        if base and not math.isnan(base["mean"])
        else ""
    )
    ax.set_title(f"{name}: mean paired difference per arm, seeds as dots{where}", fontsize=9)
    return _png(fig)


def forest_range(arms: list[dict], diffs: dict[str, list[float]]) -> tuple[float, set[str]]:
    """(half-width of the forest plot's x-axis, arms drawn off scale). An arm whose interval and dots reach more
    than OFF_SCALE times further from zero than every other arm's would squash the others into a line (a
    -32-point arm beside 1-point tricks); it is drawn as an arrow at the axis edge with its numbers instead."""
    extent = {}
    for r in arms:
        values = [
            abs(v)
            for v in [*diffs[r["arm"]], r["paired_delta"], r["paired_low"], r["paired_high"]]
            if not math.isnan(v)
        ]
        extent[r["arm"]] = max(values, default=0.0)
    order = sorted(extent, key=lambda a: extent[a], reverse=True)
    off = set()
    while len(order) - len(off) >= 2 and extent[order[len(off)]] > OFF_SCALE * extent[order[len(off) + 1]]:
        off.add(order[len(off)])
    inside = [extent[a] for a in order if a not in off]
    return 1.08 * max(inside, default=0.0) or 1.0, off


def forest_png(name: str, rows: list[dict], baseline: str, scale: float) -> bytes:
    """Forest plot: each arm's paired delta vs the baseline with its 95% t interval, the per-seed differences as
    dots, and the zero line; arms top to bottom in plan order; far-out arms at the edge (`forest_range`).
    Byte-identical for the same rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    diffs = paired_differences(rows, baseline)
    arms = [r for r in rows if r["arm"] != baseline]
    half, off = forest_range(arms, diffs)
    fig, ax = plt.subplots(figsize=(7.2, max(2.2, 0.42 * len(arms) + 1.2)), dpi=110)
    for i, r in enumerate(arms):
        y = len(arms) - 1 - i
        if r["arm"] in off:  # an arrow at the axis edge on its side, its numbers beside it
            side = 1.0 if r["paired_delta"] > 0 else -1.0
            ax.plot([side * 0.97 * half * scale], [y], ">" if side > 0 else "<", color="#c44e52", markersize=8)
            lo, mid, hi = (r[k] * scale for k in ("paired_low", "paired_delta", "paired_high"))
            interval = f" [{lo:+.2f}, {hi:+.2f}]" if not (math.isnan(lo) or math.isnan(hi)) else ""  # 1 seed: none
            ax.text(
                side * 0.92 * half * scale,
                y,
                f"{mid:+.2f}{interval}, off scale",
                fontsize=8,
                ha="right" if side > 0 else "left",
                va="center",
                color="#c44e52",
            )
            continue
        ax.plot([d * scale for d in diffs[r["arm"]]], [y] * len(diffs[r["arm"]]), ".", color="#999999", markersize=5)
        if not math.isnan(r["paired_delta"]):
            lo, hi = r["paired_low"], r["paired_high"]
            if not (math.isnan(lo) or math.isnan(hi)):
                ax.plot([lo * scale, hi * scale], [y, y], "-", color="#4c72b0", linewidth=2)
            ax.plot([r["paired_delta"] * scale], [y], "o", color="#4c72b0", markersize=6)
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_xlim(-half * scale, half * scale)
    ax.set_yticks(range(len(arms)), [f"{r['arm']} (n={r['n_pairs']})" for r in reversed(arms)])
    unit = " (points)" if scale == 100 else ""
    ax.set_xlabel(f"paired difference vs {baseline}{unit}: mean, 95% t interval, seeds")
    ax.set_title(f"{name}: each arm minus {baseline}, same seeds")
    return _png(fig)


def _epoch_ranges(epochs: list[int]) -> str:
    """0-based epochs as 1-based ranges: [0, 1, 2, 5] -> '1-3, 6'."""
    spans: list[list[int]] = []
    for e in epochs:
        if spans and e == spans[-1][1] + 1:
            spans[-1][1] = e
        else:
            spans.append([e, e])
    return ", ".join(f"{a + 1}" if a == b else f"{a + 1}-{b + 1}" for a, b in spans)


def curves_png(
    name: str,
    curves: dict[str, dict[int, float]],
    metric: str,
    baseline: str,
    scale: float,
    partial: dict[str, list[int]] | None = None,
) -> bytes:
    """Each arm's mean `metric` per epoch (from the CSV logs); the baseline black, thick and on top, the arms in
    tab10 colours without its grey, dashed after the first nine. An arm with epochs that not every run logged
    (`partial_epochs`) says which in its legend entry, and its curve has no points there."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = [c for c in plt.get_cmap("tab10").colors if len(set(c)) > 1]  # tab10's grey reads as the baseline
    fig, ax = plt.subplots(figsize=(8.6, 3.8), dpi=110)
    arms = [a for a in curves if a != baseline]
    for i, arm in enumerate(arms + [baseline] if baseline in curves else arms):
        if arm == baseline:
            style = {"color": "black", "linewidth": 2.5, "zorder": 3}
        else:
            style = {
                "color": colours[i % len(colours)],
                "linewidth": 1.2,
                "linestyle": "-" if i < len(colours) else "--",
            }
        curve = curves[arm]
        missing = (partial or {}).get(arm)
        word = "epoch" if missing and len(missing) == 1 else "epochs"
        label = f"{arm} ({word} {_epoch_ranges(missing)} missing in some seeds' logs)" if missing else arm
        ax.plot([e + 1 for e in curve], [v * scale for v in curve.values()], marker=".", label=label, **style)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{metric}, mean over seeds" + (" (%)" if scale == 100 else ""))
    ax.set_title(f"{name}: {metric} per epoch")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))  # outside: no curve hidden
    return _png(fig)
