"""Scoring functions for hard and probabilistic predictions.

Label conventions: gold labels and predictions are 1-D arrays of ints; classes
are ``1..k`` and ``0`` means abstain (in predictions) or "no gold label" (in gold
vectors). Probabilistic predictions are ``[n, k]`` arrays whose column ``c``
holds ``P(Y = c + 1)``.

Every scorer accepts lists, NumPy arrays, torch tensors (integral floats too) and
sparse single-row/column matrices, and can drop positions whose gold label is in
``ignore_in_gold`` or whose prediction is in ``ignore_in_pred`` before scoring.
Unless dropped, an abstaining prediction (0) counts as a wrong / negative
prediction. A score that is undefined because nothing is left to score is 0.
"""

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import sklearn.metrics as skm
import torch

from metal.utils import arraylike_to_numpy, pred_to_prob

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
    "metric_score",
]


# ------------------------------------------------------------------ helpers
def _labels_to_numpy(labels, name: str) -> np.ndarray:
    """Convert a 1-D array-like of integer labels, naming ``name`` on failure."""
    if labels is None:
        raise ValueError(f"{name} must be a 1-D array of integer labels; found None.")
    try:
        return arraylike_to_numpy(labels)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


def _check_same_length(gold: np.ndarray, other: np.ndarray, other_name: str) -> None:
    if gold.shape[0] != other.shape[0]:
        raise ValueError(
            f"gold and {other_name} must have the same length; found "
            f"len(gold)={gold.shape[0]} and len({other_name})={other.shape[0]}."
        )


def _ignore_list(values: Optional[Sequence[int]], name: str) -> List[int]:
    """A copy of an ignore list (``None`` means empty); the caller's is untouched."""
    if values is None:
        return []
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ValueError(f"{name} must be a list of labels; found {values!r}.")
    return list(values)


def _drop_ignored(
    gold: np.ndarray,
    pred: np.ndarray,
    ignore_in_gold: Sequence[int],
    ignore_in_pred: Sequence[int],
) -> Tuple[np.ndarray, np.ndarray]:
    """Keep the positions whose gold label is not in ``ignore_in_gold`` and whose
    prediction is not in ``ignore_in_pred``."""
    ignore_in_gold = _ignore_list(ignore_in_gold, "ignore_in_gold")
    ignore_in_pred = _ignore_list(ignore_in_pred, "ignore_in_pred")
    keep = ~np.isin(gold, ignore_in_gold) & ~np.isin(pred, ignore_in_pred)
    return gold[keep], pred[keep]


def _preprocess(
    gold, pred, ignore_in_gold: Sequence[int], ignore_in_pred: Sequence[int]
) -> Tuple[np.ndarray, np.ndarray]:
    """Convert ``gold`` and ``pred`` to int64 arrays ``[n]`` and drop ignored
    positions (only when an ignore list is non-empty)."""
    gold = _labels_to_numpy(gold, "gold")
    pred = _labels_to_numpy(pred, "pred")
    _check_same_length(gold, pred, "pred")
    ignore_in_gold = _ignore_list(ignore_in_gold, "ignore_in_gold")
    ignore_in_pred = _ignore_list(ignore_in_pred, "ignore_in_pred")
    if ignore_in_gold or ignore_in_pred:
        gold, pred = _drop_ignored(gold, pred, ignore_in_gold, ignore_in_pred)
    return gold, pred


def _positive_indicators(
    gold: np.ndarray, pred: np.ndarray, pos_label: int
) -> Tuple[np.ndarray, np.ndarray]:
    """0/1 vectors marking gold positives and predicted positives."""
    return (gold == pos_label).astype(np.int8), (pred == pos_label).astype(np.int8)


# ------------------------------------------------------------ hard scorers
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
    if gold.size == 0:
        return 0.0
    return float(skm.accuracy_score(gold, pred))


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
    if pred.size == 0:
        return 0.0
    return np.count_nonzero(pred) / pred.size


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
    if gold.size == 0:
        return 0.0
    is_gold, is_pred = _positive_indicators(gold, pred, pos_label)
    return float(skm.precision_score(is_gold, is_pred, zero_division=0))


