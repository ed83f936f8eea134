"""Training-loop tricks as Lightning callbacks (EMA is Lightning's own `EMAWeightAveraging`)."""

from callbacks.distillation import KnowledgeDistillation
from callbacks.run_record import RunRecord
from callbacks.stochastic_depth import StochasticDepthScheduler
from callbacks.warmup import LRWarmup, WarmupLR

__all__ = ["KnowledgeDistillation", "LRWarmup", "RunRecord", "StochasticDepthScheduler", "WarmupLR"]
