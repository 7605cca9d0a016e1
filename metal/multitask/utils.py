"""Datasets and label checks for multi-task data.

Label conventions: ``t`` tasks with cardinalities ``K = [K_0, ..., K_{t-1}]``;
task ``s`` has classes ``1..K_s`` and ``0`` means abstain (label matrices) or no
gold label (gold vectors). Per-task labels ``Y`` are a list of ``t`` sequences of
length ``n``; inputs ``X`` are one object indexable by item (shared by all tasks)
or a list of ``t`` such objects (one per task).
"""

from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
import scipy.sparse as sparse
from torch.utils.data import Dataset

from metal._checks import (
    LabelVectorLike,
    check_feasible_rows,
    check_label_vector,
    check_task_list,
)
from metal.multitask.task_graph import TaskGraph
from metal.utils import _length as utils_length

__all__ = ["MultiYDataset", "MultiXYDataset"]


def _length(data: Any) -> int:
    try:
        return utils_length(data)
    except TypeError:
        raise ValueError(
            f"expected a sequence indexable by item; found {type(data).__name__}."
        ) from None


def _check_same_lengths(items: Sequence, name: str, n: Optional[int] = None) -> int:
    """The common length of ``items`` (one per task); ``ValueError`` naming the
    first task whose length differs."""
    lengths = [_length(item) for item in items]
    expected = lengths[0] if n is None else n
    for s, length in enumerate(lengths):
        if length != expected:
            source = "item count" if n is not None else f"{name}[0]"
            raise ValueError(
                f"{name}[{s}] (task {s}) has {length} items but the {source} is "
                f"{expected}; every task must have the same n items."
            )
    return expected


class MultiYDataset(Dataset):
    """Items shared by all tasks with one label per task.

    Args:
        X: inputs indexable by item, length ``n``.
        Y: a list of ``t`` label sequences, each of length ``n`` (hard labels
            ``[n]`` in ``0..K_s`` or probabilistic labels ``[n, K_s]``).

    Item ``i`` is ``(X[i], [Y_0[i], ..., Y_{t-1}[i]])``; the default collation
    turns a batch into ``[X_batch, [Y_0_batch, ..., Y_{t-1}_batch]]``.

    Raises:
        ValueError: if ``Y`` is not a list or a task's labels are not ``n`` long.
    """

    def __init__(self, X: Any, Y: Sequence[Any]) -> None:
        self.Y = check_task_list(Y, "Y")
        self.n = _check_same_lengths(self.Y, "Y", n=_length(X))
        self.X = X

    def __getitem__(self, index: int) -> Tuple[Any, List[Any]]:
        return self.X[index], [Y_s[index] for Y_s in self.Y]

    def __len__(self) -> int:
        return self.n


class MultiXYDataset(Dataset):
    """Per-task inputs with one label per task.

    Args:
        X: a list of per-task inputs, each indexable by item and of length ``n``
            (scipy.sparse inputs are densified).
        Y: a list of ``t`` label sequences, each of length ``n``.

    Item ``i`` is ``([X_0[i], ..., X_{t_x-1}[i]], [Y_0[i], ..., Y_{t-1}[i]])``.

    Raises:
        ValueError: if ``X`` or ``Y`` is not a list or the lengths differ.
    """

    def __init__(self, X: Sequence[Any], Y: Sequence[Any]) -> None:
        X = check_task_list(X, "X")
        self.X = [x.toarray() if sparse.issparse(x) else x for x in X]
        self.Y = check_task_list(Y, "Y")
        self.n = _check_same_lengths(self.X, "X")
        _check_same_lengths(self.Y, "Y", n=self.n)

    def __getitem__(self, index: int) -> Tuple[List[Any], List[Any]]:
        return [X_s[index] for X_s in self.X], [Y_s[index] for Y_s in self.Y]

    def __len__(self) -> int:
        return self.n


def feasible_array(task_graph: TaskGraph) -> np.ndarray:
    """The feasible label vectors of ``task_graph`` as an int64 array ``[k, t]``."""
    return np.array(list(task_graph.feasible_set()), dtype=np.int64).reshape(
        -1, task_graph.t
    )


def constrains_labels(task_graph: TaskGraph) -> bool:
    """Whether ``task_graph`` rules out some label vectors (a plain TaskGraph
    allows every combination, and its feasible set may be huge)."""
    return type(task_graph).is_feasible is not TaskGraph.is_feasible


def stack_task_labels(
    Y: Sequence[LabelVectorLike], name: str, K: Sequence[int], allow_abstain: bool
) -> np.ndarray:
    """Check per-task hard labels and stack them into an int64 array ``[n, t]``.

    Args:
        Y: a list of ``t`` label vectors of equal length ``n``.
        name: the argument's name for error messages.
        K: the cardinalities; task ``s``'s labels must be in ``1..K_s`` (or
            ``0..K_s`` with ``allow_abstain``).

    Raises:
        ValueError: naming the task whose labels are out of range or whose
            length differs.
    """
    Y = check_task_list(Y, name, t=len(K))
    columns = [
        check_label_vector(
            Y_s, f"{name}[{s}] (task {s})", k=K_s, allow_abstain=allow_abstain
        )
        for s, (Y_s, K_s) in enumerate(zip(Y, K))
    ]
    _check_same_lengths(columns, name)
    return np.stack(columns, axis=1)


def check_feasible(labels: np.ndarray, task_graph: TaskGraph, name: str = "Y") -> None:
    """Raise ``ValueError`` if a row of ``labels [n, t]`` is not a feasible label
    vector of ``task_graph``. Zeros (no gold label) match any value.

    The message names the item, its label vector and the task(s) whose labels
    would have to change to reach the closest feasible vector.
    """
    if not constrains_labels(task_graph) or labels.size == 0:
        return
    check_feasible_rows(labels, feasible_array(task_graph), name, repr(task_graph))


def to_feasible_index(
    labels: np.ndarray, task_graph: TaskGraph, name: str = "Y"
) -> np.ndarray:
    """Index (0..k-1) of each row of ``labels [n, t]`` (no zeros) in the
    feasible set of ``task_graph``; ``ValueError`` naming the task for an
    infeasible row."""
    check_feasible(labels, task_graph, name=name)
    F = feasible_array(task_graph)
    # Mixed-radix codes identify vectors uniquely (values are in 0..K_s).
    radix = np.cumprod([1] + [K_s + 1 for K_s in task_graph.K[:-1]])
    feasible_codes = F @ radix
    order = np.argsort(feasible_codes)
    positions = np.searchsorted(feasible_codes[order], labels @ radix)
    return order[positions]
