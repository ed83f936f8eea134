"""The quickstart notebook runs top to bottom (tiny caps, generated data): every cell, no errors, outputs stripped."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "quickstart.ipynb"


def test_committed_notebook_has_no_outputs():
    nb = json.loads(NOTEBOOK.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert len(code) >= 8 and all(not c["outputs"] and c["execution_count"] is None for c in code)


@pytest.mark.slow
def test_quickstart_notebook_executes_every_cell(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("TRICKBENCH_NOTEBOOK_SCALE", "tiny")
    monkeypatch.setenv("TRICKBENCH_DATA", str(tmp_path / "no_local_copy"))  # forces the generated-data path
    monkeypatch.setenv("TRICKBENCH_NOTEBOOK_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    ).execute()
    outputs = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "generated (no local copy)" in outputs
    assert "LightningCLI's args parameter" not in outputs  # main(args=[...]) in a kernel: no argv warning
    for name in ("regression", "mnist_cnn", "mnist_vae", "cifar10_fast_cutmix"):
        record = json.loads((tmp_path / "runs" / name / "metrics.json").read_text())
        assert record["status"] == "completed", name
    report = (tmp_path / "runs" / "mini_report" / "report.md").read_text()
    assert "label_smoothing" in report and "baseline" in report
    assert os.path.isfile(tmp_path / "runs" / "mnist_vae" / "samples" / "recon.png") or list(
        (tmp_path / "runs" / "mnist_vae" / "samples").glob("*.png")
    )
