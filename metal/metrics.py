"""Metrics: one registry for both label vocabularies, and MeTaL's scorers.

Every metric is defined once, in ``_REGISTRY``, as a function of clean label
arrays and a ``metal.labels.LabelConvention``; ``get_metric(name,
convention)`` is the one lookup every scorer in ``metal`` uses. The two public
tables are views of it:

* ``metal.metrics.METRICS``: MeTaL's scorers (``accuracy_score`` ...), labels
  ``1..k`` with ``0`` = abstain / no gold label (``ONE_BASED``);
* ``metal.mmtl.metrics.METRICS``: the Operation API's, labels ``0..k-1`` with
  ``-1`` = abstain (``ZERO_BASED``).

MeTaL's scorers accept lists, NumPy arrays, torch tensors (integral floats
too) and sparse single-row/column matrices, and can drop positions whose gold
label is in ``ignore_in_gold`` or whose prediction is in ``ignore_in_pred``
before scoring. Unless dropped, an abstaining prediction counts as a wrong /
negative prediction. A score that is undefined because nothing is left to
score is 0. Probabilistic predictions are ``[n, k]`` arrays whose column ``c``
holds ``P(Y = c + first_class)``.
"""

import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import sklearn.metrics as skm
import torch

from metal._checks import check_float_array, check_int_vector, is_number
from metal.labels import ONE_BASED, LabelConvention

# Anything ``arraylike_to_numpy`` turns into a 1-D int array (list, ndarray,
# tensor, single-row/column sparse matrix).
Labels = Union[Sequence[int], np.ndarray, torch.Tensor, Any]
Probs = Union[np.ndarray, torch.Tensor]

__all__ = [
    "accuracy_score",
    "coverage_score",
    "precision_score",
    "recall_score",
    "fbeta_score",
    "f1_score",
    "roc_auc_score",
    "METRICS",
    "get_metric",
    "metric_inputs",
    "metric_names",
    "metric_score",
]


# ============================================================ the registry
def _binary_labels_only(
    name: str, gold: np.ndarray, pred: np.ndarray, convention: LabelConvention
) -> None:
    """In a binary-metric convention, labels must be the two classes."""
    if not convention.binary_metrics_only:
        return
    allowed = (convention.first_class, convention.first_class + 1)
    found = np.union1d(gold, pred)
    if np.any(~np.isin(found, allowed)):
        raise ValueError(
            f"{name} not supported for multiclass (found labels {found.tolist()}, "
            f"expected {list(allowed)}); use f1_micro or f1_macro instead."
        )


def _positives(gold, pred, pos_label) -> Tuple[np.ndarray, np.ndarray]:
    """0/1 vectors marking gold positives and predicted positives."""
    return (gold == pos_label).astype(np.int8), (pred == pos_label).astype(np.int8)


def _accuracy(gold, pred, probs, convention) -> float:
    if gold.size == 0:
        return 0.0
    return float(skm.accuracy_score(gold, pred))


def _coverage(gold, pred, probs, convention) -> float:
    if pred.size == 0:
        return 0.0
    return float(np.count_nonzero(pred != convention.no_label) / pred.size)


def _one_class_score(score: Callable[..., float], name: str) -> Callable[..., float]:
    """A metric scoring the class ``pos_label`` (the convention's positive class
    by default) against the rest with ``score`` (sklearn's precision/recall)."""

    def metric(gold, pred, probs, convention, pos_label=None) -> float:
        if gold.size == 0:
            return 0.0
        _binary_labels_only(name, gold, pred, convention)
        pos = convention.positive if pos_label is None else pos_label
        is_gold, is_pred = _positives(gold, pred, pos)
        return float(score(is_gold, is_pred, zero_division=0))

    return metric


_precision = _one_class_score(skm.precision_score, "precision")
_recall = _one_class_score(skm.recall_score, "recall")


def _check_beta(beta) -> float:
    if not is_number(beta) or not math.isfinite(beta) or beta < 0:
        raise ValueError(f"beta must be a non-negative number; found {beta!r}.")
    return float(beta)


