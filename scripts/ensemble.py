"""Human in the loop: run 2-3 trained classifiers, trust them where they agree, defer the rest to a person.

    trickbench ensemble RUN_DIR RUN_DIR [RUN_DIR] [--split test] [--out DIR] [--data_dir D]
    trickbench ensemble --from-ablation runs/<ablation> --arm baseline [--out DIR]
    trickbench ensemble RUN_DIR --replot OUT [--data_dir D]

Each run is rebuilt from its `config.yaml` and `checkpoints/last.ckpt` (`torch.load(weights_only=True)`) and
evaluated on the same split, with flip TTA when the run was configured with it. Writes to `--out`
(default `<first run>/ensemble`): `report.md`, `results.json`, `coverage.png` (coverage-accuracy curve over
the confidence threshold τ), `reliability.png` (with the images per bin), `deferred.csv` and `deferred.png` (64
deferred images spread over the classes, each model's prediction under them). `--replot OUT RUN_DIR` redraws the
figures of OUT from its results.json and deferred.csv (no checkpoint needed).

Definitions (N = images of the split, M = models, p_m = model m's softmax):
  agreed       all M argmax predictions are the same class; coverage = |agreed| / N
  accepted(τ)  agreed and the mean over models of max_k p_m(k) is > τ (τ = 0: the agreed set; τ = 1: nothing)
  risk(τ)      1 - accuracy on accepted(τ)
  ensemble     argmax of the mean probability; ECE with 15 equal-width confidence bins
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
from pathlib import Path
from typing import Any

import torch

from trickbench.io import atomic_write, atomic_write_text

TAUS = [round(0.05 * i, 2) for i in range(21)]


class EnsembleError(ValueError):
    """Runs that cannot be compared, or a bad command line; the message says which and why."""


# --- pure maths ------------------------------------------------------------------------------------------
def agreement(preds: torch.Tensor) -> torch.Tensor:
    """(M, N) class ids -> (N,) bool: every model predicts the same class."""
    return (preds == preds[0]).all(0)


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> float:
    """ECE (Guo et al. 2017): sum over equal-width confidence bins of |accuracy - confidence| x bin share."""
    return sum(
        r["n"] / len(labels) * abs(r["accuracy"] - r["confidence"]) for r in reliability(probs, labels, bins) if r["n"]
    )


def reliability(probs: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> list[dict[str, float]]:
    """Per confidence bin (lo, hi]: count, accuracy and mean confidence of the argmax predictions."""
    conf, pred = probs.max(1)
    edges = torch.linspace(0, 1, bins + 1, dtype=torch.float64)
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        in_bin = (conf.double() > lo) & (conf.double() <= hi)
        n = int(in_bin.sum())
        rows.append(
            {
                "low": float(lo),
                "high": float(hi),
                "n": n,
                "accuracy": float((pred[in_bin] == labels[in_bin]).double().mean()) if n else math.nan,
                "confidence": float(conf[in_bin].double().mean()) if n else math.nan,
            }
        )
    return rows


def coverage_curve(probs: torch.Tensor, labels: torch.Tensor, taus: list[float] = TAUS) -> list[dict[str, float]]:
    """(M, N, K) probabilities -> per τ: coverage, accuracy and risk of `accepted(τ)` (module docstring)."""
    preds = probs.argmax(2)
    agreed = agreement(preds)
    conf = probs.max(2).values.double().mean(0)
    correct = preds[0] == labels
    rows = []
    for tau in taus:
        accepted = agreed & (conf > tau)
        n = int(accepted.sum())
        acc = float(correct[accepted].double().mean()) if n else math.nan
        rows.append({"tau": tau, "coverage": n / len(labels), "accuracy": acc, "risk": 1 - acc if n else math.nan})
    return rows


def summarise(probs: torch.Tensor, labels: torch.Tensor, names: list[str]) -> dict[str, Any]:
    """Everything `results.json` holds, from (M, N, K) probabilities and (N,) labels."""
    preds = probs.argmax(2)
    agreed = agreement(preds)
    mean = probs.mean(0)
    per_model = {
        n: {"accuracy": float((p == labels).double().mean()), "ece": expected_calibration_error(pr, labels)}
        for n, p, pr in zip(names, preds, probs)
    }
    n_agreed = int(agreed.sum())
    return {
        "n": len(labels),
        "models": per_model,
        "ensemble": {
            "accuracy": float((mean.argmax(1) == labels).double().mean()),
            "ece": expected_calibration_error(mean, labels),
        },
        "agreed": {
            "coverage": n_agreed / len(labels),
            "accuracy": float((preds[0][agreed] == labels[agreed]).double().mean()) if n_agreed else math.nan,
            "deferred": len(labels) - n_agreed,
        },
        "curve": coverage_curve(probs, labels),
        "reliability": {
            "ensemble": reliability(mean, labels),
            **{n: reliability(p, labels) for n, p in zip(names, probs)},
        },
    }


# --- runs -------------------------------------------------------------------------------------------------
def check_compatible(records: list[dict[str, Any]], classes: list[int], names: list[str]) -> None:
    prints = {r.get("data_fingerprint") for r in records}
    if len(prints) > 1:
        detail = ", ".join(f"{n}: {r.get('data_fingerprint')!r}" for n, r in zip(names, records))
        raise EnsembleError(
            f"the runs were trained on different data (fingerprints {detail}); an ensemble needs "
            "runs of the same DataModule and files"
        )
    if len(set(classes)) > 1:
        raise EnsembleError(f"the runs have different class counts ({dict(zip(names, classes))})")


@torch.no_grad()
def evaluate(run_dir: Path, split: str, data_dir: str | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(probabilities (N, K), labels (N,), uint8 images (N, C, H, W)) of one run on one split."""
    from trickbench.scripts.score_gan import load_run

    model, dm = load_run(run_dir, data_dir=data_dir)
    dm.setup("test")
    x, y = dm.splits[split]
    out = []
    for chunk in x.split(500):
        logits = model.eval_logits(dm.eval_transform(chunk))  # TTA as the run was configured
        out.append(logits.float().softmax(1))
    return torch.cat(out), y, x


