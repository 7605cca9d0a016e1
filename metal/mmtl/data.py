"""Datasets and loaders of dict-shaped examples for multi-task models.

Each example is ``(x_dict, y_dict)``: input fields by name and label sets by
name. Two flavours, differing in label conventions and collation:

* Operation API: ``DictDataset(name, split, X_dict, Y_dict)`` with
  ``DictDataLoader`` / ``collate_dicts``. ``Y_dict`` keys are task names;
  labels are ``0..k-1`` with ``-1`` = no label (or ``[n, k]`` probabilities);
  scalar labels collate to ``[B]``, other tensors keep their shape
  (``[B, ...]``) unless ragged (flattened and padded with 0).
* MeTaL v0.5: ``MmtlDataset(X, Y)`` with ``MmtlDataLoader`` /
  ``mmtl_collate_fn`` (used by ``Payload``). Labels are ``1..k`` with ``0`` =
  no label; every label set and tensor field collates to 2-D ``[B, ?]``
  (``[B, 1]`` for one label per example; ragged rows right-padded with 0).
"""

from typing import Any, Callable, Dict, List, Mapping, Tuple

import torch
from torch.utils.data import DataLoader, Dataset

from metal.mmtl.utils import list_to_tensor
from metal.utils import padded_tensor

XDict = Dict[str, Any]
YDict = Dict[str, torch.Tensor]
Batch = Tuple[XDict, YDict]

DEFAULT_INPUT_DATA_KEY = "input_data"
DEFAULT_DATASET_NAME = "SnorkelDataset"
DEFAULT_TASK_NAME = "task"

__all__ = [
    "DEFAULT_DATASET_NAME",
    "DEFAULT_INPUT_DATA_KEY",
    "DEFAULT_TASK_NAME",
    "DictDataLoader",
    "DictDataset",
    "MmtlDataLoader",
    "MmtlDataset",
    "collate_dicts",
    "mmtl_collate_fn",
]


def _check_fields(owner: str, X_dict: Mapping, Y_dict: Mapping) -> None:
    """Label sets must be tensors and every field/label set equally long."""
    lengths = {}
    for key, labels in Y_dict.items():
        if not isinstance(labels, torch.Tensor):
            raise ValueError(
                f"{owner}: label set {key!r} must be a torch.Tensor; found "
                f"{type(labels).__name__}."
            )
        lengths[f"Y_dict[{key!r}]"] = int(labels.shape[0]) if labels.dim() else 1
    for key, field in X_dict.items():
        try:
            lengths[f"X_dict[{key!r}]"] = len(field)
        except TypeError:
            raise ValueError(
                f"{owner}: field {key!r} must be indexable with a length (a "
                f"tensor, array or list); found {type(field).__name__}."
            ) from None
    if len(set(lengths.values())) > 1:
        raise ValueError(
            f"{owner}: every field and label set must hold one entry per example; "
            f"found lengths {lengths}."
        )


class _FieldsDataset(Dataset):
    """Examples stored as ``X_dict`` fields and ``Y_dict`` label sets; item
    ``i`` is ``({field: X[i]}, {label set: Y[i]})``."""

    X_dict: XDict
    Y_dict: YDict

    def __getitem__(self, index: int) -> Tuple[XDict, YDict]:
        x_dict = {key: field[index] for key, field in self.X_dict.items()}
        y_dict = {key: labels[index] for key, labels in self.Y_dict.items()}
        return x_dict, y_dict


# --------------------------------------------------------- Operation API
class DictDataset(_FieldsDataset):
    """Named examples of one split: ``X_dict`` fields and ``Y_dict`` labels.

    Args:
        name: dataset name (the second part of metric names).
        split: ``"train"``, ``"valid"``, ``"test"``, ...
        X_dict: ``{field: tensor/array/list of length n}``.
        Y_dict: ``{task name: tensor [n] or [n, ...]}``; classes ``0..k-1``,
            ``-1`` = no label; ``[n, k]`` float rows are probabilistic labels.

    Raises:
        ValueError: if a label set is not a tensor or lengths differ.
    """

    def __init__(self, name: str, split: str, X_dict: XDict, Y_dict: YDict) -> None:
        _check_fields(f"DictDataset {name!r}", X_dict, Y_dict)
        self.name = name
        self.split = split
        self.X_dict = X_dict
        self.Y_dict = Y_dict

    def __len__(self) -> int:
        for labels in self.Y_dict.values():
            return len(labels)
        return 0

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name}, X_keys={list(self.X_dict)}, "
            f"Y_keys={list(self.Y_dict)})"
        )

    @classmethod
    def from_tensors(
        cls,
        X_tensor: torch.Tensor,
        Y_tensor: torch.Tensor,
        split: str,
        input_data_key: str = DEFAULT_INPUT_DATA_KEY,
        task_name: str = DEFAULT_TASK_NAME,
        dataset_name: str = DEFAULT_DATASET_NAME,
    ) -> "DictDataset":
        """A dataset with one field ``input_data_key`` and one label set
        ``task_name``."""
        return cls(
            name=dataset_name,
            split=split,
            X_dict={input_data_key: X_tensor},
            Y_dict={task_name: Y_tensor},
        )


