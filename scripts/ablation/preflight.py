"""Check what the runs of a sweep share, once, before any of them starts (`trickbench ablate` runs this first).

    python -m trickbench.scripts.ablation.preflight MANIFEST.json

The manifest is a JSON list of `{"label": L, "args": [fit/test arguments, no subcommand], "teacher": CKPT|null}`,
one entry per arm (and prerequisite). For each: the command line parses as `trickbench fit` would parse it; the
data it configures is present and intact (checked once per distinct dataset, with the DataModule's own
`preflight()`: the same check `fit` makes before creating its run directory); every teacher checkpoint it names
(or the finished prerequisite it distils from) loads. Nothing is trained and nothing is written. Exit 0 when all
is well; otherwise one line `error: <label>: <what to fix>` on stderr and exit 2.

Why by hand: LightningCLI parses and builds everything in one go; here the parse, the DataModule and the teacher
are checked without building the model or a Trainer.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

from jsonargparse import Namespace

from trickbench.callbacks.distillation import read_state_dict
from trickbench.lightning_cli import DEBUG_ENV, TrickbenchCLI, build_datamodule, preflight_data

SEED_KEYS = ("seed",)  # data arguments that differ per seed and not per dataset


class PreflightError(RuntimeError):
    """What all runs share is broken; the message names the arm and what to fix."""


class _ParseOnly(TrickbenchCLI):
    """The training CLI's parser (the same defaults and config resolution), with nothing built or run."""

    def before_instantiate_classes(self) -> None:
        pass

    def instantiate_classes(self) -> None:
        pass


def _parse(args: list[str], cli: _ParseOnly | None) -> tuple[Namespace, _ParseOnly]:
    """The parsed config of `args`; argument errors (printed by the parser) become one message."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            if cli is None:
                cli = _ParseOnly(args=args, run=False)
                return cli.config, cli
            return cli.parser.parse_args(args), cli
    except SystemExit:
        lines = [ln for ln in err.getvalue().splitlines() if ln.strip()]
        raise PreflightError(lines[-1].removeprefix("error: ") if lines else "the arguments do not parse") from None


def _teachers(cfg: Namespace) -> list[str]:
    """Teacher checkpoints the config names (KnowledgeDistillation callbacks with a `teacher_checkpoint`)."""
    callbacks = (cfg.get("trainer") or Namespace()).get("callbacks") or []
    found = []
    for cb in callbacks if isinstance(callbacks, list) else [callbacks]:
        init = cb.get("init_args") if isinstance(cb, Namespace) else None
        if init is not None and init.get("teacher_checkpoint"):
            found.append(str(init.teacher_checkpoint))
    return found


def _data_key(cfg: Namespace) -> str:
    data = cfg.get("data")
    if not isinstance(data, Namespace):
        return ""
    plain = data.clone().as_dict()
    for key in SEED_KEYS:
        (plain.get("init_args") or {}).pop(key, None)
    return json.dumps(plain, sort_keys=True, default=str)


def check(entries: list[dict[str, Any]]) -> int:
    """Raise PreflightError for the first entry whose arguments, data or teacher are broken; else the number of
    distinct datasets checked."""
    cli, datasets = None, set()
    for entry in entries:
        label, args = entry["label"], [a for a in entry["args"] if not a.startswith("--ckpt_path=")]
        try:
            cfg, cli = _parse(args, cli)
            key = _data_key(cfg)
            if key not in datasets:
                preflight_data(build_datamodule(cfg.get("data")))
                datasets.add(key)
            for ckpt in _teachers(cfg) + ([entry["teacher"]] if entry.get("teacher") else []):
                read_state_dict(ckpt)
        except PreflightError as err:
            raise PreflightError(f"{label}: {err}") from None
        except Exception as err:  # a class or file check that failed: its own message says what to do
            reason = " ".join(str(err).split())
            raise PreflightError(f"{label}: {type(err).__name__}: {reason}") from err
    return len(datasets)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m trickbench.scripts.ablation.preflight MANIFEST.json", file=sys.stderr)
        return 2
    entries = json.loads(Path(argv[0]).read_text())
    try:
        n = check(entries)
    except PreflightError as err:
        if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"preflight: {len(entries)} arm(s) parse, {n} dataset(s) present and intact, teachers load")
    return 0


if __name__ == "__main__":
    sys.exit(main())
