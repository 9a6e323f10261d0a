"""Shared fixtures: the embedded default model and Fashion-MNIST as numpy arrays."""
import gzip
import os

import numpy as np
import pytest

import mixq

FMNIST_DIR = "/usr/share/datasets/fashion-mnist"


def read_fmnist(split, count):
    """The first `count` images of a split as the default model takes them ([N, 1, 28, 28],
    x / 255, float32) and their labels."""
    prefix = "t10k" if split == "test" else "train"
    images = os.path.join(FMNIST_DIR, f"{prefix}-images-idx3-ubyte.gz")
    if not os.path.exists(images):
        pytest.skip("Fashion-MNIST not installed (apt install dataset-fashion-mnist)")
    with gzip.open(images) as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16)[: count * 784]
    with gzip.open(os.path.join(FMNIST_DIR, f"{prefix}-labels-idx1-ubyte.gz")) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)[:count]
    return (x.reshape(count, 1, 28, 28) / np.float32(255)).astype(np.float32), y.astype(np.int64)


@pytest.fixture(scope="session")
def model_path():
    return mixq.default_model_path()


@pytest.fixture(scope="session")
def model(model_path):
    return mixq.Model.load(model_path)


@pytest.fixture(scope="session")
def train():
    return read_fmnist("train", 256)


@pytest.fixture(scope="session")
def test():
    return read_fmnist("test", 500)
