"""Training-loop tricks as Lightning callbacks."""

from callbacks.averaging import EMA, Lookahead
from callbacks.distillation import KnowledgeDistillation
from callbacks.run_record import RunRecord
from callbacks.stochastic_depth import StochasticDepthScheduler
from callbacks.warmup import LRWarmup, WarmupLR
from callbacks.whitening import PatchWhitening

__all__ = ["EMA", "KnowledgeDistillation", "LRWarmup", "Lookahead", "PatchWhitening", "RunRecord",
           "StochasticDepthScheduler", "WarmupLR"]
