"""Knowledge distillation (Hinton et al., 2015) from a frozen teacher loaded from a checkpoint.

loss = alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE
(the T^2 keeps the soft-target gradients at the same scale as CE's when T changes). The KD term
reaches the Classifier through its documented hook `register_loss_term("kd", fn, 1 - alpha)`.

The teacher lives on this callback, never on the LightningModule, so it is not trained, not
wrapped by DDP (each rank runs its own copy on its own shard) and never saved in the student's
checkpoint. Under AMP it runs inside the training step's autocast; the KL is computed in float32.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torch import nn

from trickbench.lightning_modules.ops.distill import kd_loss


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Weights from a trickbench Lightning checkpoint ("state_dict" with "net." keys) or a plain
    state_dict, loaded with weights_only=True (no arbitrary code from the pickle)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"teacher_checkpoint {path} does not exist; train the teacher first and pass "
            "its last.ckpt (or a torch.save(net.state_dict()) file)"
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"teacher_checkpoint {path} holds objects that torch.load(weights_only=True) refuses to unpickle, so it "
            f"is not loaded ({str(err).splitlines()[0]}). If you trust the file, re-save only the weights: "
            f"torch.save(torch.load(path, weights_only=False)['state_dict'], 'teacher.pt')."
        ) from err
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(
            f"teacher_checkpoint {path} holds no state_dict of tensors; pass a Lightning checkpoint "
            "or a torch.save(net.state_dict()) file"
        )
    if any(k.startswith("net.") for k in state):  # a Classifier checkpoint: keep the net's weights only
        state = {k[len("net.") :]: v for k, v in state.items() if k.startswith("net.")}
    return state


def load_teacher(net: nn.Module, path: str | Path) -> nn.Module:
    """Load `path` into `net` strictly, then freeze it and put it in eval mode."""
    state, own = read_state_dict(path), net.state_dict()
    problems = [f"missing {k}" for k in own if k not in state] + [f"unexpected {k}" for k in state if k not in own]
    problems += [
        f"{k}: {tuple(state[k].shape)} in file, {tuple(v.shape)} in net"
        for k, v in own.items()
        if k in state and state[k].shape != v.shape
    ]
    if problems:
        raise ValueError(
            f"teacher_checkpoint {path} does not match the declared teacher net {type(net).__name__} "
            f"({len(problems)} problems, e.g. {'; '.join(problems[:3])}). Declare the net the teacher was trained with "
            "(class and init_args: widths, norm, num_classes) as the KnowledgeDistillation callback's `teacher`."
        )
    net.load_state_dict(state, strict=True)
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval()


class KnowledgeDistillation(Callback):
    """Distil `teacher` (weights from `teacher_checkpoint`) into the trained Classifier.

    alpha: weight of the KD term (CE gets 1 - alpha). temperature: softmax temperature T (> 0).

    Args:
        teacher: the teacher network (same input and classes as the student): its class and arguments, built when
            its checkpoint is loaded, in a private RNG scope, so that declaring a teacher leaves the student's
            initial weights those of the baseline with the same seed (a built nn.Module works too, in Python)
        teacher_checkpoint: the teacher's weights: a run's last.ckpt or a state_dict file
        alpha: weight of the KD term (CE gets 1 - alpha)
        temperature: softmax temperature T (> 0) of both distributions
    """

    def __init__(
        self,
        teacher: Callable[[], nn.Module],
        teacher_checkpoint: str | None = None,
        alpha: float = 0.5,
        temperature: float = 4.0,
    ) -> None:
        if not 0.0 <= alpha <= 1.0 or temperature <= 0:
            raise ValueError(
                f"KnowledgeDistillation needs alpha in [0, 1] and temperature > 0, got {alpha}, {temperature}"
            )
        # From YAML the teacher comes as a factory (jsonargparse builds a Callable[[], nn.Module] lazily): an eagerly
        # built teacher drew its (discarded) random init from the global RNG before the student was built.
        self._make_teacher = teacher
        self.teacher: nn.Module | None = teacher if isinstance(teacher, nn.Module) else None
        self.teacher_checkpoint = teacher_checkpoint
        self.alpha, self.temperature = alpha, temperature
        self._loaded = False

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "fit" or self._loaded:
            return
        if self.teacher_checkpoint is None:
            raise ValueError(
                "KnowledgeDistillation needs teacher_checkpoint: add a config fragment that sets it (the ablation "
                "harness generates one), or pass --trainer.callbacks.init_args.teacher_checkpoint PATH right after "
                "--config configs/tricks/kd.yaml (it edits the last callback added)."
            )
        if not hasattr(pl_module, "register_loss_term"):
            raise TypeError(
                f"KnowledgeDistillation needs a module with register_loss_term (the Classifier), "
                f"got {type(pl_module).__name__}"
            )
        if self.teacher is None:
            with torch.random.fork_rng(devices=[]):  # its random init is overwritten: it must not move the run's RNG
                self.teacher = self._make_teacher()
        load_teacher(self.teacher, self.teacher_checkpoint)
        self._loaded = True

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # After strategy.setup, so the student is on its device; match its dtype for true-precision runs.
        dtype = next((p.dtype for p in pl_module.parameters() if p.is_floating_point()), torch.float32)
        teacher, alpha, temperature = (
            self.teacher.to(device=pl_module.device, dtype=dtype).eval(),
            self.alpha,
            self.temperature,
        )

        # A closure, not a bound method: copies of the module (EMA's deepcopy) must not copy the teacher.
        def kd_term(x: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                teacher_logits = teacher(x)
            return alpha * kd_loss(logits, teacher_logits, temperature)

        pl_module.register_loss_term("kd", kd_term, base_weight=1.0 - alpha)

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        pl_module.unregister_loss_term("kd")
