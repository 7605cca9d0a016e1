"""Label conventions, and the one function that turns probabilities into labels.

``metal`` speaks two label vocabularies, and every model, task and scorer says
which one it uses (nothing is guessed from how a helper was built):

* ``ONE_BASED`` (MeTaL): classes ``1..k``; ``0`` means abstain (a vote or a
  prediction) or "no gold label". Binary tasks use ``1`` = positive, ``2`` =
  negative. Scoring follows MeTaL: precision, recall and F-scores are those of
  class 1 against the rest, ROC-AUC is the macro one-vs-rest average.
* ``ZERO_BASED`` (the Operation API, Snorkel v0.10): classes ``0..k-1``;
  ``-1`` means abstain / no label. Binary tasks use ``1`` = positive.
  Scoring follows Snorkel: precision, recall, F-scores and ROC-AUC are binary
  metrics (``f1`` and ``roc_auc`` refuse more than two classes).

Probabilities are always ``[n, k]`` with column ``c`` for the class
``c + first_class``.
"""

import hashlib
from dataclasses import dataclass
from typing import Optional, Union

import numpy as np

from metal._checks import check_float_array, is_int

__all__ = [
    "LabelConvention",
    "ONE_BASED",
    "TIE_POLICIES",
    "TIE_TOLERANCE",
    "ZERO_BASED",
    "break_ties",
    "check_tie_policy",
]

# Probabilities within this distance of a row's maximum count as tied.
TIE_TOLERANCE = 1e-5

# "random": uniform among the tied classes (NumPy's global RNG); "hash": the
# same, but chosen deterministically from a hash of the row index; "first":
# the first column holding the row's maximum (np.argmax, no tolerance);
# "abstain": the convention's abstain label; an int: that label.
TIE_POLICIES = ("random", "hash", "first", "abstain")


@dataclass(frozen=True)
class LabelConvention:
    """How a vocabulary numbers its classes.

    Attributes:
        name: a short description, for messages.
        first_class: the smallest class label (1 or 0).
        binary_metrics_only: precision/recall/F-scores/ROC-AUC are binary
            metrics that refuse more than two classes (the Operation API)
            rather than one-vs-rest scores of the positive class (MeTaL).
        drop_abstained_predictions: task scorers drop the items whose
            prediction abstains (the Operation API) rather than count them as
            wrong (MeTaL).
    """

    name: str
    first_class: int
    binary_metrics_only: bool
    drop_abstained_predictions: bool

    @property
    def no_label(self) -> int:
        """The label meaning abstain / no gold label: ``first_class - 1``."""
        return self.first_class - 1

    @property
    def positive(self) -> int:
        """The class binary metrics score (label 1 in both vocabularies)."""
        return 1

    def __repr__(self) -> str:
        return f"LabelConvention({self.name})"


ONE_BASED = LabelConvention("classes 1..k, 0 = abstain", 1, False, False)
ZERO_BASED = LabelConvention("classes 0..k-1, -1 = abstain", 0, True, True)


def check_tie_policy(policy: Union[str, int]) -> None:
    """Refuse a tie policy that is neither one of ``TIE_POLICIES`` nor an int
    label (ValueError naming ``break_ties``)."""
    if policy in TIE_POLICIES:
        return
    if is_int(policy):
        return
    raise ValueError(
        f"break_ties must be one of {list(TIE_POLICIES)} or an int label; found "
        f"{policy!r}."
    )


def _row_hash(index: int) -> int:
    """A deterministic integer per row index (stable across runs/platforms)."""
    return int(hashlib.sha1(str(index).encode("utf-8")).hexdigest(), 16)


def break_ties(
    probs,
    policy: Union[str, int] = "random",
    convention: LabelConvention = ONE_BASED,
    tol: float = TIE_TOLERANCE,
    rng: Optional[np.random.RandomState] = None,
    first_row: int = 0,
) -> np.ndarray:
    """Resolve each row of ``probs [n, k]`` to a label of ``convention``.

    A row's tie set is the columns within ``tol`` of its maximum; a row with
    one such column gets that class. Ties are resolved by ``policy`` (see
    ``TIE_POLICIES``): ``"random"`` draws uniformly from NumPy's global RNG,
    ``"hash"`` picks ``tied[sha1(row index) % len(tied)]``, ``"first"`` takes
    ``np.argmax`` of the row (whatever ``tol``), ``"abstain"`` gives
    ``convention.no_label`` and an int gives that label.

    ``rng`` replaces NumPy's global RNG for ``"random"``, and ``first_row`` is
    the row index of ``probs``' first row for ``"hash"`` (both for a block of
    a longer array, see ``metal._dask.lazy_break_ties``).

    Returns:
        int64 labels ``[n]`` in ``first_class..first_class + k - 1`` (or the
        abstain / given label for ties).

    Raises:
        ValueError: for an unknown policy or ``probs`` that is not 2-D.
    """
    check_tie_policy(policy)
    probs = check_float_array(
        probs, "probs", expected="a 2-D array of probabilities [n, k]", finite=False
    )
    if probs.ndim != 2:
        raise ValueError(
            f"probs must be a 2-D array of probabilities [n, k]; found shape "
            f"{probs.shape}."
        )
    if probs.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    first = convention.first_class
    if policy == "first":
        return probs.argmax(axis=1).astype(np.int64) + first
    ties = probs >= probs.max(axis=1, keepdims=True) - tol
    n_ties = ties.sum(axis=1)
    labels = ties.argmax(axis=1).astype(np.int64) + first
    tied = np.flatnonzero(n_ties > 1)
    if tied.size == 0:
        return labels
    if policy == "random":
        # Pick the j-th tied column of each row, j uniform in the tie set.
        picks = ((rng or np.random).random(tied.size) * n_ties[tied]).astype(np.int64)
        ranks = np.cumsum(ties[tied], axis=1) - 1
        chosen = np.argmax(ties[tied] & (ranks == picks[:, None]), axis=1)
        labels[tied] = chosen + first
    elif policy == "hash":
        for i in tied:
            candidates = np.flatnonzero(ties[i])
            labels[i] = (
                candidates[_row_hash(int(i) + first_row) % len(candidates)] + first
            )
    elif policy == "abstain":
        labels[tied] = convention.no_label
    else:
        labels[tied] = int(policy)
    return labels
