#!/usr/bin/env bash
# The GPU trick table in one go, on a machine with one GPU and no network: installs trickbench from this clone,
# builds CIFAR-10, runs configs/ablations/cifar10_gpu_fast.yaml (12 arms x 10 seeds + a KD teacher, 40 runs per
# process) under a time cap, then its report; everything lands in $OUT (gpu_trick_table.tgz, session.log).
#
#   bash benchmarks/gpu_session.sh [CAP_SECONDS]     # on the GPU machine, from the clone's root (default cap 420 s)
#   bash benchmarks/gpu_session.sh --rehearse        # the same steps on a CPU at tiny scale (generated data, 2 seeds,
#                                                    # a few steps per run); tests/test_bench_scripts.py runs it
#
# What the GPU machine needs beside the clone (it has torch, Lightning, torchvision, matplotlib, rich, pyyaml):
#   .devwheels/  wheels of what it lacks, for its Python: jsonargparse, docstring_parser, typeshed_client
#                (pip download --no-deps --python-version 3.12 --only-binary=:all: -d .devwheels NAME==VERSION)
#   .devdata/    cifar-10-python.tar.gz (or a folder of the images and its build command, see docs/running.md)
# W&B is off (WANDB_MODE=disabled) and gymnasium is not needed. A run still going at the cap is stopped with
# SIGTERM: it checkpoints and records `interrupted`, and the same command on the next session resumes it.
set -uo pipefail
REHEARSE=0
if [[ "${1:-}" == "--rehearse" ]]; then REHEARSE=1; shift; fi
CAP=${1:-420}
REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$(mktemp -d)}
WORK=$(mktemp -d)            # the working directory: never the clone's root, whose trickbench/ folder would
SITE="$WORK/site"            # shadow the installed package (its subpackages live beside it in the clone)
mkdir -p "$OUT" "$SITE"
exec > >(tee "$OUT/session.log") 2>&1
export PYTHONUNBUFFERED=1 WANDB_MODE=disabled
PY=${PYTHON:-python3}
ABLATION=configs/ablations/cifar10_gpu_fast.yaml
SETS=()

if ((REHEARSE)); then
  # what the GPU machine lacks is hidden here too, so an import of it fails as it would there
  for missing in gymnasium wandb; do
    mkdir -p "$WORK/hide/$missing"
    echo "raise ImportError('$missing is not installed on the GPU machine')" > "$WORK/hide/$missing/__init__.py"
  done
fi

# 1. install: this clone as a package (a wheel built without network, from a copy so the clone gets no build/),
#    plus the carried wheels
mkdir -p "$WORK/src"
tar -C "$REPO" --exclude=./.git --exclude=./.venv --exclude=./build --exclude=./runs --exclude=./.devdata \
  --exclude=./.devwheels -cf - . | tar -C "$WORK/src" -xf - || exit 1
"$PY" -m pip install -q --no-index --no-deps --no-build-isolation --target "$SITE" "$WORK/src" || exit 1
if compgen -G "$REPO/.devwheels/*.whl" > /dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" "$REPO"/.devwheels/*.whl || exit 1
fi
export PYTHONPATH="$SITE"
((REHEARSE)) && export PYTHONPATH="$WORK/hide:$SITE"
cd "$WORK" && ln -s "$REPO/configs" configs       # the ablation file names its configs relative to the clone
"$PY" -c "import torch, lightning, jsonargparse, trickbench; print('torch', torch.__version__, 'lightning', \
lightning.__version__, 'jsonargparse', jsonargparse.__version__, 'trickbench from', trickbench.__file__)" || exit 1
git -C "$REPO" log -1 --format='commit %H' 2>/dev/null || true

# 2. data, and (rehearsal) a tiny version of the ablation
if ((REHEARSE)); then
  "$PY" -c "from pathlib import Path; from trickbench.datamodules.fake import make_fake_cifar; \
make_fake_cifar(Path('data'), per_batch=64, n_test=64)" || exit 1
  "$PY" - "$REPO/$ABLATION" rehearsal.yaml <<'EOF' || exit 1
import sys, yaml
spec = yaml.safe_load(open(sys.argv[1]))
spec.update(name="cifar10_gpu_fast_rehearsal", seeds=[0, 1])
spec["overrides"] = spec.get("overrides", []) + [
    "--trainer.accelerator=cpu", "--trainer.precision=32-true", "--trainer.benchmark=false", "--trainer.max_steps=2",
    "--data.init_args.batch_size=64", "--data.init_args.eval_batch_size=64", "--data.init_args.val_size=0",
    "--model.init_args.net.init_args.widths=[8, 16, 16]",
]
spec["prerequisites"]["teacher"]["overrides"] = ["--trainer.max_steps=4"]
yaml.safe_dump(spec, open(sys.argv[2], "w"), sort_keys=False)
EOF
  ABLATION=rehearsal.yaml
  SETS=(--set data.init_args.data_dir=data)
else
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  mkdir -p data && tar xzf "$REPO/.devdata/cifar-10-python.tar.gz" -C data || exit 1
  SETS=(--set data.init_args.data_dir=data)
fi
NAME=$("$PY" -c "import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))['name'])" "$ABLATION")

# 3. the sweep under the cap, then where it stands and its report
t0=$(date +%s)
GPUS=(--gpus 1); ((REHEARSE)) && GPUS=(--jobs 1)
timeout --signal=TERM "$CAP" "$PY" -m trickbench ablate "$ABLATION" "${GPUS[@]}" --per-process 40 --runs-dir runs \
  "${SETS[@]}"
echo "sweep exit $? after $(($(date +%s) - t0)) s (cap $CAP s)"
pkill -TERM -f trickbench.scripts.ablation.batch && sleep 10
"$PY" -m trickbench ablate "$ABLATION" --runs-dir runs --status "${SETS[@]}" | tail -n 3
"$PY" -m trickbench report "runs/$NAME" --out "report/$NAME" --power > /dev/null || exit 1
cp runs/"$NAME"/batches/*.log "report/$NAME/" 2> /dev/null
tar czf "$OUT/gpu_trick_table.tgz" -C report . && ls -la "$OUT"
echo "done: $OUT/gpu_trick_table.tgz"