def _fbeta(gold, pred, probs, convention, pos_label=None, beta=1.0) -> float:
    beta = _check_beta(beta)
    if gold.size == 0:
        return 0.0
    _binary_labels_only("fbeta", gold, pred, convention)
    pos = convention.positive if pos_label is None else pos_label
    is_gold, is_pred = _positives(gold, pred, pos)
    # (1 + b^2) TP / (b^2 (TP + FN) + TP + FP): beta=0 is exactly the precision.
    return float(skm.fbeta_score(is_gold, is_pred, beta=beta, zero_division=0))


def _f1(gold, pred, probs, convention, pos_label=None, **kwargs) -> float:
    if "beta" in kwargs:
        raise ValueError("f1_score fixes beta=1.0; use fbeta_score for another beta.")
    if kwargs:
        raise TypeError(f"f1 got unexpected arguments {sorted(kwargs)}.")
    if convention.binary_metrics_only and np.any(gold > convention.first_class + 1):
        raise ValueError(
            "f1 not supported for multiclass; use f1_micro or f1_macro instead."
        )
    return _fbeta(gold, pred, probs, convention, pos_label=pos_label, beta=1.0)


def _f1_micro(gold, pred, probs, convention) -> float:
    if gold.size == 0:
        return 0.0
    return float(skm.f1_score(gold, pred, average="micro", zero_division=0))


def _f1_macro(gold, pred, probs, convention) -> float:
    if gold.size == 0:
        return 0.0
    return float(skm.f1_score(gold, pred, average="macro", zero_division=0))


def _matthews_corrcoef(gold, pred, probs, convention) -> float:
    if gold.size == 0:
        return 0.0
    return float(skm.matthews_corrcoef(gold, pred))


def _roc_auc(gold, pred, probs, convention) -> float:
    """Macro average over classes of the one-vs-rest ROC AUC; in a
    binary-metric convention the binary AUC of the positive class' column
    (both agree when rows sum to 1)."""
    if convention.binary_metrics_only and probs.shape[1] != 2:
        raise ValueError(
            "Metric roc_auc is currently only defined for binary problems."
        )
    if gold.size == 0:
        raise ValueError("roc-auc is undefined: no gold labels are left to score.")
    k, first = probs.shape[1], convention.first_class
    if gold.min() < first or gold.max() > first + k - 1:
        raise ValueError(
            f"gold must have values in {first}..{first + k - 1} (probs has {k} "
            f"columns; use ignore_in_gold=[{convention.no_label}] to drop "
            f"unlabelled items); found values in {gold.min()}..{gold.max()}."
        )
    onehot = np.zeros((gold.shape[0], k))
    onehot[np.arange(gold.shape[0]), gold - first] = 1
    n_in_class = onehot.sum(axis=0)
    undefined = np.flatnonzero((n_in_class == 0) | (n_in_class == onehot.shape[0]))
    if undefined.size:
        raise ValueError(
            "roc-auc is undefined: every class needs gold items both inside and "
            f"outside it; this fails for class(es) {(undefined + first).tolist()} "
            f"(gold class counts {n_in_class.astype(int).tolist()})."
        )
    if convention.binary_metrics_only:
        return float(skm.roc_auc_score(onehot[:, 1], probs[:, 1]))
    return float(skm.roc_auc_score(onehot, probs))


@dataclass(frozen=True)
class _Entry:
    """A metric: ``func(gold, pred, probs, convention, **kwargs)`` and the
    inputs it needs (``golds``, ``preds``, ``probs``)."""

    func: Callable[..., float]
    inputs: Tuple[str, ...]


_REGISTRY: Dict[str, _Entry] = {
    "accuracy": _Entry(_accuracy, ("golds", "preds")),
    "coverage": _Entry(_coverage, ("preds",)),
    "precision": _Entry(_precision, ("golds", "preds")),
    "recall": _Entry(_recall, ("golds", "preds")),
    "f1": _Entry(_f1, ("golds", "preds")),
    "fbeta": _Entry(_fbeta, ("golds", "preds")),
    "f1_micro": _Entry(_f1_micro, ("golds", "preds")),
    "f1_macro": _Entry(_f1_macro, ("golds", "preds")),
    "matthews_corrcoef": _Entry(_matthews_corrcoef, ("golds", "preds")),
    "roc-auc": _Entry(_roc_auc, ("golds", "probs")),
}
# The Operation API's spelling of a name.
_ALIASES = {"roc_auc": "roc-auc"}


