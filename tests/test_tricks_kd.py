"""Knowledge distillation: the loss term, a frozen teacher, safe loading and clean student checkpoints."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch import Callback
from tricks_util import cpu_trainer, tiny_classifier, tiny_loader

from trickbench.callbacks.distillation import KnowledgeDistillation, load_teacher
from trickbench.lightning_modules.nets import MLP
from trickbench.lightning_modules.ops.distill import kd_loss


def teacher_net() -> MLP:
    return MLP(input_dim=4, hidden_dims=[16], output_dim=3)


def test_kd_loss_formula_and_zero_when_equal():
    torch.manual_seed(0)
    s, t, T = torch.randn(5, 3), torch.randn(5, 3), 2.0
    assert kd_loss(s, s.clone(), T).item() == pytest.approx(0.0, abs=1e-7)
    p_t, log_p_s = (t / T).softmax(1), (s / T).log_softmax(1)
    expect = T**2 * (p_t * (p_t.log() - log_p_s)).sum(1).mean()  # T^2 KL(p_teacher || p_student)
    assert kd_loss(s, t, T).item() == pytest.approx(expect.item(), rel=1e-6)


def test_teacher_gets_no_gradient(tmp_path):
    torch.save(teacher_net().state_dict(), tmp_path / "t.pt")
    kd = KnowledgeDistillation(teacher_net(), str(tmp_path / "t.pt"), alpha=0.7, temperature=3.0)
    student = tiny_classifier()
    kd.setup(None, student, "fit")  # type: ignore[arg-type]
    kd.on_fit_start(None, student)  # type: ignore[arg-type]
    fn, base_weight = student.loss_terms["kd"]
    assert base_weight == pytest.approx(0.3)
    x = torch.randn(6, 4)
    logits = student(x)
    term = fn(x, logits, torch.zeros(6, dtype=torch.long))
    assert term.item() == pytest.approx(0.7 * kd_loss(logits, kd.teacher(x), 3.0).item(), rel=1e-6)
    term.backward()
    assert all(p.grad is None and not p.requires_grad for p in kd.teacher.parameters())
    assert all(p.grad is not None for p in student.parameters())
    assert not kd.teacher.training


class TeacherWatch(Callback):
    """Asserts, at every step, that the teacher is in eval mode and the KD term is registered; records it."""

    def __init__(self, kd: KnowledgeDistillation) -> None:
        self.kd, self.kd_values = kd, []

    def on_train_batch_end(self, trainer, pl_module, *args) -> None:
        assert not self.kd.teacher.training and "kd" in pl_module.loss_terms
        self.kd_values.append(float(trainer.callback_metrics["train/kd"]))


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_fit_keeps_teacher_frozen_and_out_of_checkpoint(tmp_path, precision):
    torch.manual_seed(1)
    teacher = teacher_net()
    torch.save(teacher.state_dict(), tmp_path / "t.pt")
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    kd = KnowledgeDistillation(teacher_net(), str(tmp_path / "t.pt"), alpha=0.5, temperature=4.0)
    watch, student = TeacherWatch(kd), tiny_classifier()
    trainer = cpu_trainer([kd, watch], max_steps=4, precision=precision)
    trainer.fit(student, tiny_loader())
    assert len(watch.kd_values) == 4 and min(watch.kd_values) > 0
    assert all(torch.equal(before[k], v) for k, v in kd.teacher.state_dict().items())  # teacher unchanged
    trainer.save_checkpoint(tmp_path / "student.ckpt")
    ckpt = torch.load(tmp_path / "student.ckpt", weights_only=True)
    assert set(ckpt["state_dict"]) == set(student.state_dict())  # only the student's own tensors
    teacher_values = [v for v in before.values()]
    for state in [ckpt["state_dict"]] + list(ckpt["callbacks"].values()):
        for v in state.values():
            if isinstance(v, torch.Tensor):
                assert not any(v.shape == t.shape and torch.equal(v, t) for t in teacher_values)
    assert "kd" not in student.loss_terms  # unregistered after fit: test/validate use plain CE


def test_lightning_checkpoint_loads_as_teacher(tmp_path):
    student = tiny_classifier()
    trainer = cpu_trainer([], max_steps=1)
    trainer.fit(student, tiny_loader())
    trainer.save_checkpoint(tmp_path / "last.ckpt")  # a Classifier checkpoint: "net."-prefixed keys + extras
    teacher = load_teacher(MLP(input_dim=4, hidden_dims=[8], output_dim=3), tmp_path / "last.ckpt")
    assert all(torch.equal(a, b) for a, b in zip(teacher.state_dict().values(), student.net.state_dict().values()))
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())


def test_wrong_architecture_untrusted_pickle_and_missing_file(tmp_path):
    torch.save(teacher_net().state_dict(), tmp_path / "t.pt")
    with pytest.raises(ValueError, match=r"t\.pt does not match the declared teacher net MLP.*16\) in file"):
        load_teacher(MLP(input_dim=4, hidden_dims=[8], output_dim=3), tmp_path / "t.pt")
    torch.save({"state_dict": teacher_net().state_dict(), "extra": ArbitraryObject()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="evil.pt holds objects that torch.load"):
        load_teacher(teacher_net(), tmp_path / "evil.pt")
    with pytest.raises(FileNotFoundError, match="nope.pt does not exist"):
        load_teacher(teacher_net(), tmp_path / "nope.pt")
    with pytest.raises(ValueError, match="needs teacher_checkpoint"):
        KnowledgeDistillation(teacher_net()).setup(None, tiny_classifier(), "fit")  # type: ignore[arg-type]


class ArbitraryObject:
    """Not on torch's weights_only allow-list: unpickling it could run arbitrary code."""
