"""Score a trained GAN with the template's own MNIST classifier (no Inception network, no download).

    trickbench score-gan --gan_run runs/mnist_gan --classifier_run runs/mnist_cnn [--num_samples 10000]

Score = exp(E_x KL(p(y|x) || p(y))), the Inception Score of Salimans et al. 2016 with the
classifier in place of Inception: 1 (every sample equally ambiguous, or all the same digit) to
10 (every sample a confident digit, all 10 digits equally often). Coverage = the number of
classes that receive at least `min_share` of the argmax predictions. Writes `<gan_run>/score.json`;
`--reference` also scores the real test images (the ceiling for this classifier).
`--trajectory` instead scores every `checkpoints/epoch=*.ckpt` of the run in step order (keep them with a
`ModelCheckpoint(save_top_k: -1)`), the live G and, if the run has one, the EMA G, and writes
`<gan_run>/trajectory.jsonl`: how the score grew during training.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import torch
import yaml
from jsonargparse import ArgumentParser
from lightning.pytorch import LightningDataModule, LightningModule

from trickbench.io import atomic_write_text


def classifier_score(probs: torch.Tensor, min_share: float = 0.01) -> dict[str, Any]:
    """IS-style score, class coverage and class histogram from p(y|x), shape (N, K)."""
    probs = probs.double().clamp_min(1e-12)
    marginal = probs.mean(0)
    kl = (probs * (probs.log() - marginal.log())).sum(1)
    share = torch.bincount(probs.argmax(1), minlength=probs.shape[1]).double() / len(probs)
    return {
        "score": float(kl.mean().exp()),
        "coverage": int((share >= min_share).sum()),
        "class_share": [round(float(s), 4) for s in share],
        "mean_max_prob": float(probs.max(1).values.mean()),
    }


def load_run(
    run_dir: str | Path, ckpt: str = "checkpoints/last.ckpt", data_dir: str | None = None
) -> tuple[LightningModule, LightningDataModule]:
    """Rebuild a run's module and DataModule from its `config.yaml`, with the checkpoint's weights
    (`data_dir` replaces the DataModule's, for a run trained where the data lived elsewhere)."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file() or not (run_dir / ckpt).is_file():
        raise FileNotFoundError(f"{run_dir} needs config.yaml and {ckpt}: pass the --run_dir of a finished fit.")
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    if data_dir is not None:
        cfg["data"].setdefault("init_args", {})["data_dir"] = str(data_dir)
    parser = ArgumentParser()
    parser.add_argument("--model", type=LightningModule)
    parser.add_argument("--data", type=LightningDataModule)
    objs = parser.instantiate(parser.parse_object({"model": cfg["model"], "data": cfg["data"]}))
    state = torch.load(run_dir / ckpt, map_location="cpu", weights_only=True)["state_dict"]
    objs.model.load_state_dict(state, strict=False)  # non-persistent buffers (fixed_z) are not saved
    return objs.model.eval(), objs.data


@torch.no_grad()
def classify(
    classifier: LightningModule, dm: LightningDataModule, images: torch.Tensor, batch: int = 1000
) -> torch.Tensor:
    """p(y|x) for images in [0, 1], quantised to uint8 and transformed exactly like the classifier's test data."""
    out = []
    for chunk in images.split(batch):
        pixels = (chunk.clamp(0, 1) * 255).round().to(torch.uint8)
        out.append(classifier(dm.eval_transform(pixels)).softmax(1))
    return torch.cat(out)


@torch.no_grad()
def generate(gan: LightningModule, n: int, seed: int, batch: int = 1000) -> torch.Tensor:
    torch.manual_seed(seed)
    return torch.cat([gan.sample(min(batch, n - i)) for i in range(0, n, batch)])


def trajectory(
    gan_run: str | Path, classifier: LightningModule, cdm: LightningDataModule, n: int, seed: int, min_share: float
) -> list[dict[str, Any]]:
    """One row per epoch checkpoint: score, mean max p and smallest class share of the EMA G (if any), then G."""
    ckpts = sorted(
        Path(gan_run, "checkpoints").glob("epoch=*.ckpt"), key=lambda p: int(re.search(r"step=(\d+)", p.name)[1])
    )
    if not ckpts:
        raise FileNotFoundError(f"no checkpoints/epoch=*.ckpt in {gan_run}: train with ModelCheckpoint(save_top_k=-1).")
    rows = []
    for ckpt in ckpts:
        gan, _ = load_run(gan_run, f"checkpoints/{ckpt.name}")
        row: dict[str, Any] = {"ckpt": ckpt.name}
        for name in ("ema", "live") if gan.generator_ema is not None else ("live",):
            if name == "live":
                gan.generator_ema = None  # `sampler` falls back to the live G
            s = classifier_score(classify(classifier, cdm, generate(gan, n, seed)), min_share)
            row |= {
                name: round(s["score"], 3),
                f"{name}_maxp": round(s["mean_max_prob"], 3),
                f"{name}_minshare": min(s["class_share"]),
            }
        print(json.dumps(row), flush=True)
        rows.append(row)
    atomic_write_text(Path(gan_run) / "trajectory.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    return rows


def parser(prog: str = "trickbench score-gan") -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    ap.add_argument("--gan_run", required=True)
    ap.add_argument("--classifier_run", required=True)
    ap.add_argument("--num_samples", type=int, default=10_000)
    ap.add_argument("--min_share", type=float, default=0.01, help="share of samples a class needs to count as covered")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reference", action="store_true", help="also score the real test images")
    ap.add_argument("--trajectory", action="store_true", help="score every epoch checkpoint instead (trajectory.jsonl)")
    return ap


def main(argv: list[str] | None = None, prog: str = "trickbench score-gan") -> dict[str, Any]:
    args = parser(prog).parse_args(argv)
    classifier, cdm = load_run(args.classifier_run)
    if args.trajectory:
        return {"trajectory": trajectory(args.gan_run, classifier, cdm, args.num_samples, args.seed, args.min_share)}
    gan, _ = load_run(args.gan_run)
    result = {"num_samples": args.num_samples, "min_share": args.min_share, "classifier_run": str(args.classifier_run)}
    probs = classify(classifier, cdm, generate(gan, args.num_samples, args.seed))
    result["generated"] = classifier_score(probs, args.min_share)
    if gan.hparams.get("num_classes"):  # conditional GAN: does the classifier read the digit that was asked for?
        asked = torch.cat([gan.labels(min(1000, args.num_samples - i)) for i in range(0, args.num_samples, 1000)])
        result["generated"]["label_agreement"] = float((probs.argmax(1) == asked.cpu()).double().mean())
    if args.reference:
        cdm.setup("test")
        real = cdm.splits["test"][0][: args.num_samples].float() / 255
        result["real_test"] = classifier_score(classify(classifier, cdm, real), args.min_share)
    atomic_write_text(Path(args.gan_run) / "score.json", json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result
