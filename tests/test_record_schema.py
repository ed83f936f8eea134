"""The run record's schema (trickbench/run/record.py) reads and writes every committed metrics.json unchanged:
which keys are absent (a run never tested has no `test`) is part of the record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trickbench.run.record import Record, RunRecordError, Status

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = sorted((ROOT / "results").glob("**/metrics.json"))


def test_every_committed_record_round_trips_exactly():
    assert len(COMMITTED) > 50
    for path in COMMITTED:
        data = json.loads(path.read_text())
        assert Record.from_dict(data).to_dict() == data, path


def test_a_record_that_was_never_tested_has_no_test_key():
    record = Record(status=Status.INTERRUPTED, signal="SIGTERM", val={"acc": 0.5})
    out = record.to_dict()
    assert "test" not in out and out["val"] == {"acc": 0.5} and out["status"] == "interrupted"
    assert Record.from_dict(out).test is None and Record.from_dict({**out, "test": {}}).to_dict()["test"] == {}
    with pytest.raises(KeyError, match="test/acc"):
        record.metric("test/acc")


def test_an_unknown_status_is_one_clear_error():
    with pytest.raises(RunRecordError, match="unknown run status 'finshed'"):
        Record.from_dict({"status": "finshed"})
