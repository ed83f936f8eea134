#!/usr/bin/env bash
# One device call (the `device` tool's `run`, < 10 min): the GPU trick table (configs/ablations/cifar10_gpu_fast.yaml,
# 12 arms x 10 seeds + teacher, --per-process 40) under a time cap, then its report; everything comes back as
# $OUT/gpu_trick_table.tgz + $OUT/session.log. The machine is bare and offline, so the call carries:
#   .devwheels/  jsonargparse 4.53.0, docstring_parser, typeshed_client (pip download --python-version 3.12 ...)
#   .devdata/    the CIFAR-10 tarball + build.py (the offline copy this repo is measured on)
# run(command="bash benchmarks/gpu_session.sh 420", carry=[".devwheels", ".devdata"], timeout_s=570)
set -uo pipefail
CAP=${1:-420}                       # seconds for the sweep; the report and transfers need ~1 min more
OUT=${OUT:-/tmp/gpu_session_out}; mkdir -p "$OUT"
exec > >(tee "$OUT/session.log") 2>&1
export PYTHONUNBUFFERED=1 WANDB_MODE=disabled
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .devwheels/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c "import torch, lightning, jsonargparse; print('torch', torch.__version__, 'lightning', lightning.__version__, 'jsonargparse', jsonargparse.__version__)"
python3 .devdata/build.py /tmp/data || exit 1
git log -1 --format='commit %H' 2>/dev/null || true
t0=$(date +%s)
timeout "$CAP" python3 -m scripts.ablate configs/ablations/cifar10_gpu_fast.yaml --gpus 1 --per-process 40 \
  --runs-dir /tmp/runs --set data.init_args.data_dir=/tmp/data
echo "sweep exit $? after $(( $(date +%s) - t0 )) s (cap ${CAP} s)"
pkill -TERM -f scripts.ablation.batch && sleep 10   # a run still going: it checkpoints and records 'interrupted'
python3 -m scripts.ablate configs/ablations/cifar10_gpu_fast.yaml --runs-dir /tmp/runs --status \
  --set data.init_args.data_dir=/tmp/data | tail -n 3
python3 -m scripts.report /tmp/runs/cifar10_gpu_fast --out /tmp/report/cifar10_gpu_fast --power > /dev/null \
  && cp /tmp/runs/cifar10_gpu_fast/batches/*.log /tmp/report/cifar10_gpu_fast/ 2>/dev/null
tar czf "$OUT/gpu_trick_table.tgz" -C /tmp/report . && ls -la "$OUT"