def collate_dicts(batch: List[Batch]) -> Batch:
    """``(X_batch, Y_batch)`` from a list of ``(x_dict, y_dict)`` examples.

    Tensor fields and all label sets are combined by ``list_to_tensor``
    (scalars → ``[B]``); other fields stay Python lists.
    """
    return _collate(batch, list_to_tensor)


def _collate(batch: List[Batch], combine: Callable[[list], torch.Tensor]) -> Batch:
    """Gather each field / label set of ``(x_dict, y_dict)`` examples into a
    list; ``combine`` turns tensor fields and all label sets into one tensor."""
    X_batch: Dict[str, list] = {}
    Y_batch: Dict[str, list] = {}
    for x_dict, y_dict in batch:
        for key, value in x_dict.items():
            X_batch.setdefault(key, []).append(value)
        for key, value in y_dict.items():
            Y_batch.setdefault(key, []).append(value)
    for key, values in X_batch.items():
        if isinstance(values[0], torch.Tensor):
            X_batch[key] = combine(values)
    for key, values in Y_batch.items():
        Y_batch[key] = combine(values)
    return X_batch, Y_batch


class DictDataLoader(DataLoader):
    """A ``DataLoader`` over a ``DictDataset`` that collates with
    ``collate_dicts``; other kwargs (``batch_size``, ``shuffle``, ...) go to
    ``torch.utils.data.DataLoader``."""

    def __init__(
        self, dataset: DictDataset, collate_fn=collate_dicts, **kwargs: Any
    ) -> None:
        if not isinstance(dataset, DictDataset):
            raise ValueError(
                "DictDataLoader needs a DictDataset; found "
                f"{type(dataset).__name__}."
            )
        super().__init__(dataset, collate_fn=collate_fn, **kwargs)


# ------------------------------------------------------------- MeTaL v0.5
class MmtlDataset(_FieldsDataset):
    """Examples for a ``Payload``: input fields and label sets (v0.5 layout).

    Args:
        X: ``{field: indexable of length n}`` (tensors, lists such as uids, ...)
            or a single indexable, stored as ``{"data": X}``.
        Y: ``{label set: tensor}`` or a single tensor, stored as
            ``{"labels": Y}``. Labels are ``1..k``, ``0`` = no label.

    Attributes ``X_dict`` and ``Y_dict``; the length is that of the first field.

    Raises:
        ValueError: if a label set is not a tensor or lengths differ.
    """

    def __init__(self, X: Any, Y: Any) -> None:
        X_dict = dict(X) if isinstance(X, Mapping) else {"data": X}
        Y_dict = dict(Y) if isinstance(Y, Mapping) else {"labels": Y}
        if not X_dict:
            raise ValueError("MmtlDataset needs at least one input field in X.")
        _check_fields("MmtlDataset", X_dict, Y_dict)
        self.X_dict = X_dict
        self.Y_dict = Y_dict

    def __len__(self) -> int:
        return len(next(iter(self.X_dict.values())))


def _rows_tensor(items: List[torch.Tensor]) -> torch.Tensor:
    """``[B, ?]`` from per-example tensors (v0.5 collation)."""
    batch_size = len(items)
    if all(item.dim() == 0 for item in items):
        return torch.stack(items).reshape(batch_size, -1)
    if all(item.dim() > 0 and item.shape[0] == items[0].shape[0] for item in items):
        return torch.stack(items).reshape(batch_size, -1)
    return padded_tensor([item.reshape(-1) for item in items])


def mmtl_collate_fn(batch_list: List[Batch]) -> Batch:
    """``(X_batch, Y_batch)`` from ``(x_dict, y_dict)`` examples, v0.5 style:
    tensor fields and label sets become ``[B, ?]`` (0-dim items → ``[B, 1]``;
    equal leading dims stacked and flattened; ragged 1-D rows right-padded
    with 0); non-tensor fields stay lists."""
    return _collate(batch_list, _rows_tensor)


class MmtlDataLoader(DataLoader):
    """A ``DataLoader`` over an ``MmtlDataset`` collating with
    ``mmtl_collate_fn``; other kwargs go to ``torch.utils.data.DataLoader``."""

    def __init__(self, dataset: MmtlDataset, collate_fn=mmtl_collate_fn, **kwargs):
        if not isinstance(dataset, MmtlDataset):
            raise ValueError(
                f"MmtlDataLoader needs an MmtlDataset; found {type(dataset).__name__}."
            )
        super().__init__(dataset, collate_fn=collate_fn, **kwargs)
