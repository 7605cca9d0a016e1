"""``Payload``: one data loader of one split, and which task each of its label
sets trains and evaluates (MeTaL v0.5 API; labels ``1..k``, 0 = no label)."""

from typing import Any, Callable, Dict, Optional

import torch

from metal.mmtl.data import MmtlDataLoader, MmtlDataset

__all__ = ["Payload"]


def _check_label_sets(
    name: str, data_loader: Any, labels_to_tasks: Dict[str, str]
) -> None:
    """``labels_to_tasks`` must be a dict whose label sets the loader's dataset
    holds (when it says which it holds)."""
    if not isinstance(labels_to_tasks, dict):
        raise ValueError(
            "labels_to_tasks must be a dict {label set: task name}; found "
            f"{type(labels_to_tasks).__name__}."
        )
    Y_dict = getattr(data_loader.dataset, "Y_dict", None)
    if Y_dict is None:
        return
    missing = [label for label in labels_to_tasks if label not in Y_dict]
    if missing:
        raise ValueError(
            f"Payload {name!r}: label set(s) {missing} of labels_to_tasks are not in "
            f"the dataset (its label sets: {list(Y_dict)})."
        )


class Payload:
    """A data loader plus ``labels_to_tasks = {label set: task name}``.

    Args:
        name: payload name (second part of metric names, e.g. ``"P0_train"``).
        data_loader: a DataLoader over a dataset with ``X_dict``/``Y_dict``
            (usually an ``MmtlDataLoader``).
        labels_to_tasks: which task head each label set feeds; several label
            sets may map to one task.
        split: ``"train"``, ``"valid"``, ``"test"``, ...

    Raises:
        ValueError: if a label set of ``labels_to_tasks`` is not in the dataset.
    """

    def __init__(
        self, name: str, data_loader: Any, labels_to_tasks: Dict[str, str], split: str
    ) -> None:
        _check_label_sets(name, data_loader, labels_to_tasks)
        self.name = name
        self.data_loader = data_loader
        self.labels_to_tasks = labels_to_tasks
        self.split = split

    def __repr__(self) -> str:
        return (
            f"Payload({self.name}: labels_to_tasks=[{self.labels_to_tasks}], "
            f"split={self.split})"
        )

    @classmethod
    def from_tensors(
        self,
        name: str,
        X: Any,
        Y: Any,
        task_name: str,
        split: str,
        **data_loader_kwargs,
    ) -> "Payload":
        """A payload over ``MmtlDataset(X, Y)`` (field ``"data"``, label set
        ``"labels"`` feeding ``task_name``); kwargs go to ``MmtlDataLoader``."""
        dataset = MmtlDataset(X, Y)
        data_loader = MmtlDataLoader(dataset, **data_loader_kwargs)
        return self(name, data_loader, {"labels": task_name}, split)

    def add_labelset(
        self,
        task_name: str,
        label_name: str,
        label_list: Optional[torch.Tensor] = None,
        label_fn: Optional[Callable] = None,
        verbose: bool = True,
    ) -> None:
        """Add the label set ``label_name`` feeding ``task_name``.

        Exactly one of ``label_list`` (a tensor ``[n, ?]``) or ``label_fn``
        (called on every ``(x_dict, y_dict)`` example; results stacked) is
        given. Labels are ``1..k`` with 0 = no label.

        Raises:
            ValueError: for neither/both sources, a non-tensor ``label_list``,
                labels that are not ``[n, ?]`` or whose ``n`` differs from the
                dataset's.
        """
        if (label_fn is None) == (label_list is None):
            raise ValueError(
                "add_labelset needs exactly one of label_list or label_fn."
            )
        dataset = self.data_loader.dataset
        if label_fn is not None:
            labels = torch.stack([label_fn(example) for example in dataset])
        else:
            if not isinstance(label_list, torch.Tensor):
                raise ValueError(
                    "label_list must be a torch.Tensor of shape [n, ?]; found "
                    f"{type(label_list).__name__}."
                )
            labels = label_list
        if labels.dim() < 2:
            raise ValueError(
                f"Labels for label set {label_name!r} must have shape [n, ?]; found "
                f"{tuple(labels.shape)} (use labels.view(-1, 1))."
            )
        if labels.shape[0] != len(dataset):
            raise ValueError(
                f"Label set {label_name!r} has {labels.shape[0]} rows but payload "
                f"{self.name!r} holds {len(dataset)} examples."
            )
        dataset.Y_dict[label_name] = labels
        self.labels_to_tasks[label_name] = task_name
        if verbose:
            active = int((labels != 0).reshape(labels.shape[0], -1).any(1).sum())
            print(
                f"Added {active}/{labels.shape[0]} labels for task {task_name} to "
                f"payload {self.name}."
            )

    def remove_labelset(self, label_name: str, verbose: bool = True) -> None:
        """Remove the label set ``label_name`` from the dataset and the routing.

        Raises:
            ValueError: if the payload has no such label set.
        """
        if label_name not in self.labels_to_tasks:
            raise ValueError(
                f"Payload {self.name!r} has no label set {label_name!r} (it has "
                f"{list(self.labels_to_tasks)})."
            )
        task_name = self.labels_to_tasks.pop(label_name)
        self.data_loader.dataset.Y_dict.pop(label_name, None)
        if verbose:
            print(
                f"Removed label set {label_name} for task {task_name} from payload "
                f"{self.name}."
            )
