"""Helpers for the ``/``-separated metric names used in training logs.

Single-task names are ``split/metric`` (``"valid/accuracy"``); the multitask
trainers use ``task/payload/label_set/metric``.
"""

from typing import Tuple


def split_full_metric(full_metric: str) -> Tuple[str, ...]:
    """Split a full metric name into its parts.

    Returns:
        ``(split, metric)`` for a two-part name and ``(task, payload, label_set,
        metric)`` for a four-part name.

    Raises:
        ValueError: for any other number of parts.
    """
    parts = str(full_metric).split("/")
    if len(parts) in (2, 4):
        return tuple(parts)
    raise ValueError(
        f"Metric names must have the form 'split/metric' or "
        f"'task/payload/label_set/metric'; found {full_metric!r}."
    )
