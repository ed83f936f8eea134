"""The hand-written PyTorch loop that `benchmarks.time_to_acc` races the template against.

Plain torch + numpy + PyYAML and the project's own nets (`trickbench.lightning_modules.nets` imports without Lightning),
so its process start-up is what a researcher's own script would pay. It reads the *same* YAML recipe as the template run
(net, epochs, batch size, Adam lr, OneCycleLR max_lr, label smoothing, val hold-out, seed) and
does the same work: train on the seeded 55k split, evaluate the 5k hold-out after every epoch,
evaluate the 10k test set at the end. Prints one JSON line: {"test_acc": ..., "train_seconds": ...}.

    python -m benchmarks.plain_mnist --config configs/mnist_mlp.yaml --data_dir DATA
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from trickbench.lightning_modules.nets import MLP, SmallCNN

MEAN, STD = 0.1307, 0.3081


NETS = {"MLP": MLP, "SmallCNN": SmallCNN}  # the same nets the template trains (no Lightning behind them)


def read_idx(path: Path) -> torch.Tensor:
    buf = path.read_bytes()
    ndim = buf[3]  # idx magic: 0x0000 08 <ndim>
    shape = np.frombuffer(buf, ">u4", ndim, 4).astype(int)
    return torch.from_numpy(np.frombuffer(buf, np.uint8, offset=4 + 4 * ndim).reshape(shape).copy())


def load(data_dir: str, val_size: int, seed: int):
    raw = Path(data_dir) / "MNIST" / "raw"
    x, y = read_idx(raw / "train-images-idx3-ubyte"), read_idx(raw / "train-labels-idx1-ubyte").long()
    xt, yt = read_idx(raw / "t10k-images-idx3-ubyte"), read_idx(raw / "t10k-labels-idx1-ubyte").long()
    norm = lambda a: ((a.float() / 255 - MEAN) / STD).unsqueeze(1)  # noqa: E731  (N, 1, 28, 28)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    tr, va = perm[val_size:], perm[:val_size]
    return (norm(x[tr]), y[tr]), (norm(x[va]), y[va]), (norm(xt), yt)


@torch.no_grad()
def accuracy(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 1024) -> float:
    net.eval()
    correct = sum((net(x[i : i + batch]).argmax(1) == y[i : i + batch]).sum().item() for i in range(0, len(x), batch))
    net.train()
    return correct / len(x)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--data_dir", default="data")
    ap.add_argument("--max_epochs", type=int, default=None, help="override the recipe (tests)")
    ap.add_argument("--val_size", type=int, default=None, help="override the recipe (tests)")
    ap.add_argument("--limit_train", type=int, default=0, help="use only N training images (tests)")
    args = ap.parse_args(argv)
    cfg = yaml.safe_load(Path(args.config).read_text())
    model, data = cfg["model"]["init_args"], cfg["data"].get("init_args", {})
    seed = int(cfg.get("seed_everything", 0))
    torch.manual_seed(seed)
    epochs = args.max_epochs or int(cfg["trainer"]["max_epochs"])
    batch = int(data.get("batch_size", 128))
    train, val, test = load(
        args.data_dir,
        args.val_size if args.val_size is not None else int(data.get("val_size", 5000)),
        int(data.get("seed", 0)),
    )
    if args.limit_train:
        train = (train[0][: args.limit_train], train[1][: args.limit_train])

    net = NETS[model["net"]["class_path"].rsplit(".", 1)[1]](**model["net"].get("init_args", {}))
    opt = torch.optim.Adam(net.parameters(), **model["optimizer"].get("init_args", {}))
    steps = len(train[0]) // batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, total_steps=epochs * steps, **model["lr_scheduler"]["init_args"])
    smoothing = float(model.get("label_smoothing", 0.0))

    t0 = time.perf_counter()
    for _epoch in range(epochs):
        order = torch.randperm(len(train[0]))
        for i in range(steps):
            idx = order[i * batch : (i + 1) * batch]
            loss = F.cross_entropy(net(train[0][idx]), train[1][idx], label_smoothing=smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        val_acc = accuracy(net, *val)
    out = {"val_acc": val_acc, "test_acc": accuracy(net, *test), "train_seconds": time.perf_counter() - t0}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