def metric_names(convention: Optional[LabelConvention] = None) -> List[str]:
    """Every metric name, in the spelling of ``convention``'s vocabulary
    (``roc_auc`` for ``ZERO_BASED``, ``roc-auc`` otherwise)."""
    names = list(_REGISTRY)
    if convention is not None and convention.first_class == 0:
        spelled = {canonical: alias for alias, canonical in _ALIASES.items()}
        names = [spelled.get(name, name) for name in names]
    return names


def _entry(name: str) -> _Entry:
    canonical = _ALIASES.get(name, name) if isinstance(name, str) else name
    if not isinstance(canonical, str) or canonical not in _REGISTRY:
        raise ValueError(
            f"Unknown metric {name!r}; choose from "
            f"{sorted(set(_REGISTRY) | set(_ALIASES))}."
        )
    return _REGISTRY[canonical]


def metric_inputs(name: str) -> Tuple[str, ...]:
    """The inputs metric ``name`` needs, among ``golds``, ``preds``, ``probs``."""
    return _entry(name).inputs


def get_metric(
    name: str, convention: LabelConvention = ONE_BASED
) -> Callable[..., float]:
    """The scoring function of metric ``name`` in ``convention``.

    Returns:
        ``score(golds=None, preds=None, probs=None, **kwargs) -> float`` over
        1-D int arrays ``golds``/``preds`` and a float array ``probs [n, k]``
        (rows to ignore already dropped); ``kwargs`` reach the metric
        (``pos_label``, ``beta``).

    Raises:
        ValueError: for an unknown name; the returned function raises
            ``"Metric <name> requires access to <input>."`` for a missing input.
    """
    entry = _entry(name)

    def score(golds=None, preds=None, probs=None, **kwargs) -> float:
        given = {"golds": golds, "preds": preds, "probs": probs}
        for needed in entry.inputs:
            if given[needed] is None:
                raise ValueError(f"Metric {name} requires access to {needed}.")
        gold = np.asarray(golds) if golds is not None else None
        pred = np.asarray(preds) if preds is not None else None
        prob = np.asarray(probs, dtype=np.float64) if probs is not None else None
        return entry.func(gold, pred, prob, convention, **kwargs)

    score.__name__ = name
    return score


# ======================================================= MeTaL's scorers
def _ignore_list(values: Optional[Sequence[int]], name: str) -> List[int]:
    """A copy of an ignore list (``None`` means empty); the caller's is untouched."""
    if values is None:
        return []
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ValueError(f"{name} must be a list of labels; found {values!r}.")
    return list(values)


def _preprocess(
    gold, pred, ignore_in_gold: Sequence[int], ignore_in_pred: Sequence[int]
) -> Tuple[np.ndarray, np.ndarray]:
    """Convert ``gold`` and ``pred`` to int64 arrays ``[n]`` and drop the
    positions whose gold label is in ``ignore_in_gold`` or whose prediction is
    in ``ignore_in_pred``."""
    gold = check_int_vector(gold, "gold")
    pred = check_int_vector(pred, "pred")
    if gold.shape[0] != pred.shape[0]:
        raise ValueError(
            "gold and pred must have the same length; found "
            f"len(gold)={gold.shape[0]} and len(pred)={pred.shape[0]}."
        )
    ignore_in_gold = _ignore_list(ignore_in_gold, "ignore_in_gold")
    ignore_in_pred = _ignore_list(ignore_in_pred, "ignore_in_pred")
    if ignore_in_gold or ignore_in_pred:
        keep = ~np.isin(gold, ignore_in_gold) & ~np.isin(pred, ignore_in_pred)
        gold, pred = gold[keep], pred[keep]
    return gold, pred


def accuracy_score(
    gold: Labels,
    pred: Labels,
    ignore_in_gold: Sequence[int] = [],
    ignore_in_pred: Sequence[int] = [],
) -> float:
    """Fraction of positions where ``pred == gold``.

    Args:
        gold: gold labels ``[n]`` in 1..k (0 = no gold label).
        pred: predicted labels ``[n]`` in 1..k (0 = abstain, counted as wrong
            unless ``ignore_in_pred=[0]``).
        ignore_in_gold, ignore_in_pred: label values whose positions are dropped.

    Returns:
        the accuracy, or 0.0 when no position is left.
    """
    gold, pred = _preprocess(gold, pred, ignore_in_gold, ignore_in_pred)
    return _accuracy(gold, pred, None, ONE_BASED)


