"""Shared fixtures of the mmtl tests (small data, one torch thread)."""

import unittest

import numpy as np
import torch
import torch.nn as nn

from metal.mmtl import DictDataLoader, DictDataset, Operation, Task


class OneThreadTestCase(unittest.TestCase):
    """Runs its tests with one torch thread (tiny models train several times
    faster than with contended intra-op threads) and restores the setting."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._threads = torch.get_num_threads()
        torch.set_num_threads(1)

    @classmethod
    def tearDownClass(cls):
        torch.set_num_threads(cls._threads)
        super().tearDownClass()


def identity_linear(d_in: int = 2, d_out: int = 2) -> nn.Linear:
    """A Linear layer that starts as the identity (zero bias)."""
    layer = nn.Linear(d_in, d_out)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(d_out, d_in))
        layer.bias.zero_()
    return layer


def two_op_task(
    name: str,
    first: str = "linear1",
    second: str = "linear2",
    field: str = "data",
    modules=None,
) -> Task:
    """``_input_[field] -> first -> second`` with identity Linear(2, 2) layers."""
    modules = modules or {first: identity_linear(), second: identity_linear()}
    return Task(
        name=name,
        module_pool=nn.ModuleDict(modules),
        op_sequence=[
            Operation(first, [("_input_", field)]),
            Operation(second, [first]),
        ],
    )


def points_loader(
    task_name: str,
    n: int = 10,
    split: str = "train",
    labels=None,
    batch_size: int = 2,
    shuffle: bool = False,
    name: str = "dataset",
) -> DictDataLoader:
    """``n`` examples ``[i, i]`` labelled 1 (or ``labels``)."""
    X = torch.FloatTensor([[i, i] for i in range(n)])
    Y = torch.ones(n, dtype=torch.long) if labels is None else torch.as_tensor(labels)
    dataset = DictDataset(name, split, {"data": X}, {task_name: Y})
    return DictDataLoader(dataset, batch_size=batch_size, shuffle=shuffle)


def separable_data(n: int, offset: float, seed: int):
    """Points in [-1, 1]^2 labelled ``x0 < x1 + offset`` (0/1)."""
    rng = np.random.RandomState(seed)
    X = rng.uniform(-1, 1, size=(n, 2)).astype(np.float32)
    Y = (X[:, 0] < X[:, 1] + offset).astype(np.int64)
    return torch.from_numpy(X), torch.from_numpy(Y)
