"""Read a W&B offline run file (`offline-run-*/run-<id>.wandb`) without the network or the W&B service.

The file is W&B's record log: a 7-byte header (":W&B", magic, version), then LevelDB-log framed chunks in
32 KiB blocks (4-byte CRC, 2-byte length, 1-byte type: 1 full, 2 first, 3 middle, 4 last), each record a
`wandb_internal_pb2.Record` protobuf. wandb >= 0.19 no longer ships a Python reader for it.
"""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wandb.proto import wandb_internal_pb2 as pb

HEADER, BLOCK, CHUNK = 7, 32768, 7


def records(path: str | Path) -> Iterator[Any]:
    buf = Path(path).read_bytes()
    assert buf[:4] == b":W&B", f"{path} is not a W&B run file"
    pos, pending = HEADER, b""
    while pos + CHUNK <= len(buf):
        if BLOCK - pos % BLOCK < CHUNK:  # a block's tail too short for a chunk header is padding
            pos += BLOCK - pos % BLOCK
            continue
        _crc, length, kind = struct.unpack("<IHB", buf[pos : pos + CHUNK])
        data = buf[pos + CHUNK : pos + CHUNK + length]
        pos += CHUNK + length
        if kind == 0:
            continue
        pending = data if kind in (1, 2) else pending + data
        if kind in (1, 4):
            rec = pb.Record()
            rec.ParseFromString(pending)
            pending = b""
            yield rec


def finished_run_file(folder: str | Path, timeout: float = 60.0) -> Path:
    """The one offline run file under `folder`, once it holds the run's `exit` record. wandb-core writes the
    file from its own process, and `wandb.finish()` can return before the last records reach the disk (seen
    in CI: a file read right after the run held only its first records)."""
    deadline, kinds = time.monotonic() + timeout, []
    while True:
        files = sorted(Path(folder).glob("offline-run-*/run-*.wandb"))
        assert len(files) <= 1, f"more than one offline run under {folder}: {files}"
        if files:
            kinds = [r.WhichOneof("record_type") for r in records(files[0])]
            if "exit" in kinds:
                return files[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"no finished W&B offline run under {folder} after {timeout} s (records: {kinds})")
        time.sleep(0.2)


def run_config(path: str | Path) -> dict[str, Any]:
    """The run's config as W&B stores it: the run record's config, then every config update, in order."""
    cfg: dict[str, Any] = {}
    for rec in records(path):
        kind = rec.WhichOneof("record_type")
        items = rec.config.update if kind == "config" else rec.run.config.update if kind == "run" else []
        for item in items:
            cfg[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
    return cfg


def history(path: str | Path) -> list[dict[str, Any]]:
    """Every logged row (`wandb.log` / a logger's `log_metrics`), in order, as key -> value."""
    rows = []
    for rec in records(path):
        if rec.WhichOneof("record_type") == "history":
            rows.append(
                {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in rec.history.item}
            )
    return rows
