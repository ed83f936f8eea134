"""Dataset file checks: presence, size, checksum, safe unpickling, and a data fingerprint.

Every failure raises `DatasetError` naming the file and what to do about it.
"""

from __future__ import annotations

import hashlib
import math
import pickle
import sys
from pathlib import Path
from typing import Any

import torch

_NOTED: set[tuple[str, str]] = set()  # (folder, fingerprint) of the non-original copies already noted


class DatasetError(RuntimeError):
    """A dataset file is missing, damaged, or not the expected one."""


def md5sum(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def require_folder(root: Path, dataset: str) -> None:
    """ "missing file ... set download" would mislead when data_dir (or a folder under it) is a regular file."""
    for parent in (root, *root.parents):
        if parent.exists():
            if not parent.is_dir():
                raise DatasetError(
                    f"{dataset}: {parent} is a file, not a directory; data_dir must be the folder that holds "
                    f"the dataset ({root} is expected inside it). Point data_dir at that folder."
                )
            return


def check_files(
    root: Path, expected: dict[str, str], accept_nonoriginal: bool, dataset: str, hint: str
) -> dict[str, str]:
    """Verify every `name -> md5` under `root`; returns the md5 actually found for each file.

    A mismatch is an error unless `accept_nonoriginal`, in which case it is a one-line note and the
    caller records the fingerprint so results stay attributable to the exact copy used.
    """
    require_folder(root, dataset)
    found: dict[str, str] = {}
    mismatched: list[str] = []
    for name, want in expected.items():
        path = root / name
        if not path.is_file():
            raise DatasetError(f"{dataset}: missing file {path}. {hint}")
        found[name] = md5sum(path)
        if found[name] != want:
            if not accept_nonoriginal:
                raise DatasetError(
                    f"{dataset}: checksum mismatch for {path} (md5 {found[name]}, expected {want}). The file is "
                    "damaged or is not the original release. Delete it and re-download, or pass "
                    "accept_nonoriginal=True to use a re-encoded copy on purpose (its fingerprint is then recorded)."
                )
            mismatched.append(name)
    if mismatched:  # one line for the whole copy, once per process, not one per file or per stage
        fp = fingerprint(found)
        if (str(root), fp) not in _NOTED:
            _NOTED.add((str(root), fp))
            print(
                f"note: {dataset}: {len(mismatched)} of {len(expected)} files in {root} are not the original release "
                f"({', '.join(mismatched)}); using them because accept_nonoriginal=True (fingerprint {fp} is "
                "recorded with the run).",
                file=sys.stderr,
                flush=True,
            )
    return found


def fingerprint(found: dict[str, str]) -> str:
    """Short, order-independent id of the exact files a run read."""
    joined = "\n".join(f"{k}:{v}" for k, v in sorted(found.items()))
    return hashlib.sha256(joined.encode()).hexdigest()[:16]


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """CIFAR batches are pickles; only let them rebuild numpy arrays and builtins, never run code."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("builtins", "list"),
        ("builtins", "dict"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a dataset pickle")


def load_pickle(path: Path, dataset: str) -> Any:
    try:
        with open(path, "rb") as fh:
            return _NumpyOnlyUnpickler(fh, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as err:
        raise DatasetError(
            f"{dataset}: cannot read {path} ({type(err).__name__}: {err}). The file is truncated or "
            "corrupt: delete it and re-download (or rebuild it)."
        ) from err


def check_same_length(
    images: torch.Tensor, labels: torch.Tensor, image_path: Path, label_path: Path, dataset: str
) -> None:
    """Images and labels must pair up one to one (a shorter label file would otherwise be a bare IndexError)."""
    if len(images) != len(labels):
        raise DatasetError(
            f"{dataset}: {image_path} holds {len(images)} images but {label_path} holds {len(labels)} labels. "
            "One of the files is truncated or belongs to another split: delete both and re-download."
        )


def tensor_from_buffer(buf: bytes, offset: int, shape: tuple[int, ...], path: Path, dataset: str) -> torch.Tensor:
    """uint8 tensor of `shape` read from `buf[offset:]`, with a clear error if the file is short."""
    count = math.prod(shape)
    if len(buf) < offset + count:
        raise DatasetError(
            f"{dataset}: {path} is truncated ({len(buf)} bytes, expected {offset + count}). Delete it and re-download."
        )
    return torch.frombuffer(bytearray(buf[offset : offset + count]), dtype=torch.uint8).view(shape)
