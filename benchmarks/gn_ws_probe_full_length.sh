#!/usr/bin/env bash
# The gn_ws arm with the norm parameters' lr at 1x, at the table's full length (6 epochs), seeds 0 and 1 side by
# side at one thread each. Usage: bash full_length.sh DATA_DIR OUT_DIR
set -euo pipefail
data=$1 out=$2
cd "$(dirname "$0")/.."
net=model.init_args.net.init_args
for seed in 0 1; do
  WANDB_MODE=disabled OMP_NUM_THREADS=1 trickbench fit --config configs/cifar10_cpu_fast.yaml \
    --config configs/tricks/gn_ws.yaml --model.init_args.norm_lr_scale=1.0 \
    --data.init_args.data_dir "$data" --data.init_args.accept_nonoriginal true \
    --seed_everything "$seed" --data.init_args.seed "$seed" --run_dir "$out/seed$seed" > "$out/seed$seed.log" 2>&1 &
done
wait
for seed in 0 1; do
  python -c "import json,sys; print('seed $seed test/acc', json.load(open(sys.argv[1]))['test']['acc'])" "$out/seed$seed/metrics.json"
done
