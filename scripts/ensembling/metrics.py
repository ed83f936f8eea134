"""What an ensemble of 2-3 runs is scored on: agreement, expected calibration error and the reliability bins,
the coverage-accuracy curve of deferring low-confidence images, and which images are deferred (spread across
classes)."""

from __future__ import annotations

import math
from typing import Any

import torch

TAUS = [round(0.05 * i, 2) for i in range(21)]


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