def recall_score(
    gold, pred, pos_label=1, ignore_in_gold=[], ignore_in_pred=[]
) -> float:
    """``TP / (TP + FN)`` for the class ``pos_label``.

    An abstaining prediction on a gold positive counts as a false negative.
    Returns 0.0 when gold has no positives.
    """
    gold, pred = _preprocess(gold, pred, ignore_in_gold, ignore_in_pred)
    if gold.size == 0:
        return 0.0
    is_gold, is_pred = _positive_indicators(gold, pred, pos_label)
    return float(skm.recall_score(is_gold, is_pred, zero_division=0))


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
    if isinstance(beta, bool) or not isinstance(beta, (int, float, np.number)):
        raise ValueError(f"beta must be a non-negative number; found {beta!r}.")
    if not np.isfinite(beta) or beta < 0:
        raise ValueError(f"beta must be a non-negative number; found {beta!r}.")
    gold, pred = _preprocess(gold, pred, ignore_in_gold, ignore_in_pred)
    if gold.size == 0:
        return 0.0
    is_gold, is_pred = _positive_indicators(gold, pred, pos_label)
    return float(skm.fbeta_score(is_gold, is_pred, beta=float(beta), zero_division=0))


def f1_score(gold: Labels, pred: Labels, **kwargs) -> float:
    """F1 score: ``fbeta_score`` with ``beta=1.0`` (other kwargs passed on)."""
    if "beta" in kwargs:
        raise ValueError("f1_score fixes beta=1.0; use fbeta_score for another beta.")
    return fbeta_score(gold, pred, beta=1.0, **kwargs)


# ----------------------------------------------------- probabilistic scorer
def _probs_to_numpy(probs, n: int) -> np.ndarray:
    """Validate probabilistic predictions ``[n, k]`` and return them as float64."""
    if probs is None:
        raise ValueError("probs must be an [n, k] array of probabilities; found None.")
    if isinstance(probs, torch.Tensor):
        probs = probs.detach().cpu().numpy()
    elif hasattr(probs, "toarray"):
        probs = probs.toarray()
    try:
        probs = np.asarray(probs, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"probs must be an [n, k] numeric array; found {type(probs).__name__}."
        ) from None
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
    if not np.all(np.isfinite(probs)):
        raise ValueError("probs must be finite; found NaN or infinite values.")
    return probs


def _check_each_class_splits(onehot: np.ndarray) -> None:
    """ROC-AUC of class c needs gold items both in and out of class c."""
    n_in_class = onehot.sum(axis=0)
    undefined = np.flatnonzero((n_in_class == 0) | (n_in_class == onehot.shape[0]))
    if undefined.size:
        raise ValueError(
            "roc-auc is undefined: every class needs gold items both inside and "
            f"outside it; this fails for class(es) {(undefined + 1).tolist()} "
            f"(gold class counts {n_in_class.tolist()})."
        )


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
    gold = _labels_to_numpy(gold, "gold")
    probs = _probs_to_numpy(probs, gold.shape[0])
    if ignore_in_gold:
        keep = ~np.isin(gold, ignore_in_gold)
        gold, probs = gold[keep], probs[keep]
    if gold.size == 0:
        raise ValueError("roc-auc is undefined: no gold labels are left to score.")
    k = probs.shape[1]
    if gold.min() < 1 or gold.max() > k:
        raise ValueError(
            f"gold must have values in 1..{k} (probs has {k} columns; use "
            f"ignore_in_gold=[0] to drop unlabelled items); found values in "
            f"{gold.min()}..{gold.max()}."
        )
    onehot = pred_to_prob(torch.from_numpy(gold), k).numpy()
    _check_each_class_splits(onehot)
    return float(skm.roc_auc_score(onehot, probs))


# ------------------------------------------------------------------ registry
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
    **kwargs,
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
