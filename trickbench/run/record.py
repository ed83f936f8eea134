"""The run record, `<run_dir>/metrics.json`: its fields, its status vocabulary, and the only code that reads or
writes one (the trainer's `RunRecord` callback, the early-failure path of the training CLI, the sweep harness,
`ablate --status`, the report, the ensemble and the benchmarks all go through `load` / `save` here).

Two vocabularies, no shared word:
- `Status`, what a run's own record says: `running`, `fit_completed`, `fit_interrupted`, `completed` (after
  test), `interrupted` (a signal stopped it, with `signal`), `failed` (with `error`).
- `RunState`, what the sweep makes of a run folder against its plan: `finished` (a `completed` record whose
  definition is the plan's), `resume`, `new`, `damaged`, `stale` (another definition), and for `--status`
  also `running`, `pending`, `failed`.

Plain JSON on purpose (no pickle, no schema library): records stay readable with `jq`, and records written by
earlier versions load (unknown keys are kept in `extra`, missing ones take their defaults).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any

from trickbench.io import atomic_write_json

FILENAME = "metrics.json"


class Status(str, Enum):
    """What a run's record says about the run (`metrics.json`'s `status`)."""

    RUNNING = "running"
    FIT_COMPLETED = "fit_completed"
    FIT_INTERRUPTED = "fit_interrupted"
    COMPLETED = "completed"
    INTERRUPTED = "interrupted"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


class RunState(str, Enum):
    """What the sweep harness makes of a run folder (its record plus the plan's definition)."""

    FINISHED = "finished"
    RESUME = "resume"
    NEW = "new"
    DAMAGED = "damaged"
    STALE = "stale"
    RUNNING = "running"
    PENDING = "pending"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


class RunRecordError(RuntimeError):
    """A run's `metrics.json` exists but cannot be read; the message names the file and the remedy."""


@dataclass
class Record:
    """One run's `metrics.json`. `val`/`test`: the final `val/*`, `test/*` metrics without their prefix;
    `segments`: one per process that worked on the run (pid, host, start, end, exit, fit/wall seconds);
    `extra`: keys this version does not know (kept, written back unchanged)."""

    status: Status | None = None
    val: dict[str, float] | None = None  # None: the key is absent (never validated; {} is a run without val)
    test: dict[str, float] | None = None  # None: never tested (e.g. an interrupted fit)
    fit_seconds: float | None = None
    test_seconds: float | None = None
    wall_seconds: float | None = None
    segments: list[dict[str, Any]] = field(default_factory=list)
    data_fingerprint: str = ""
    global_step: int | None = None
    epoch: int | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    signal: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def completed(self) -> bool:
        return self.status is Status.COMPLETED

    def metric(self, name: str) -> float:
        """`<stage>/<name>` (e.g. `test/acc`); KeyError naming what the record has when it is absent."""
        stage, _, key = name.partition("/")
        values = {"val": self.val, "test": self.test}.get(stage) or {}
        if key not in values:
            raise KeyError(f"{name!r} not in this record (it has {sorted(f'{stage}/{k}' for k in values)})")
        return float(values[key])

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        out["status"] = None if self.status is None else self.status.value
        optional = (
            "val",
            "test",
            "error",
            "signal",
            "fit_seconds",
            "test_seconds",
            "wall_seconds",
            "global_step",
            "epoch",
        )
        out = {k: v for k, v in out.items() if v is not None or k not in optional}
        for key in ("provenance", "segments"):  # records from before these keys existed stay without them
            if not out[key]:
                out.pop(key)
        return {**out, **self.extra}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        known = {f.name for f in fields(cls)} - {"extra"}
        kwargs = {k: v for k, v in data.items() if k in known}
        status = kwargs.get("status")
        try:
            kwargs["status"] = None if status is None else Status(status)
        except ValueError as err:
            raise RunRecordError(f"unknown run status {status!r} (known: {[s.value for s in Status]})") from err
        kwargs["provenance"] = kwargs.get("provenance") or {}
        kwargs["segments"] = kwargs.get("segments") or []
        kwargs["data_fingerprint"] = kwargs.get("data_fingerprint") or ""
        return cls(**kwargs, extra={k: v for k, v in data.items() if k not in known})


def path_of(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / FILENAME


def load(run_dir: str | os.PathLike) -> Record | None:
    """The record of `run_dir` (None when it has none); a damaged file is one clear `RunRecordError`."""
    path = path_of(run_dir)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise RunRecordError(
            f"{path} is damaged ({type(err).__name__}: {err}). Move it aside (e.g. to "
            f"{path.name}.damaged) and resume with --ckpt_path last; `trickbench ablate` does this itself."
        ) from err
    if not isinstance(data, dict):
        raise RunRecordError(f"{path} does not hold a JSON object; move it aside and resume with --ckpt_path last")
    try:
        return Record.from_dict(data)
    except RunRecordError as err:
        raise RunRecordError(f"{path}: {err}") from err


def load_text(text: str) -> Record:
    """A record from its JSON text (a report's `raw/` copy)."""
    return Record.from_dict(json.loads(text))


def save(run_dir: str | os.PathLike, record: Record) -> Path:
    """Write the record atomically (a reader sees the old file or the new one, never half of one)."""
    path = path_of(run_dir)
    atomic_write_json(path, record.to_dict())
    return path


def status_of(run_dir: str | os.PathLike) -> Status | None:
    """The recorded status (None without a record); raises `RunRecordError` when the record is damaged."""
    record = load(run_dir)
    return None if record is None else record.status


def is_completed(run_dir: str | os.PathLike) -> bool:
    """Whether `run_dir` holds a readable record that says `completed`."""
    try:
        return status_of(run_dir) is Status.COMPLETED
    except RunRecordError:
        return False
