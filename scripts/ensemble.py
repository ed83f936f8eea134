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
import json
import math
import sys
from pathlib import Path
from typing import Any

import torch

from trickbench.io import atomic_write, atomic_write_text
from trickbench.run import record as run_record
from trickbench.run.record import Record
from trickbench.scripts.ensembling.metrics import deferred_csv, spread_over_classes, summarise
from trickbench.scripts.ensembling.plots import coverage_png, deferred_png, reliability_png, tau_labels


class EnsembleError(ValueError):
    """Runs that cannot be compared, or a bad command line; the message says which and why."""


# --- runs -------------------------------------------------------------------------------------------------
def check_compatible(records: list[Record], classes: list[int], names: list[str]) -> None:
    prints = {r.data_fingerprint for r in records}
    if len(prints) > 1:
        detail = ", ".join(f"{n}: {r.data_fingerprint!r}" for n, r in zip(names, records))
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
    done = [d for d in runs if run_record.is_completed(d)]
    if len(done) < 2:
        raise EnsembleError(f"arm '{arm}' of {root} has {len(done)} completed seed run(s); an ensemble needs 2 or 3")
    return done[:3]


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
    records = [run_record.load(r) or Record() for r in runs]
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


__all__ = ["EnsembleError", "check_compatible", "main", "run", "spread_over_classes", "tau_labels"]
