"""The tricks that act on the training loop, as Lightning callbacks (their pure functions live in
trickbench.lightning_modules.ops). Run plumbing (records, resume, guards, checkpoints) is in trickbench.run."""

from trickbench.callbacks.averaging import EMA, Lookahead
from trickbench.callbacks.distillation import KnowledgeDistillation
from trickbench.callbacks.samples import SampleGrids
from trickbench.callbacks.stochastic_depth import StochasticDepthScheduler
from trickbench.callbacks.warmup import LRWarmup, WarmupLR
from trickbench.callbacks.whitening import PatchWhitening

__all__ = [
    "EMA",
    "KnowledgeDistillation",
    "LRWarmup",
    "Lookahead",
    "PatchWhitening",
    "SampleGrids",
    "StochasticDepthScheduler",
    "WarmupLR",
]
