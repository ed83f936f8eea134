"""What the MNIST and CIFAR-10 DataModules share: a dataset released as a fixed set of files.

The folder check, the optional torchvision download (only when allowed and a file is absent), the checksum
against the release with the run's data fingerprint, normalisation on or off, and the seeded validation
hold-out. A subclass names its files and how to read them; the rest is here once.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import torch

from trickbench.datamodules.augment import to_float
from trickbench.datamodules.base import TensorDataModule, seeded_split
from trickbench.datamodules.integrity import DatasetError, check_files, fingerprint, require_folder


class ReleasedDataModule(TensorDataModule):
    """Base of the DataModules that read an official release from `data_dir` (see the module docstring).

    Subclasses set `dataset` (the name in messages), `mean_std` (the per-channel statistics used when
    `normalize` is true), `missing_hint` (what to do when a file is absent) and implement `folder`,
    `expected_files` (file name -> md5 of the release) and `download_files`.
    """

    dataset: str = ""
    mean_std: tuple[tuple[float, ...], tuple[float, ...]] = ((), ())
    missing_hint: str = ""

    def __init__(
        self,
        data_dir: str,
        val_size: int,
        download: bool,
        accept_nonoriginal: bool,
        normalize: bool,
        batch_size: int,
        eval_batch_size: int,
        seed: int,
        device_resident: bool,
    ) -> None:
        super().__init__(batch_size, eval_batch_size, seed, device_resident)
        self.data_dir = Path(data_dir)
        self.val_size, self.download, self.accept_nonoriginal = val_size, download, accept_nonoriginal
        self.mean, self.std = self.mean_std if normalize else (None, None)

    @property
    def folder(self) -> Path:
        """The folder under `data_dir` that holds the release's files."""
        raise NotImplementedError

    def expected_files(self) -> dict[str, str]:
        raise NotImplementedError

    def download_files(self, root: Path) -> None:
        """Fetch the release into `root`, laid out as under `data_dir` (torchvision's downloader)."""
        raise NotImplementedError

    def prepare_data(self) -> None:
        """Download only when allowed and a file is absent (Lightning runs this on one process). The download goes
        to a temporary folder first: a failed one (offline, a misspelt `data_dir`) creates no folder."""
        require_folder(self.folder, self.dataset)
        missing = [f for f in self.expected_files() if not (self.folder / f).is_file()]
        if not (self.download and missing):
            return
        with tempfile.TemporaryDirectory(prefix="trickbench-download-") as tmp:
            try:
                self.download_files(Path(tmp))
            except Exception as err:  # network errors come in many types
                reason = " ".join(str(err).split())  # torchvision's message spans lines: one line here
                raise DatasetError(
                    f"{self.dataset}: download into {self.folder} failed ({reason}). Offline? Place the files there "
                    "by hand (see docs/running.md, 'Data')."
                ) from err
            fetched = Path(tmp) / self.folder.relative_to(self.data_dir)
            self.folder.mkdir(parents=True, exist_ok=True)
            for name in missing:  # files already there are kept as they are
                shutil.move(fetched / name, self.folder / name)

    def preflight(self) -> None:
        """What a run needs from the data, checked before it creates anything (`trickbench fit` calls this before
        its run directory exists; `trickbench ablate` once before any run starts): the files present (downloaded
        when allowed) and the release's (or, with `accept_nonoriginal`, a recorded) checksums."""
        self.prepare_data()
        self.verify_files()

    def verify_files(self) -> None:
        """Check every file against the release and record the fingerprint of the copy read."""
        found = check_files(
            self.folder, self.expected_files(), self.accept_nonoriginal, self.dataset, self.missing_hint
        )
        self.fingerprint = fingerprint(found)

    def split_train(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Indices (train, val) of the seeded `val_size` hold-out from the `n` training examples."""
        return seeded_split(n, self.val_size, self.seed)

    def eval_transform(self, x: torch.Tensor) -> torch.Tensor:
        return to_float(x, self.mean, self.std)
