"""Training-loop tricks as Lightning callbacks, and the run defaults of configs/trainer/default.yaml."""

from trickbench.callbacks.atomic_checkpoint import AtomicCheckpointIO, LastCheckpoint
from trickbench.callbacks.averaging import EMA, Lookahead
from trickbench.callbacks.distillation import KnowledgeDistillation
from trickbench.callbacks.exact_resume import ExactResume
from trickbench.callbacks.finite_guard import FiniteLossGuard
from trickbench.callbacks.lr_monitor import LearningRateMonitor
from trickbench.callbacks.progress import PlainProgress
from trickbench.callbacks.run_record import RunRecord
from trickbench.callbacks.stochastic_depth import StochasticDepthScheduler
from trickbench.callbacks.summary import ModelSummary
from trickbench.callbacks.warmup import LRWarmup, WarmupLR
from trickbench.callbacks.whitening import PatchWhitening

__all__ = [
    "EMA",
    "AtomicCheckpointIO",
    "ExactResume",
    "FiniteLossGuard",
    "KnowledgeDistillation",
    "LRWarmup",
    "LearningRateMonitor",
    "ModelSummary",
    "LastCheckpoint",
    "Lookahead",
    "PatchWhitening",
    "PlainProgress",
    "RunRecord",
    "StochasticDepthScheduler",
    "WarmupLR",
]
