"""A CSV log that survives a resume: `ResumableCSVLogger`.

Lightning's CSV writer deletes an existing metrics.csv when it starts ("Previous log files in this directory
will be deleted when the new ones are saved!"). A run resumed into its own directory (`fit --ckpt_path last`,
a requeued SLURM task, `trickbench.scripts.ablate` after an interruption) therefore lost every row logged before the
interruption: the CPU trick table's cutmix seeds 0 and 1 have no rows before epoch 3. This logger reads the
file before the writer starts and writes it back, so metrics.csv holds the rows of every segment, in order;
the steps a resumed run redoes (those after its last checkpoint) appear again, with the same values under
exact resume. Hand-written: Lightning's writer has no option to keep the file.
"""

from __future__ import annotations

import csv
import io
import warnings
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

from trickbench.compat import LightningCompatError
from trickbench.io import atomic_write_text


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """(header, rows) of a CSV log; ([], []) when there is none."""
    if not path.is_file():
        return [], []
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


class ResumableCSVLogger(CSVLogger):
    """`CSVLogger` writing `<save_dir>/<name>/metrics.csv` that keeps the rows of the run's earlier segments.

    Args:
        save_dir: the run directory
        name: sub-folder of the CSV log
    """

    def __init__(self, save_dir: str, name: str = "csv") -> None:
        super().__init__(save_dir, name=name, version="")
        self._started = False

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._started:
            return super().experiment
        self._started = True
        path = Path(self.log_dir) / ExperimentWriter.NAME_METRICS_FILE
        header, rows = read_rows(path)  # before the writer deletes the file
        with warnings.catch_warnings():  # the deletion it announces is undone below
            warnings.filterwarnings("ignore", message="Experiment logs directory .* exists and is not empty")
            writer = super().experiment
        if rows:
            keys, target = getattr(writer, "metrics_keys", None), getattr(writer, "metrics_file_path", None)
            if not isinstance(keys, list) or target is None or Path(target) != path:
                raise LightningCompatError(
                    "Lightning's CSV ExperimentWriter no longer has `metrics_keys` / "
                    "`metrics_file_path` (trickbench/run/csv_log.py relies on them)"
                )
            buf = io.StringIO()  # rows end in "\r\n", csv's default, as Lightning's writer ends them
            out = csv.DictWriter(buf, fieldnames=header, lineterminator="\r\n")
            out.writeheader()
            out.writerows(rows)
            atomic_write_text(path, buf.getvalue())
            writer.metrics_keys = list(header)  # later saves append, widening the header when keys are new
        return writer
