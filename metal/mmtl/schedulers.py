"""Batch schedulers: the order in which the batches of several data loaders
are visited in one epoch. Every batch of every loader is drawn exactly once
per epoch; a loader's own ``shuffle`` governs the order within it."""

import random
from abc import ABC, abstractmethod
from typing import Any, Iterator, List, Sequence, Tuple

__all__ = [
    "Scheduler",
    "SequentialScheduler",
    "ShuffledScheduler",
    "batch_schedulers",
    "interleave_batches",
    "interleave_indexed",
]

BatchIterator = Iterator[Tuple[Any, Any]]


def interleave_batches(loaders: Sequence[Any], shuffle: bool) -> BatchIterator:
    """Yield ``(batch, loader)``: all of loader 0's batches, then loader 1's,
    ...; or, with ``shuffle``, in an order drawn with Python's ``random``
    (loader ``i`` appears ``len(loader_i)`` times)."""
    for batch, index in interleave_indexed(loaders, shuffle):
        yield batch, loaders[index]


def interleave_indexed(loaders: Sequence[Any], shuffle: bool) -> BatchIterator:
    """As ``interleave_batches``, yielding ``(batch, loader index)``."""
    order: List[int] = [
        i for i, loader in enumerate(loaders) for _ in range(len(loader))
    ]
    if shuffle:
        random.shuffle(order)
    iterators = [iter(loader) for loader in loaders]
    for index in order:
        yield next(iterators[index]), index


class Scheduler(ABC):
    """Decides the order of batches across data loaders."""

    def __init__(self) -> None:
        pass

    @abstractmethod
    def get_batches(self, dataloaders: Sequence[Any]) -> BatchIterator:
        """Yield ``(batch, dataloader)`` pairs covering one epoch."""


class SequentialScheduler(Scheduler):
    """Every batch of the first loader, then of the second, and so on."""

    def get_batches(self, dataloaders: Sequence[Any]) -> BatchIterator:
        return interleave_batches(dataloaders, shuffle=False)


class ShuffledScheduler(Scheduler):
    """Batches of all loaders in random order (Python's ``random``)."""

    def get_batches(self, dataloaders: Sequence[Any]) -> BatchIterator:
        return interleave_batches(dataloaders, shuffle=True)


batch_schedulers = {"sequential": SequentialScheduler, "shuffled": ShuffledScheduler}
