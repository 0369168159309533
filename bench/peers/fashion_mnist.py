"""Fashion-MNIST from the IDX .gz files, as float32 arrays scaled to [0, 1] (as tfjs-ddp's idx source does)."""

import gzip
import os
import struct

import numpy as np


def read_idx(path: str) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise SystemExit(f"{path}: expected an IDX file of unsigned bytes, got magic {data[:4].hex()}")
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(directory: str, split: str, count: int = 0):
    """Images (N, 28, 28) in [0, 1] and labels (N,) int64 of split 'train' or 't10k'; the first `count` when > 0."""
    images = read_idx(os.path.join(directory, f"{split}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(directory, f"{split}-labels-idx1-ubyte.gz"))
    if count > 0:
        images, labels = images[:count], labels[:count]
    return images.astype(np.float32) / 255.0, labels.astype(np.int64)
