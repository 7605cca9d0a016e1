"""Metrics of the Operation-based API (``Scorer(metrics=[...])``).

Label convention: gold labels and predictions are ints in ``0..k-1``;
probabilities are ``[n, k]`` with column ``c`` = ``P(Y = c)``. Binary metrics
(precision, recall, f1, fbeta, roc_auc) treat class ``1`` as positive. Rows can
be dropped before scoring with ``filter_dict`` (e.g. abstentions, ``-1``).

MeTaL's own metrics (classes ``1..k``, 0 = abstain) live in ``metal.metrics``;
``Scorer(standard_metrics=[...])`` uses those.
"""

from typing import Callable, Dict, List, NamedTuple, Optional

import numpy as np
import sklearn.metrics as skm

from metal.mmtl.utils import filter_labels, to_int_label_array

__all__ = ["METRICS", "Metric", "metric_score"]


class Metric(NamedTuple):
    """A metric function and the inputs it takes, in order."""

    func: Callable[..., float]
    inputs: List[str] = ["golds", "preds"]


def _coverage(preds: np.ndarray) -> float:
    return float(np.mean(preds != -1)) if len(preds) else 0.0


def _f1(golds: np.ndarray, preds: np.ndarray) -> float:
    if np.any(golds > 1):
        raise ValueError(
            "f1 not supported for multiclass; use f1_micro or f1_macro instead."
        )
    return float(skm.f1_score(golds, preds, zero_division=0))


def _f1_micro(golds: np.ndarray, preds: np.ndarray) -> float:
    return float(skm.f1_score(golds, preds, average="micro", zero_division=0))


def _f1_macro(golds: np.ndarray, preds: np.ndarray) -> float:
    return float(skm.f1_score(golds, preds, average="macro", zero_division=0))


def _fbeta(golds: np.ndarray, preds: np.ndarray, beta: float = 1.0) -> float:
    return float(skm.fbeta_score(golds, preds, beta=beta, zero_division=0))


def _precision(golds: np.ndarray, preds: np.ndarray) -> float:
    return float(skm.precision_score(golds, preds, zero_division=0))


def _recall(golds: np.ndarray, preds: np.ndarray) -> float:
    return float(skm.recall_score(golds, preds, zero_division=0))


def _roc_auc(golds: np.ndarray, probs: np.ndarray) -> float:
    probs = np.asarray(probs)
    if probs.ndim != 2 or probs.shape[1] != 2:
        raise ValueError(
            "Metric roc_auc is currently only defined for binary problems."
        )
    return float(skm.roc_auc_score(golds, probs[:, 1]))


def _accuracy(golds: np.ndarray, preds: np.ndarray) -> float:
    return float(skm.accuracy_score(golds, preds))


def _mcc(golds: np.ndarray, preds: np.ndarray) -> float:
    return float(skm.matthews_corrcoef(golds, preds))


METRICS: Dict[str, Metric] = {
    "accuracy": Metric(_accuracy),
    "coverage": Metric(_coverage, ["preds"]),
    "precision": Metric(_precision),
    "recall": Metric(_recall),
    "f1": Metric(_f1),
    "f1_micro": Metric(_f1_micro),
    "f1_macro": Metric(_f1_macro),
    "fbeta": Metric(_fbeta),
    "matthews_corrcoef": Metric(_mcc),
    "roc_auc": Metric(_roc_auc, ["golds", "probs"]),
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
    func, inputs = METRICS[metric]
    for name in inputs:
        if labels[name] is None:
            raise ValueError(f"Metric {metric} requires access to {name}.")
    return func(*[labels[name] for name in inputs], **kwargs)
