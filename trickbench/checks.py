"""Argument checks at construction: a rate or probability outside its range is one clear error before any
data loads (torch silently ignores e.g. a negative `label_smoothing`, and a value > 1 fails only at the
first training step)."""

from __future__ import annotations

import math


def check_range(
    owner: str,
    name: str,
    value: float,
    low: float = 0.0,
    high: float = 1.0,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return `value` if it lies in the interval, else raise ValueError naming `owner name` and the range."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    above = v > low if low_open else v >= low
    below = v < high if high_open else v <= high
    if not (above and below):  # NaN fails both
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{owner} `{name}` must be in {interval}, got {value!r}")
    return value


def require_unnormalized(owner: str, datamodule: object, what: str) -> None:
    """Generative modules work on pixel intensities in [0, 1]: refuse a DataModule that normalises them
    (image DataModules expose `mean` = None when `normalize: false`)."""
    if getattr(datamodule, "mean", None) is not None:
        raise ValueError(
            f"{owner} {what} pixel intensities in [0, 1], but {type(datamodule).__name__} normalises them. "
            "Set `data.init_args.normalize: false`."
        )
