"""Seeds derived from where a run is (its seed, rank, batch number, ...), shared by the data path and the exact
resume of the global RNGs; below both."""

from __future__ import annotations

import hashlib


def derive_seed(seed: int, *parts: object) -> int:
    """A 63-bit seed unique to (seed, *parts), e.g. (seed, "augment", rank, batch number).

    Randomness derived from where we are, not carried over from the previous batch, needs no
    checkpointing: a resumed run and each DDP rank draw exactly their own stream.
    """
    key = "/".join(map(str, (seed, *parts))).encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") >> 1
