#!/usr/bin/env bash
# Which part of the gn_ws arm stalls under the cifar10_cpu_fast recipe? One epoch (the recipe's schedule
# compressed to 97 steps) of each variant, seed 0, two runs at a time at one thread each; the first-epoch train
# accuracy and the test accuracy go to results.md. Usage: bash run.sh DATA_DIR OUT_DIR
set -euo pipefail
data=$1 out=$2
cd "$(dirname "$0")/.."
net=model.init_args.net.init_args
declare -A variants=(
  [bn]=""                                                      # the baseline recipe
  [gn_ws]="--$net.norm=gn --$net.weight_std=true"              # the gn_ws arm
  [gn]="--$net.norm=gn"                                        # GroupNorm alone
  [bn_ws]="--$net.weight_std=true"                             # weight standardization alone
  [gn_ws_train_scale]="--$net.norm=gn --$net.weight_std=true --$net.train_norm_weight=true"
  [gn_ws_norm_lr_1]="--$net.norm=gn --$net.weight_std=true --model.init_args.norm_lr_scale=1.0"
)
run() {
  WANDB_MODE=disabled OMP_NUM_THREADS=1 trickbench fit --config configs/cifar10_cpu_fast.yaml \
    --data.init_args.data_dir "$data" --data.init_args.accept_nonoriginal true --trainer.max_epochs 1 \
    --trainer.logger null --run_dir "$out/$1" ${variants[$1]} > "$out/$1.log" 2>&1
}
mkdir -p "$out"
names=(bn gn_ws gn bn_ws gn_ws_train_scale gn_ws_norm_lr_1)
for ((i = 0; i < ${#names[@]}; i += 2)); do
  run "${names[i]}" & run "${names[i + 1]}" & wait
done
{
  echo "| variant | overrides | train/acc, epoch 1 (%) | test/acc (%) |"
  echo "|---|---|--:|--:|"
  for n in "${names[@]}"; do
    python - "$out/$n" "$n" "${variants[$n]}" <<'PY'
import csv, json, sys
run, name, extra = sys.argv[1], sys.argv[2], sys.argv[3]
rows = [r for r in csv.DictReader(open(f"{run}/csv/metrics.csv")) if r.get("train/acc")]
test = json.load(open(f"{run}/metrics.json"))["test"]["acc"]
print(f"| {name} | `{extra or '(none)'}` | {100 * float(rows[-1]['train/acc']):.2f} | {100 * test:.2f} |")
PY
  done
} > "$out/results.md"
cat "$out/results.md"
