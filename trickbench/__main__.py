"""`python -m trickbench ...` is the `trickbench` command (for a DDP rank or a SLURM task that re-runs it)."""

from trickbench.cli import main

if __name__ == "__main__":
    main(prog="trickbench")