def coverage_score(
    gold: Labels,
    pred: Labels,
    ignore_in_gold: Sequence[int] = [],
    ignore_in_pred: Sequence[int] = [],
) -> float:
    """Fraction of (kept) positions with a non-abstain prediction (``pred != 0``).

    Returns 0.0 when no position is left.
    """
    gold, pred = _preprocess(gold, pred, ignore_in_gold, ignore_in_pred)
    return _coverage(gold, pred, None, ONE_BASED)


def precision_score(
    gold: Labels,
    pred: Labels,
    pos_label: int = 1,
    ignore_in_gold: Sequence[int] = [],
    ignore_in_pred: Sequence[int] = [],
) -> float:
    """``TP / (TP + FP)`` for the class ``pos_label``.

    Predicted positives are ``pred == pos_label``; true positives are those with
    ``gold == pos_label``. Returns 0.0 when nothing is predicted positive.
    """
    gold, pred = _preprocess(gold, pred, ignore_in_gold, ignore_in_pred)
    return _precision(gold, pred, None, ONE_BASED, pos_label=pos_label)


def recall_score(
    gold: Labels,
    pred: Labels,
    pos_label: int = 1,
    ignore_in_gold: Sequence[int] = [],
    ignore_in_pred: Sequence[int] = [],
) -> float:
    """``TP / (TP + FN)`` for the class ``pos_label``.

    An abstaining prediction on a gold positive counts as a false negative.
    Returns 0.0 when gold has no positives.
    """
    gold, pred = _preprocess(gold, pred, ignore_in_gold, ignore_in_pred)
    return _recall(gold, pred, None, ONE_BASED, pos_label=pos_label)


def fbeta_score(
    gold: Labels,
    pred: Labels,
    pos_label: int = 1,
    beta: float = 1.0,
    ignore_in_gold: Sequence[int] = [],
    ignore_in_pred: Sequence[int] = [],
) -> float:
    """F-beta score ``(1 + b^2) P R / (b^2 P + R)`` for the class ``pos_label``.

    Computed from the counts as ``(1 + b^2) TP / (b^2 (TP + FN) + TP + FP)``,
    which equals the formula above and makes ``beta=0`` return the precision
    exactly. Returns 0.0 when precision and recall are both 0.
    """
    _check_beta(beta)
    gold, pred = _preprocess(gold, pred, ignore_in_gold, ignore_in_pred)
    return _fbeta(gold, pred, None, ONE_BASED, pos_label=pos_label, beta=beta)


def f1_score(gold: Labels, pred: Labels, **kwargs) -> float:
    """F1 score: ``fbeta_score`` with ``beta=1.0`` (other kwargs passed on)."""
    if "beta" in kwargs:
        raise ValueError("f1_score fixes beta=1.0; use fbeta_score for another beta.")
    return fbeta_score(gold, pred, beta=1.0, **kwargs)


def _probs_to_numpy(probs, n: int) -> np.ndarray:
    """Validate probabilistic predictions ``[n, k]`` and return them as float64."""
    probs = check_float_array(
        probs, "probs", expected="an [n, k] numeric array of probabilities"
    )
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise ValueError(
            f"probs must be an [n, k] array with k >= 2 columns; found shape "
            f"{probs.shape}."
        )
    if probs.shape[0] != n:
        raise ValueError(
            f"probs must have one row per gold label; found {probs.shape[0]} rows "
            f"for {n} gold labels."
        )
    return probs


