"""Payload schedulers (MeTaL v0.5): the order of batches across payloads."""

from abc import ABC, abstractmethod
from typing import Any, Dict, Iterator, Sequence, Tuple

from metal.mmtl.schedulers import interleave_indexed

__all__ = ["PayloadScheduler", "ProportionalScheduler"]


class PayloadScheduler(ABC):
    """Yields ``(batch, payload_name, labels_to_tasks)`` over one epoch of the
    payloads of a split."""

    def __init__(self, model, payloads: Sequence[Any], split: str, **kwargs: Any):
        self.model = model
        self.payloads = payloads
        self.split = split

    @abstractmethod
    def get_batches(
        self, payloads: Sequence[Any], split: str, **kwargs: Any
    ) -> Iterator[Tuple[Any, str, Dict[str, str]]]:
        """One pass over every batch of the ``split`` payloads."""


class ProportionalScheduler(PayloadScheduler):
    """Every batch of every payload once per epoch, interleaved at random
    (each payload drawn in proportion to its number of batches)."""

    def get_batches(self, payloads, split, **kwargs):
        chosen = [p for p in payloads if p.split == split]
        loaders = [p.data_loader for p in chosen]
        for batch, index in interleave_indexed(loaders, shuffle=True):
            yield batch, chosen[index].name, chosen[index].labels_to_tasks
