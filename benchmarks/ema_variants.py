"""Which weight average helps the fast preset? Every variant of the EMA issue, measured in one command.

    python -m benchmarks.ema_variants --data_dir DATA [--accept_nonoriginal] [--epochs 4]

Two trainings of `configs/cifar10_fast.yaml` on a shortened schedule (`--epochs`), started together
(one torch thread each on a CPU):

- `lookahead`: the preset as shipped (airbench's Lookahead; its final weights are the live ones).
- `shadows`: the preset with Lookahead replaced by `Shadows`, which keeps several averages of the
  *same* live trajectory and tests each at the end, so their differences are the averaging alone:
  `lightning_ema` (today's: torch's AveragedModel with use_buffers=True, i.e. Lightning's
  EMAWeightAveraging, decay 0.99 per step), `ema_copy` (parameters averaged, BatchNorm buffers copied
  from the live net), `ema_recompute` (parameters averaged, BatchNorm statistics recomputed on 10
  training batches with torch.optim.swa_utils.update_bn), `ema_warmup_copy` (decay warmed up as
  min(d, (1 + n) / (10 + n)), buffers copied), `ema_late_copy` (updates start at 50% of the steps).

Every model is scored on the full 10k test set without TTA (and the live model of each run also with
the preset's TTA, by the run's own test). Output: `<out>/ema_variants.{json,md}`.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torch.optim.swa_utils import AveragedModel, get_ema_avg_fn, update_bn

from trickbench.lightning_modules.ops.averaging import ema_decay, float_state, lerp_into
from trickbench.run import record as run_record

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "bench" / "ema_variants"


class Shadows(Callback):
    """Averages of the live weights, updated after every optimizer step and scored at the end of fit.

    Args:
        decay: per-step decay of every variant (the old preset's 0.99).
        out: JSON file for the scores.
        update_bn_batches: training batches for `ema_recompute`.
    """

    def __init__(self, decay: float = 0.99, out: str = "shadows.json", update_bn_batches: int = 10) -> None:
        self.decay, self.out, self.update_bn_batches = decay, out, update_bn_batches
        self.updates = 0

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        net = pl_module.net
        self.lightning = AveragedModel(net, avg_fn=get_ema_avg_fn(self.decay), use_buffers=True)
        self.copies = {
            name: copy.deepcopy(net).requires_grad_(False)
            for name in ("ema_copy", "ema_recompute", "ema_warmup_copy", "ema_late_copy")
        }

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        net = pl_module.net
        self.lightning.update_parameters(net)
        live = float_state(net, buffers=False)
        for name, avg in self.copies.items():
            if name == "ema_late_copy" and trainer.global_step < trainer.estimated_stepping_batches // 2:
                lerp_into(float_state(avg, buffers=False), live, 0.0)  # a copy until half-way
                continue
            lerp_into(
                float_state(avg, buffers=False), live, ema_decay(self.updates, self.decay, name == "ema_warmup_copy")
            )
        self.updates += 1

    @torch.no_grad()
    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        dm, net = trainer.datamodule, pl_module.net
        device = next(net.parameters()).device
        for name, avg in self.copies.items():
            if name == "ema_recompute":
                batches = (
                    dm.eval_transform(x.to(device))
                    for x, _ in itertools.islice(dm.train_dataloader(), self.update_bn_batches)
                )
                update_bn(batches, avg)
            else:
                for a, b in zip(avg.buffers(), net.buffers()):
                    a.copy_(b)
        models = {"live": net, "lightning_ema": self.lightning.module, **self.copies}
        x, y = dm.splits["test"]
        scores = {}
        for name, model in models.items():
            was = model.training
            model.eval()
            correct = sum(
                int((model(dm.eval_transform(xb.to(device))).argmax(1) == yb.to(device)).sum())
                for xb, yb in zip(x.split(2000), y.split(2000))
            )
            model.train(was)
            scores[name] = correct / len(y)
        Path(self.out).write_text(json.dumps({"test_acc_no_tta": scores, "steps": trainer.global_step}) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data_dir", required=True)
    ap.add_argument("--accept_nonoriginal", action="store_true")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", default="/tmp/ema_variants")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--extra", default="", help="extra arguments for both fits (smoke tests)")
    args = ap.parse_args()
    from benchmarks.common import refuse_existing

    refuse_existing(args.out, "ema_variants")

    from benchmarks.common import save
    from trickbench.run.run_dir import provenance

    started_with = provenance()  # the code as it was when the runs started (the tree may change while they run)

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "WANDB_MODE": "disabled", "PYTHONPATH": str(REPO)}
    base = [
        sys.executable,
        "-m",
        "trickbench",
        "fit",
        "--config",
        str(REPO / "configs/cifar10_fast.yaml"),
        "--data.init_args.data_dir",
        args.data_dir,
        "--trainer.max_epochs",
        str(args.epochs),
        "--trainer.max_steps",
        "-1",
        "--overwrite",
        "true",
        *([] if torch.cuda.is_available() else ["--trainer.precision", "32-true"]),
        *(["--data.init_args.accept_nonoriginal", "true"] if args.accept_nonoriginal else []),
        *shlex.split(args.extra),
    ]
    shadows_json = work / "shadows.json"
    # The preset with its Lookahead callback replaced by Shadows (everything else as shipped).
    import yaml

    preset = yaml.safe_load((REPO / "configs/cifar10_fast.yaml").read_text())
    callbacks = preset["trainer"]["callbacks"]
    swapped = [c for c in callbacks if c["class_path"] != "trickbench.callbacks.Lookahead"]
    if len(swapped) != len(callbacks) - 1:
        raise SystemExit(
            "configs/cifar10_fast.yaml no longer has exactly one callbacks.Lookahead; update this benchmark"
        )
    preset["trainer"]["callbacks"] = swapped + [
        {"class_path": "benchmarks.ema_variants.Shadows", "init_args": {"out": str(shadows_json)}}
    ]
    (work / "shadows.yaml").write_text(yaml.safe_dump(preset, sort_keys=False))
    with_shadows = [str(work / "shadows.yaml") if a == str(REPO / "configs/cifar10_fast.yaml") else a for a in base]
    cmds = {
        "lookahead": base + ["--run_dir", str(work / "lookahead")],
        "shadows": with_shadows + ["--run_dir", str(work / "shadows")],
    }
    started = time.perf_counter()
    procs = {
        name: subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=(work / f"{name}.log").open("w"), stderr=subprocess.STDOUT
        )
        for name, cmd in cmds.items()
    }
    for name, proc in procs.items():
        if proc.wait() != 0:
            raise SystemExit(f"{name} failed (exit {proc.returncode}); see {work / f'{name}.log'}")
    records = {name: run_record.load(work / name).to_dict() for name in cmds}
    # The Lookahead run's final weights without TTA: a `test` of its checkpoint (writes into lookahead/eval/).
    test_cmd = [
        sys.executable,
        "-m",
        "trickbench",
        "test",
        "--config",
        str(work / "lookahead" / "config.yaml"),
        "--run_dir",
        str(work / "lookahead"),
        "--ckpt_path",
        "last",
        "--model.init_args.tta_flip",
        "false",
        "--model.init_args.tta_translate",
        "false",
    ]
    subprocess.run(
        test_cmd,
        cwd=REPO,
        env=env,
        check=True,
        stdout=(work / "lookahead_test.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    evals = sorted((work / "lookahead" / "eval").glob(f"test-*/{run_record.FILENAME}"))
    lookahead_no_tta = run_record.load(evals[-1].parent).metric("test/acc")
    shadows = json.loads(shadows_json.read_text())
    payload = {
        "provenance": started_with,
        "epochs": args.epochs,
        "threads_per_run": args.threads,
        "wall_s": time.perf_counter() - started,
        "commands": {k: shlex.join(v) for k, v in cmds.items()},
        "command": "python -m benchmarks.ema_variants " + shlex.join(sys.argv[1:]),
        "lookahead_final_test_acc_tta": records["lookahead"]["test"]["acc"],
        "shadows_live_test_acc_tta": records["shadows"]["test"]["acc"],
        "shadows_test_acc_no_tta": shadows["test_acc_no_tta"],
        "steps": shadows["steps"],
    }
    payload["lookahead_final_test_acc_no_tta"] = lookahead_no_tta
    # And its live weights (the last step's, before they were replaced by the average), with the preset's TTA.
    from benchmarks.at_length import live_vs_final

    payload["lookahead_final_vs_live_tta"] = live_vs_final(work / "lookahead", args.data_dir)
    save(args.out, "ema_variants", payload, report(payload))


def report(p: dict[str, Any]) -> str:
    from benchmarks.common import provenance_lines

    s = p["shadows_test_acc_no_tta"]
    rows = ["| weights | test acc, no TTA | vs live |", "|---|---|---|"]
    for name, acc in s.items():
        rows.append(f"| {name} | {100 * acc:.2f}% | {100 * (acc - s['live']):+.2f} |")
    prov = p["provenance"]
    return (
        f"# Weight averaging on the fast preset, {p['epochs']}-epoch schedule ({p['steps']} steps)\n\n"
        "Averages of one live trajectory (the preset without Lookahead):\n\n" + "\n".join(rows) + "\n\n"
        f"- that run's live weights with the preset's TTA: {100 * p['shadows_live_test_acc_tta']:.2f}%\n"
        f"- the preset with Lookahead (a separate run, same seed), final weights with TTA: "
        f"{100 * p['lookahead_final_test_acc_tta']:.2f}% (no TTA: {100 * p['lookahead_final_test_acc_no_tta']:.2f}%)\n"
        f"- that run's live weights (the last step's, before the final copy), with TTA: "
        f"{100 * p['lookahead_final_vs_live_tta']['live']:.2f}% (final, same evaluation: "
        f"{100 * p['lookahead_final_vs_live_tta']['final']:.2f}%)\n"
        f"- machine: {prov['cpu']}, {p['threads_per_run']} torch thread(s) per run, both runs at once; "
        f"wall {p['wall_s'] / 60:.0f} min\n" + provenance_lines(prov) + f"- command: `{p['command']}`\n"
    )


if __name__ == "__main__":
    main()