def datamodule_of(run_dir: Path, data_dir: str | None) -> Any:
    """The DataModule a run's `config.yaml` configures (`data_dir` if the data moved); no checkpoint needed."""
    import yaml
    from jsonargparse import ArgumentParser
    from lightning.pytorch import LightningDataModule

    from trickbench.aliases import upgrade_config_text

    text = (run_dir / "config.yaml").read_text()
    cfg = yaml.safe_load(upgrade_config_text(text) or text)  # a run saved with older class paths
    if data_dir is not None:
        cfg["data"].setdefault("init_args", {})["data_dir"] = str(data_dir)
    parser = ArgumentParser()
    parser.add_argument("--data", type=LightningDataModule)
    return parser.instantiate(parser.parse_object({"data": cfg["data"]})).data


def replot(out: Path, run_dir: Path, data_dir: str | None) -> None:
    """Redraw an ensemble report's figures from its own results.json and deferred.csv, with the images of the split
    from `run_dir`'s DataModule (its config.yaml; `data_dir` if the data moved); no model is evaluated."""
    res = json.loads((out / "results.json").read_text())
    rows = [line.split(",") for line in (out / "deferred.csv").read_text().splitlines()[1:] if line]
    dm = datamodule_of(run_dir, data_dir)
    dm.setup("test")
    images, labels = dm.splits[res["split"]]
    idx = torch.tensor([int(r[0]) for r in rows], dtype=torch.long)
    if any(int(labels[int(r[0])]) != int(r[1]) for r in rows):
        raise EnsembleError(f"{run_dir}'s {res['split']} split does not hold the labels of {out / 'deferred.csv'}")
    preds = torch.zeros(len(res["models"]), len(labels), dtype=torch.long)
    for r in rows:
        preds[:, int(r[0])] = torch.tensor([int(v) for v in r[2::2]])
    for name, png in (
        ("coverage.png", coverage_png(res["curve"], res["ensemble"]["accuracy"])),
        ("reliability.png", reliability_png(res["reliability"])),
        ("deferred.png", deferred_png(images, idx, labels, preds, getattr(dm, "class_names", None))),
    ):
        atomic_write(out / name, lambda fh, b=png: fh.write(b))


