"""Metrics of the Operation-based API (``Scorer(metrics=[...])``).

Label convention: gold labels and predictions are ints in ``0..k-1`` (``-1`` =
abstain); probabilities are ``[n, k]`` with column ``c`` = ``P(Y = c)``. Binary
metrics (precision, recall, f1, fbeta, roc_auc) score class ``1`` and refuse
more than two classes. Rows can be dropped before scoring with
``filter_dict`` (e.g. abstentions, ``-1``).

The metrics themselves are ``metal.metrics``' registry in the ``ZERO_BASED``
convention; ``METRICS`` is a view of it under the Operation API's names.
"""

from typing import Callable, Dict, List, NamedTuple, Optional

import numpy as np

from metal.labels import ZERO_BASED
from metal.metrics import get_metric, metric_inputs
from metal.mmtl.utils import filter_labels, to_int_label_array

__all__ = ["METRICS", "Metric", "metric_score"]


class Metric(NamedTuple):
    """A metric function and the inputs it takes, in order."""

    func: Callable[..., float]
    inputs: List[str] = ["golds", "preds"]


def _positional(name: str) -> Metric:
    """The registry's metric ``name`` as a function of its inputs in order."""
    score = get_metric(name, ZERO_BASED)
    inputs = list(metric_inputs(name))

    def func(*args, **kwargs) -> float:
        return score(**dict(zip(inputs, args)), **kwargs)

    func.__name__ = name
    return Metric(func, inputs)


METRICS: Dict[str, Metric] = {
    name: _positional(name)
    for name in (
        "accuracy",
        "coverage",
        "precision",
        "recall",
        "f1",
        "f1_micro",
        "f1_macro",
        "fbeta",
        "matthews_corrcoef",
        "roc_auc",
    )
}

_LABEL_NAMES = ["golds", "preds", "probs"]


def metric_score(
    golds: Optional[np.ndarray] = None,
    preds: Optional[np.ndarray] = None,
    probs: Optional[np.ndarray] = None,
    metric: str = "accuracy",
    filter_dict: Optional[Dict[str, List[int]]] = None,
    **kwargs,
) -> float:
    """Score with the metric named ``metric`` (a key of ``METRICS``).

    Args:
        golds: gold labels ``[n]`` in ``0..k-1``.
        preds: predicted labels ``[n]`` in ``0..k-1`` (``-1`` = abstain).
        probs: probabilities ``[n, k]``.
        filter_dict: ``{"golds"|"preds"|"probs": [values]}``; rows where any
            named array holds a listed value are dropped first.
        **kwargs: passed to the metric (e.g. ``beta`` for ``fbeta``).
    """
    if metric not in METRICS:
        raise ValueError(
            f"The metric you provided ({metric}) is not currently implemented."
        )
    golds = to_int_label_array(golds) if golds is not None else None
    preds = to_int_label_array(preds) if preds is not None else None
    labels = {"golds": golds, "preds": preds, "probs": probs}
    if filter_dict:
        if set(filter_dict) - set(_LABEL_NAMES):
            raise ValueError(f"filter_dict must only include keys in {_LABEL_NAMES}")
        labels = filter_labels(labels, filter_dict)
    return get_metric(metric, ZERO_BASED)(**labels, **kwargs)
