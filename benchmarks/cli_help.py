"""How long the CLI takes to answer `--help`, side by side with a bare Python start and with `fit --help`.

    python -m benchmarks.cli_help [--repeats 5]

Each command runs `--repeats` times in a fresh process (alternating), wall seconds; the table gives the median
and the ratio to `python -c pass` on the same machine. Output: results/bench/cli_help/cli_help.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "bench" / "cli_help"
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "trickbench --help": [sys.executable, "-m", "trickbench", "--help"],
    "trickbench fit --help": [sys.executable, "-m", "trickbench", "fit", "--help"],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=str(OUT), help="a new folder (records are never overwritten)")
    args = ap.parse_args()
    from benchmarks.common import provenance_lines, refuse_existing, save

    refuse_existing(args.out, "cli_help")
    from trickbench.run.run_dir import provenance

    prov = provenance()
    times: dict[str, list[float]] = {k: [] for k in COMMANDS}
    for _ in range(args.repeats):
        for name, cmd in COMMANDS.items():
            t0 = time.perf_counter()
            subprocess.run(cmd, cwd=REPO, check=True, capture_output=True)
            times[name].append(time.perf_counter() - t0)
    base = statistics.median(times["python -c pass"])
    rows = ["| command | median wall s | min | max | / python -c pass |", "|---|---|---|---|---|"]
    for name, ts in times.items():
        rows.append(
            f"| `{name}` | {statistics.median(ts):.3f} | {min(ts):.3f} | {max(ts):.3f} | "
            f"{statistics.median(ts) / base:.1f}x |"
        )
    md = (
        f"# CLI `--help` latency ({args.repeats} fresh processes each, alternating)\n\n" + "\n".join(rows) + "\n\n"
        f"- command: `python -m benchmarks.cli_help {shlex.join(sys.argv[1:])}`\n"
        f"- machine: {prov['cpu']}, {os.cpu_count()} CPUs; load average at the end {os.getloadavg()[0]:.2f} (other "
        "processes may share the machine: compare the ratio column)\n" + provenance_lines(prov)
    )
    save(args.out, "cli_help", {"provenance": prov, "repeats": args.repeats, "seconds": times}, md)


if __name__ == "__main__":
    main()