def from_ablation(root: Path, arm: str) -> list[Path]:
    """The completed seed runs of one arm of an ablation (the harness's `<root>/<arm>/seed<k>`)."""
    runs = sorted(
        (d for d in (root / arm).glob("seed*") if d.name[4:].lstrip("-").isdigit()), key=lambda d: int(d.name[4:])
    )
    done = [
        d
        for d in runs
        if (d / "metrics.json").is_file() and json.loads((d / "metrics.json").read_text()).get("status") == "completed"
    ]
    if len(done) < 2:
        raise EnsembleError(f"arm '{arm}' of {root} has {len(done)} completed seed run(s); an ensemble needs 2 or 3")
    return done[:3]


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


def spread_over_classes(idx: torch.Tensor, labels: torch.Tensor, n: int = 64) -> torch.Tensor:
    """Up to `n` of the indices `idx`, taken class by class in turn (each class's in index order), so a test set
    sorted by class shows every class instead of the first one's."""
    by_class: dict[int, list[int]] = {}
    for i in idx.tolist():
        by_class.setdefault(int(labels[i]), []).append(i)
    queues = [by_class[c] for c in sorted(by_class)]
    picked: list[int] = []
    while len(picked) < n and any(queues):
        for q in queues:
            if q and len(picked) < n:
                picked.append(q.pop(0))
    return torch.tensor(sorted(picked, key=lambda i: (int(labels[i]), i)), dtype=torch.long)


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


def deferred_csv(names: list[str], probs: torch.Tensor, labels: torch.Tensor) -> tuple[str, torch.Tensor]:
    preds = probs.argmax(2)
    idx = torch.nonzero(~agreement(preds)).flatten()
    head = ["index", "label"] + [f"{n}_{c}" for n in names for c in ("pred", "conf")]
    lines = [",".join(head)]
    for i in idx.tolist():
        cells = [str(i), str(int(labels[i]))]
        for m in range(len(names)):
            cells += [str(int(preds[m, i])), f"{float(probs[m, i].max()):.4f}"]
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n", idx


def markdown(names: list[str], runs: list[Path], split: str, res: dict[str, Any]) -> str:
    a = res["agreed"]
    lines = [
        f"# Ensemble of {len(names)} models: predict where they agree, defer the rest",
        "",
        f"Split `{split}`, {res['n']} images. Runs: " + ", ".join(f"`{n}` = `{r}`" for n, r in zip(names, runs)) + ".",
        "",
        f"**The {len(names)} models agree on {a['coverage']:.2%} of the images; on those they are "
        f"{a['accuracy']:.2%} right, vs {res['ensemble']['accuracy']:.2%} for the ensemble on all images.** "
        f"{a['deferred']} images go to a person.",
        "",
        "| model | accuracy | ECE (15 bins) |",
        "|---|--:|--:|",
    ]
    for n, m in res["models"].items():
        lines.append(f"| {n} | {m['accuracy']:.2%} | {m['ece']:.4f} |")
    lines.append(f"| ensemble (mean probability) | {res['ensemble']['accuracy']:.2%} | {res['ensemble']['ece']:.4f} |")
    lines += [
        "",
        "Coverage-accuracy curve: accept when all agree and the mean max-probability is > τ (`coverage.png`).",
        "",
        "| τ | coverage | accuracy | risk |",
        "|--:|--:|--:|--:|",
    ]
    for r in res["curve"]:
        acc = "n/a" if math.isnan(r["accuracy"]) else f"{r['accuracy']:.2%}"
        risk = "n/a" if math.isnan(r["risk"]) else f"{r['risk']:.2%}"
        lines.append(f"| {r['tau']:.2f} | {r['coverage']:.2%} | {acc} | {risk} |")
    lines += [
        "",
        "Files: `results.json`, `coverage.png`, `reliability.png`, `deferred.csv` (every deferred image: "
        "index, label, each model's prediction and confidence), `deferred.png` (the first 64).",
        "",
    ]
    return "\n".join(lines)