def roc_auc_score(
    gold: Labels,
    probs: Probs,
    ignore_in_gold: Sequence[int] = [],
    ignore_in_pred: Sequence[int] = [],
) -> float:
    """Macro average over classes of the one-vs-rest ROC AUC.

    Args:
        gold: gold labels ``[n]`` in 1..k (drop 0s with ``ignore_in_gold=[0]``).
        probs: ``[n, k]`` scores; column ``c`` scores class ``c + 1``.
        ignore_in_gold: gold label values whose rows are dropped.
        ignore_in_pred: must be empty (there are no hard predictions to drop).

    For ``k = 2`` both columns give the same AUC, so the result is the usual
    binary ROC AUC of class 1.
    """
    ignore_in_gold = _ignore_list(ignore_in_gold, "ignore_in_gold")
    if _ignore_list(ignore_in_pred, "ignore_in_pred"):
        raise ValueError(
            "roc_auc_score scores probabilities, so ignore_in_pred must be empty; "
            f"found {list(ignore_in_pred)}."
        )
    gold = check_int_vector(gold, "gold")
    probs = _probs_to_numpy(probs, gold.shape[0])
    if ignore_in_gold:
        keep = ~np.isin(gold, ignore_in_gold)
        gold, probs = gold[keep], probs[keep]
    return _roc_auc(gold, None, probs, ONE_BASED)


METRICS: Dict[str, Callable] = {
    "accuracy": accuracy_score,
    "coverage": coverage_score,
    "precision": precision_score,
    "recall": recall_score,
    "f1": f1_score,
    "fbeta": fbeta_score,
    "roc-auc": roc_auc_score,
}


def metric_score(
    gold: Labels,
    pred: Optional[Labels],
    metric: str,
    probs: Optional[Probs] = None,
    **kwargs: Any,
) -> float:
    """Score ``pred`` (or ``probs`` for ``"roc-auc"``) against ``gold``.

    Args:
        gold: gold labels ``[n]``.
        pred: predicted labels ``[n]`` (unused for ``"roc-auc"``).
        metric: one of the keys of ``METRICS``.
        probs: ``[n, k]`` probabilities, required for ``"roc-auc"``.
        **kwargs: passed to the scorer (e.g. ``ignore_in_gold``, ``pos_label``).
    """
    if not isinstance(metric, str) or metric not in METRICS:
        raise ValueError(f"metric must be one of {sorted(METRICS)}; found {metric!r}.")
    if metric == "roc-auc":
        if probs is None:
            raise ValueError("metric 'roc-auc' needs probs ([n, k]); found None.")
        return roc_auc_score(gold, probs, **kwargs)
    return METRICS[metric](gold, pred, **kwargs)


# ============================================ scoring models under names
def add_split_prefix(metric: str, split: str) -> str:
    """``"m"`` -> ``"<split>/m"``; ``"task/m"`` -> ``"task/<split>/m"``; names
    already containing ``"<split>/"`` are returned unchanged."""
    if f"{split}/" in metric:
        return metric
    if "/" in metric:
        task, name = metric.rsplit("/", 1)
        return f"{task}/{split}/{name}"
    return f"{split}/{metric}"


def remove_split_prefix(metric: str) -> str:
    """The metric's own name: the last ``/``-separated component."""
    return metric.split("/")[-1]


def standard_metrics(
    model, data, metric_names: Sequence[str], split: str
) -> Dict[str, float]:
    """Score ``model`` on labelled ``data`` with its own ``score`` under the
    names in ``metric_names`` whose last component is in ``METRICS`` (others,
    such as ``loss``, are skipped).

    Single-task models are scored in one prediction pass (gold label 0 is
    ignored; soft gold labels ``[n, k]`` count as their argmax); multitask
    models report the mean over tasks.

    Returns:
        ``{full name with split prefix: value}``.
    """
    wanted = [
        (add_split_prefix(m, split), remove_split_prefix(m))
        for m in metric_names
        if remove_split_prefix(m) in METRICS
    ]
    if not wanted or data is None:
        return {}
    if getattr(model, "multitask", False):
        return {
            full: float(model.score(data, metric=name, verbose=False))
            for full, name in wanted
        }
    values = model.score(data, metric=[name for _, name in wanted], verbose=False)
    return {full: float(value) for (full, _), value in zip(wanted, values)}


def custom_metrics(
    model, data, split: str, funcs: Sequence[Callable]
) -> Dict[str, float]:
    """Call each ``f(model, data) -> {name: value}`` and prefix names by split."""
    metrics = {}
    if data is None:
        return metrics
    for func in funcs:
        result = func(model, data)
        if not isinstance(result, dict):
            raise ValueError(
                f"A log_{split}_metrics_func must return a dict of metric values; "
                f"{getattr(func, '__name__', func)!r} returned "
                f"{type(result).__name__}."
            )
        for name, value in result.items():
            metrics[add_split_prefix(name, split)] = value
    return metrics
