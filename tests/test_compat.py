"""The Lightning internals trickbench relies on (trickbench/compat.py): present, checked loudly, and used through
one helper for "which training batch is this"."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import torch
from lightning.pytorch import Callback, Trainer

from tests.tricks_util import cpu_trainer, tiny_classifier, tiny_loader
from trickbench import compat
from trickbench.lightning_modules.step_logging import log_step_now
from trickbench.run.exact_resume import ExactResume


def test_every_required_internal_exists_on_this_lightning() -> None:
    trainer = cpu_trainer([])
    compat.check(trainer)  # raises on a Lightning outside the tested range
    for path, attr in compat.REQUIRED:
        assert hasattr(compat._resolve(trainer, path), attr), (path, attr)


@pytest.mark.parametrize("where", ["instance", "class", "path"])
def test_a_missing_internal_is_one_error_naming_it(monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    trainer = cpu_trainer([])
    if where == "instance":
        del trainer.fit_loop._combined_loader_states_to_load
        expected = "trainer.fit_loop._combined_loader_states_to_load"
    elif where == "class":
        monkeypatch.delattr(type(trainer.fit_loop), "_load_combined_loader_states")
        expected = "trainer.fit_loop._load_combined_loader_states"
    else:
        monkeypatch.delattr(type(trainer.fit_loop.epoch_loop), "batch_progress", raising=False)
        trainer.fit_loop.epoch_loop.__dict__.pop("batch_progress")
        expected = "trainer.fit_loop.epoch_loop.batch_progress.total"
    with pytest.raises(compat.LightningCompatError, match="pyproject.toml") as err:
        compat.check(trainer)
    assert expected in str(err.value)


def test_a_fit_stops_at_start_when_an_internal_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    model = tiny_classifier()
    before = [p.detach().clone() for p in model.parameters()]
    trainer = cpu_trainer([ExactResume()], max_epochs=1)
    monkeypatch.delattr(type(trainer.fit_loop), "setup_data")
    with pytest.raises(compat.LightningCompatError, match=r"trainer\.fit_loop\.setup_data"):
        trainer.fit(model, tiny_loader())
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # stopped before any step


class BatchNumbers(Callback):
    """batch_index as seen from the two hooks that seed streams, and the loop's own count."""

    def __init__(self) -> None:
        self.transfer: list[int] = []
        self.start: list[int] = []
        self.taken: list[int] = []

    def on_train_batch_start(self, trainer: Trainer, pl_module: Any, batch: Any, batch_idx: int) -> None:
        self.start.append(compat.batch_index(trainer))
        self.taken.append(compat.epoch_batches_taken(trainer) - 1 - batch_idx)  # 0: taken includes this batch


def test_batch_index_is_the_same_number_in_every_hook_that_reads_it() -> None:
    model = tiny_classifier()
    rec = BatchNumbers()
    original = model.on_after_batch_transfer

    def on_after_batch_transfer(batch: Any, dataloader_idx: int) -> Any:
        if model.trainer.training:
            rec.transfer.append(compat.batch_index(model.trainer))
        return original(batch, dataloader_idx)

    model.on_after_batch_transfer = on_after_batch_transfer
    cpu_trainer([rec], max_epochs=3).fit(model, tiny_loader(n=32, batch_size=8))  # 4 batches x 3 epochs
    assert rec.start == list(range(12)) and rec.transfer == list(range(12))
    assert rec.taken == [0] * 12


@pytest.mark.parametrize("every", [1, 3])
def test_public_log_rule_matches_lightnings_internal_one(every: int) -> None:
    """step_logging.log_step_now uses global_step; Lightning decides with its logger connector's internal rule."""
    model = tiny_classifier()
    seen: list[tuple[bool, bool]] = []
    step = model.training_step

    def training_step(batch: Any, batch_idx: int) -> Any:
        lightning_rule = model.trainer._logger_connector.should_update_logs or batch_idx == 0
        seen.append((log_step_now(model, batch_idx), lightning_rule))
        return step(batch, batch_idx)

    model.training_step = training_step
    cpu_trainer([], max_epochs=2, log_every_n_steps=every).fit(model, tiny_loader(n=56, batch_size=8))  # 7 x 2
    assert len(seen) == 14
    assert [a for a, _ in seen] == [b for _, b in seen]
    assert sum(a for a, _ in seen) == (14 if every == 1 else 2 + 4)  # batch 0 of each epoch + steps 3, 6, 9, 12


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.mark.parametrize("quiet", [False, True])
def test_quiet_lightning_drops_the_litlogger_tip(quiet: bool) -> None:
    logger = logging.getLogger(compat.RANK_ZERO_LOGGER)
    saved = list(logger.filters)
    collect = _Collect()
    logger.addHandler(collect)
    try:
        logger.filters = [f for f in logger.filters if not isinstance(f, compat._DropTips)]
        if quiet:
            compat.quiet_lightning()
        Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    finally:
        logger.removeHandler(collect)
        logger.filters = saved
    tips = [m for m in collect.messages if m.startswith("💡 Tip:")]
    # without the filter the advert is logged on RANK_ZERO_LOGGER: if Lightning moves it, quiet=False fails first
    assert (tips == []) if quiet else (len(tips) >= 1), collect.messages


def test_the_model_summary_has_no_flops_column_of_zeros() -> None:
    from lightning.pytorch.callbacks import ModelSummary as LightningSummary

    from trickbench.lightning_cli import plain_summary
    from trickbench.run import ModelSummary
    from trickbench.run.summary import summary_text

    trainer = plain_summary(Trainer(accelerator="cpu", logger=False, enable_progress_bar=False))
    summaries = [cb for cb in trainer.callbacks if isinstance(cb, LightningSummary)]
    assert [type(cb) for cb in summaries] == [ModelSummary]  # Lightning's own (Rich) summary replaced, once
    data = [
        (" ", ["0"]),
        ("Name", ["net"]),
        ("Type", ["MLP"]),
        ("Params", ["4.8 K"]),
        ("Mode", ["train"]),
        ("FLOPs", ["0"]),
    ]
    text = summary_text(data, 4800, 4800, 0.019, {"train": 3, "eval": 0}, total_flops=0)
    assert "FLOPs" not in text and "0 | net  | MLP  | 4.8 K  | train" in text and "Total params: 4.8 K" in text
    counted = summary_text(data[:-1] + [("FLOPs", ["1.2 M"])], 4800, 4800, 0.019, {"train": 3}, total_flops=1_200_000)
    assert "| FLOPs" in counted and "Total FLOPs: 1.2 M" in counted