def run(runs: list[Path], split: str, out: Path, data_dir: str | None = None) -> dict[str, Any]:
    if not 2 <= len(runs) <= 3:
        raise EnsembleError(f"give 2 or 3 run directories, got {len(runs)}")
    for r in runs:
        if not (r / "config.yaml").is_file() or not (r / "checkpoints" / "last.ckpt").is_file():
            raise EnsembleError(f"{r} is not a finished run (needs config.yaml and checkpoints/last.ckpt)")
    names = [f"m{i}:{r.name}" for i, r in enumerate(runs)]
    records = [json.loads((r / "metrics.json").read_text()) if (r / "metrics.json").is_file() else {} for r in runs]
    evaluated = [evaluate(r, split, data_dir) for r in runs]
    check_compatible(records, [p.shape[1] for p, _, _ in evaluated], names)
    labels, images = evaluated[0][1], evaluated[0][2]
    if any(not torch.equal(y, labels) for _, y, _ in evaluated[1:]):
        raise EnsembleError(
            "the runs' splits hold different labels (another seed of the split or data): "
            "give runs whose DataModule has the same seed and val_size"
        )
    probs = torch.stack([p for p, _, _ in evaluated]).double()
    res = summarise(probs, labels, names)
    csv_text, idx = deferred_csv(names, probs, labels)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        out / "results.json",
        json.dumps({"split": split, "runs": [str(r) for r in runs], **res}, indent=2, sort_keys=True, default=float)
        + "\n",
    )
    atomic_write_text(out / "report.md", markdown(names, runs, split, res))
    atomic_write_text(out / "deferred.csv", csv_text)
    for name, png in (
        ("coverage.png", coverage_png(res["curve"], res["ensemble"]["accuracy"])),
        ("reliability.png", reliability_png(res["reliability"])),
        (
            "deferred.png",
            deferred_png(
                images, idx, labels, probs.argmax(2), getattr(datamodule_of(runs[0], data_dir), "class_names", None)
            ),
        ),
    ):
        atomic_write(out / name, lambda fh, b=png: fh.write(b))
    return res


def parser(prog: str = "trickbench ensemble") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="*", help="2 or 3 run directories of classifiers trained on the same data")
    p.add_argument("--from-ablation", default=None, help="an ablation's run folder (with --arm): its seeds")
    p.add_argument("--arm", default=None)
    p.add_argument("--split", choices=["test", "val"], default="test")
    p.add_argument("--out", default=None, help="output folder (default <first run>/ensemble)")
    p.add_argument("--data_dir", default=None, help="the DataModule's data_dir, if not the one the runs used")
    p.add_argument(
        "--replot",
        default=None,
        metavar="OUT",
        help="redraw the figures of the report in OUT from its results.json and deferred.csv, with the images of "
        "the one run directory given (its config.yaml; no checkpoint needed)",
    )
    return p


def main(argv: list[str] | None = None, prog: str = "trickbench ensemble") -> int:
    p = parser(prog)
    args = p.parse_args(argv)
    try:
        if args.replot:
            if len(args.runs) != 1:
                raise EnsembleError("--replot OUT needs one run directory (for its data config)")
            replot(Path(args.replot), Path(args.runs[0]), args.data_dir)
            print(f"redrew the figures in {args.replot}")
            return 0
        if args.from_ablation:
            if not args.arm or args.runs:
                raise EnsembleError("--from-ablation needs --arm and no run directories")
            runs = from_ablation(Path(args.from_ablation), args.arm)
        else:
            runs = [Path(r) for r in args.runs]
        out = Path(args.out) if args.out else runs[0] / "ensemble"
        run(runs, args.split, out, args.data_dir)
    except EnsembleError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print((out / "report.md").read_text())
    return 0
