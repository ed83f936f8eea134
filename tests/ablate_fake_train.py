"""Stand-in for `trickbench fit` in the ablation harness tests: no torch import, ~0.1 s per run.

Behaviour comes from a `fake:` mapping in the --config files (later files win):
  fail: true           -> print "boom" to stderr and exit 1 (after writing a checkpoint)
  acc: 0.7             -> test accuracy written to metrics.json (plus 0.01 * seed)
  add: 0.02            -> summed over every config that has it, added to acc (a trick's true effect)
  noise: 0.003         -> Gaussian noise of this sd added to acc, seeded by the run directory's name and seed
  sleep: 5             -> hold the run directory's lock (as `fit` does) for 5 s before finishing
  preflight: "no data" -> `ablate_fake_train.py preflight MANIFEST` (the harness's shared check) fails with it
Every call appends its argv to <run_dir>/calls.json; a teacher-like config.yaml is written too.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import socket
import sys
import time
from pathlib import Path

import yaml


def read_fake(argv: list[str]) -> dict:
    fake, it = {}, iter(argv)
    for arg in it:
        if arg == "--config":
            fake.update((yaml.safe_load(Path(next(it)).read_text()) or {}).get("fake") or {})
    return fake


def preflight(manifest: str) -> int:
    """Stand-in for trickbench.scripts.ablation.preflight: fails on the first entry whose configs say so."""
    entries = json.loads(Path(manifest).read_text())
    for entry in entries:
        if why := read_fake(entry["args"]).get("preflight"):
            print(f"error: {entry['label']}: {why}", file=sys.stderr)
            return 2
    print(f"preflight: {len(entries)} arm(s) fine")
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["preflight"]:
        return preflight(argv[1])
    fake, opts, configs = {}, {}, []
    it = iter(argv)
    for arg in it:
        if arg == "--config":
            configs.append(next(it))
        elif arg.startswith("--") and "=" in arg:
            key, value = arg[2:].split("=", 1)
            opts[key] = value
    added = 0.0
    for cfg in configs:
        entry = (yaml.safe_load(Path(cfg).read_text()) or {}).get("fake") or {}
        added += float(entry.get("add", 0.0))
        fake.update(entry)
    run_dir = Path(opts["run_dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    if fake.get("sleep"):  # the lock `fit` holds for a run's lifetime (trickbench.run.run_dir.RunLock)
        lock = os.open(run_dir / ".lock", os.O_RDWR | os.O_CREAT)
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(lock, f"{os.getpid()} {socket.gethostname()}\n".encode())
        time.sleep(float(fake["sleep"]))
    calls = json.loads((run_dir / "calls.json").read_text()) if (run_dir / "calls.json").is_file() else []
    (run_dir / "calls.json").write_text(json.dumps(calls + [argv]))
    (run_dir / "checkpoints").mkdir(exist_ok=True)
    (run_dir / "checkpoints" / "last.ckpt").write_text("fake checkpoint")
    net = {"class_path": "fake.Net", "init_args": {"width": 7}}
    (run_dir / "config.yaml").write_text(yaml.safe_dump({"model": {"init_args": {"net": net}}}))
    print(f"fake training {run_dir}")
    if fake.get("fail"):
        print("error: boom", file=sys.stderr)
        return 1
    seed = int(opts.get("seed_everything", 0))
    noise = random.Random(f"{run_dir.parent.name}/{seed}").gauss(0.0, float(fake.get("noise", 0.0)))
    record = {
        "status": "completed",
        "test": {"acc": float(fake.get("acc", 0.5)) + 0.01 * seed + added + noise},
        "wall_seconds": 2.0,
    }
    (run_dir / "metrics.json").write_text(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
