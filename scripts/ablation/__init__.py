"""The sweep harness behind `trickbench ablate` (internals; the user-facing commands stay in `scripts/`).

- `plan`: the ablation YAML file -> a `Plan` of (arm, seed) `Job`s with their commands and run directories.
- `slurm`: the sbatch array script for a plan and the `srun` task entry.
- `status`: one line per run of a local or SLURM sweep (`--status`).
- `stats`: paired / Welch intervals, Holm's correction and the seed-count estimate used by `scripts/report.py`.
"""
