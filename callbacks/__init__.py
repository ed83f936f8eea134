"""Training-loop tricks as Lightning callbacks, and the run defaults of configs/trainer/default.yaml."""

from callbacks.atomic_checkpoint import AtomicCheckpointIO, LastCheckpoint
from callbacks.averaging import EMA, Lookahead
from callbacks.distillation import KnowledgeDistillation
from callbacks.exact_resume import ExactResume
from callbacks.finite_guard import FiniteLossGuard
from callbacks.progress import PlainProgress
from callbacks.run_record import RunRecord
from callbacks.stochastic_depth import StochasticDepthScheduler
from callbacks.summary import ModelSummary
from callbacks.warmup import LRWarmup, WarmupLR
from callbacks.whitening import PatchWhitening

__all__ = ["EMA", "AtomicCheckpointIO", "ExactResume", "FiniteLossGuard", "KnowledgeDistillation", "LRWarmup", "ModelSummary",
           "LastCheckpoint", "Lookahead", "PatchWhitening", "PlainProgress", "RunRecord", "StochasticDepthScheduler",
           "WarmupLR"]
