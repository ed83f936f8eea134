"""Several training runs in one Python process, one after another (`trickbench.scripts.ablate --per-process N`).

    python -m trickbench.scripts.ablation.batch MANIFEST.json

The manifest is a JSON list of `{"run_dir": DIR, "args": [subcommand and its arguments]}` (what
`trickbench.scripts.ablate` writes).
Each run is its own `trickbench.lightning_cli.main(args)` call: its own LightningCLI, Trainer, seed, W&B run and
run lock; the process start (interpreter, imports, a compiled graph's warm caches) is shared. Output of each run
goes to its `stdout.log`/`stderr.log` (file descriptors 1 and 2 are redirected, so C-level and logging output
land there too); this process prints one line per run. A run that raises is recorded by its RunRecord and the
batch goes on. Exit code: 0 if every run returned, 1 otherwise.

Why by hand: Lightning runs one Trainer per `fit`, and LightningCLI one parse per instance; nothing in either
library loops over several configurations in a process.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SIGTERM_EXIT = 128 + signal.SIGTERM  # what trickbench.lightning_cli.main raises after a SIGTERM'd fit checkpointed


@contextlib.contextmanager
def redirected(stdout: Path, stderr: Path) -> Iterator[None]:
    """Point fds 1 and 2 (and sys.stdout/sys.stderr, which write to them) at two files, appending."""
    sys.stdout.flush(), sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(stdout, "a") as out, open(stderr, "a") as err:
        os.dup2(out.fileno(), 1), os.dup2(err.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush(), sys.stderr.flush()
            os.dup2(saved[0], 1), os.dup2(saved[1], 2)
            os.close(saved[0]), os.close(saved[1])


def run_one(entry: dict[str, Any]) -> str:
    """One run (`fit` or `test`) from the manifest; 'ok' or 'failed: <why>' (the run's own record says more)."""
    from trickbench.lightning_cli import main

    run_dir = Path(entry["run_dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    with redirected(run_dir / "stdout.log", run_dir / "stderr.log"):
        try:
            main(list(entry["args"]))
            return "ok"
        except SystemExit as err:  # SIGTERM (143) and CLI usage errors
            traceback.print_exc()
            return f"failed: exit {err.code}"
        except Exception as err:  # noqa: BLE001 - a run that raises is recorded; the batch goes on to the next
            traceback.print_exc()
            return f"failed: {type(err).__name__}: {str(err)[:200]}"


def main(argv: list[str] | None = None) -> int:
    from trickbench import signals

    signals.hold()  # as `trickbench.cli.main`: a SLURM warning waits for the Trainer's handler
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m trickbench.scripts.ablation.batch MANIFEST.json", file=sys.stderr)
        return 2
    entries = json.loads(Path(argv[0]).read_text())
    failed = 0
    for i, entry in enumerate(entries):
        outcome = run_one(entry)
        failed += outcome != "ok"
        print(f"[batch {i + 1}/{len(entries)}] {entry['run_dir']}: {outcome}", flush=True)
        if outcome == f"failed: exit {SIGTERM_EXIT}":  # stopped (SLURM preemption, Ctrl-C): not the next run
            return SIGTERM_EXIT
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
