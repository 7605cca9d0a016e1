"""Diagnostics for label matrices and predictions.

Label conventions: a label matrix ``L`` has shape ``[n, m]`` (n items, m
labelling sources); ``L[i, j]`` is source j's vote on item i, in ``1..k``, or
``0`` when the source abstains. Gold vectors ``Y`` are ``[n]`` ints in ``1..k``
with ``0`` meaning "no gold label".

``L`` may be any scipy.sparse format, a dense NumPy array or a torch tensor (all
give identical results). It is canonicalised once to a CSR matrix without stored
zeros and every statistic is a vectorised reduction over its non-zero entries,
so the cost grows with the number of votes, not with ``n * m``.

``L`` may also be a ``dask.array.Array`` (and ``Y`` a dask or in-memory
vector): the per-source statistics are sums of counts over row blocks, so each
block is canonicalised and counted on the active Dask scheduler and only the
counts (``[m]`` vectors and the set of (source, label) pairs) are combined;
the results are the same NumPy arrays and DataFrames, equal to those of the
in-memory matrix.
"""

from collections import Counter, defaultdict
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd
import scipy.sparse as sparse
import torch

from metal._checks import check_int_vector, check_label_matrix, check_label_vector
from metal._dask import (
    dask_label_matrix,
    dask_label_vector,
    is_dask_array,
    reduce_row_blocks,
)

# Accepted label-matrix inputs ([n, m]) and 1-D label inputs ([n]).
LabelMatrixLike = Union[np.ndarray, sparse.spmatrix, sparse.sparray, torch.Tensor]
Labels = Union[Sequence[int], np.ndarray, torch.Tensor, Any]

__all__ = [
    "label_coverage",
    "label_overlap",
    "label_conflict",
    "lf_polarities",
    "lf_coverages",
    "lf_overlaps",
    "lf_conflicts",
    "lf_empirical_accuracies",
    "lf_summary",
    "single_lf_summary",
    "error_buckets",
    "confusion_matrix",
    "ConfusionMatrix",
]


# ------------------------------------------------- canonical sparse form
def _to_csr(L) -> sparse.csr_matrix:
    """Validate ``L [n, m]`` and return it as CSR with sorted indices and no
    stored zeros (narrow integer data)."""
    L = check_label_matrix(L, name="L")
    if sparse.issparse(L):
        return L
    return sparse.csr_matrix(L)


def _row_vote_counts(L: sparse.csr_matrix) -> np.ndarray:
    """Number of non-abstain votes of each item, ``[n]``."""
    return np.diff(L.indptr)


def _row_of_each_vote(L: sparse.csr_matrix) -> np.ndarray:
    """Row index of each stored (non-zero) entry, aligned with ``L.data``."""
    return np.repeat(np.arange(L.shape[0]), _row_vote_counts(L))


def _row_conflict_mask(L: sparse.csr_matrix) -> np.ndarray:
    """Boolean ``[n]``: the item's non-zero votes are not all equal."""
    conflicted = np.zeros(L.shape[0], dtype=bool)
    voted = _row_vote_counts(L) > 0
    if not voted.any():
        return conflicted
    starts = L.indptr[:-1][voted]
    row_max = np.maximum.reduceat(L.data, starts)
    row_min = np.minimum.reduceat(L.data, starts)
    conflicted[voted] = row_max != row_min
    return conflicted


def _votes_per_source(
    L: sparse.csr_matrix, vote_mask: Optional[np.ndarray] = None
) -> np.ndarray:
    """Per source, the number of its votes (restricted to ``vote_mask``, a boolean
    array aligned with ``L.data``), ``[m]`` int64."""
    sources = L.indices if vote_mask is None else L.indices[vote_mask]
    return np.bincount(sources, minlength=L.shape[1]).astype(np.int64)


def _votes_in_rows(L: sparse.csr_matrix, row_mask: np.ndarray) -> np.ndarray:
    """Per source, the number of its votes on the items selected by ``row_mask``."""
    return _votes_per_source(L, row_mask[_row_of_each_vote(L)])


def _fraction(count: np.ndarray, total: Union[int, np.ndarray]) -> np.ndarray:
    """``count / total`` in float64, with 0/0 (and x/0) set to 0."""
    count = np.asarray(count, dtype=np.float64)
    total = np.broadcast_to(np.asarray(total, dtype=np.float64), count.shape)
    out = np.zeros_like(count)
    np.divide(count, total, out=out, where=total != 0)
    return out


def _gold_of_each_vote(L: sparse.csr_matrix, Y) -> np.ndarray:
    """Validate ``Y [n]`` and return the gold label of each stored vote."""
    Y = check_label_vector(Y, name="Y", n=L.shape[0])
    return Y[_row_of_each_vote(L)]


# -------------------------------------------------- per-item indicators
def _covered_data_points(L: LabelMatrixLike) -> np.ndarray:
    """``[n]`` 0/1 ints: the item has at least one non-abstain vote."""
    return (_row_vote_counts(_to_csr(L)) > 0).astype(np.int64)


def _overlapped_data_points(L: LabelMatrixLike) -> np.ndarray:
    """``[n]`` 0/1 ints: the item has more than one non-abstain vote."""
    return (_row_vote_counts(_to_csr(L)) > 1).astype(np.int64)


def _conflicted_data_points(L: LabelMatrixLike) -> np.ndarray:
    """``[n]`` 0/1 ints: the item's non-abstain votes disagree."""
    return _row_conflict_mask(_to_csr(L)).astype(np.int64)


# ------------------------------------------------ whole-matrix fractions
def label_coverage(L: LabelMatrixLike) -> float:
    """Fraction of items with at least one non-abstain vote. ``L``: ``[n, m]``."""
    if is_dask_array(L):
        counts = _dask_counts(L)
        return counts.covered_items / counts.n
    L = _to_csr(L)
    return np.count_nonzero(_row_vote_counts(L)) / L.shape[0]


def label_overlap(L: LabelMatrixLike) -> float:
    """Fraction of items with at least two non-abstain votes. ``L``: ``[n, m]``."""
    if is_dask_array(L):
        counts = _dask_counts(L)
        return counts.overlapped_items / counts.n
    L = _to_csr(L)
    return np.count_nonzero(_row_vote_counts(L) > 1) / L.shape[0]


def label_conflict(L: LabelMatrixLike) -> float:
    """Fraction of items whose non-abstain votes disagree. ``L``: ``[n, m]``."""
    if is_dask_array(L):
        counts = _dask_counts(L)
        return counts.conflicted_items / counts.n
    L = _to_csr(L)
    return np.count_nonzero(_row_conflict_mask(L)) / L.shape[0]


def _unique_pairs(
    first: np.ndarray, second: np.ndarray
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct pairs ``(first[i], second[i])`` of non-empty int arrays.

    Returns ``(pairs [u, 2] in lexicographic order, inverse [n] mapping each
    position to its pair's row, counts [u])``. Pairs are sorted as single int64
    codes, which is much faster than ``np.unique(..., axis=0)``.
    """
    first, second = first.astype(np.int64), second.astype(np.int64)
    low = min(first.min(), second.min())
    base = int(max(first.max(), second.max()) - low + 1)
    if base > 2**31:  # codes could overflow int64; take the slow exact path
        pairs, inverse, counts = np.unique(
            np.stack([first, second], axis=1),
            axis=0,
            return_inverse=True,
            return_counts=True,
        )
        return pairs, inverse.reshape(-1), counts
    codes = (first - low) * base + (second - low)
    uniq, inverse, counts = np.unique(codes, return_inverse=True, return_counts=True)
    pairs = np.stack([uniq // base + low, uniq % base + low], axis=1)
    return pairs, inverse.reshape(-1), counts


# ------------------------------------------------------ per-source stats
def _source_label_pairs(L: sparse.csr_matrix) -> np.ndarray:
    """The distinct ``(source, label)`` pairs of the votes: int64 ``[u, 2]`` in
    lexicographic order."""
    if L.nnz:
        return _unique_pairs(L.indices, L.data)[0]
    return np.zeros((0, 2), dtype=np.int64)


def _polarities_from_csr(L: sparse.csr_matrix) -> List[Union[int, List[int]]]:
    return _polarities_from_pairs(_source_label_pairs(L), L.shape[1])


def _polarities_from_pairs(pairs: np.ndarray, m: int) -> List[Union[int, List[int]]]:
    splits = np.searchsorted(pairs[:, 0], np.arange(1, m))
    values = [group.tolist() for group in np.split(pairs[:, 1], splits)]
    return [vals[0] if len(vals) == 1 else vals for vals in values]


def lf_polarities(L: LabelMatrixLike) -> List[Union[int, List[int]]]:
    """The distinct non-abstain labels each source emits.

    Returns a list over the m sources: the sorted list of labels a source emits,
    the label itself (an int) when it emits exactly one, ``[]`` when it never
    votes.
    """
    if is_dask_array(L):
        counts = _dask_counts(L)
        return _polarities_from_pairs(counts.pairs, counts.m)
    return _polarities_from_csr(_to_csr(L))


def _coverages_from_csr(L: sparse.csr_matrix) -> np.ndarray:
    return _votes_per_source(L) / L.shape[0]


def lf_coverages(L: LabelMatrixLike) -> np.ndarray:
    """``[m]`` float64: the fraction of items each source votes on."""
    if is_dask_array(L):
        return _dask_counts(L).coverages()
    return _coverages_from_csr(_to_csr(L))


def _overlaps_from_csr(L: sparse.csr_matrix, normalize_by_coverage: bool) -> np.ndarray:
    overlapped = _votes_in_rows(L, _row_vote_counts(L) > 1)
    if normalize_by_coverage:
        return _fraction(overlapped, _votes_per_source(L))
    return overlapped / L.shape[0]


def lf_overlaps(L: LabelMatrixLike, normalize_by_coverage: bool = False) -> np.ndarray:
    """``[m]`` float64: per source, the fraction of all n items that it labels and
    that at least one other source also labels.

    With ``normalize_by_coverage`` the count is divided by the source's number of
    votes instead (the fraction of its own votes that overlap); 0/0 gives 0.
    """
    if is_dask_array(L):
        return _dask_counts(L).overlaps(normalize_by_coverage)
    return _overlaps_from_csr(_to_csr(L), normalize_by_coverage)


def _conflicts_from_csr(
    L: sparse.csr_matrix, normalize_by_overlaps: bool
) -> np.ndarray:
    conflicted = _votes_in_rows(L, _row_conflict_mask(L))
    if normalize_by_overlaps:
        return _fraction(conflicted, _votes_in_rows(L, _row_vote_counts(L) > 1))
    return conflicted / L.shape[0]


def lf_conflicts(L: LabelMatrixLike, normalize_by_overlaps: bool = False) -> np.ndarray:
    """``[m]`` float64: per source, the fraction of all n items that it labels and
    on which the non-abstain votes disagree.

    With ``normalize_by_overlaps`` the count is divided by the number of its
    overlapping items instead (the fraction of its overlaps that conflict); 0/0
    gives 0.
    """
    if is_dask_array(L):
        return _dask_counts(L).conflicts(normalize_by_overlaps)
    return _conflicts_from_csr(_to_csr(L), normalize_by_overlaps)


def _correct_incorrect_votes(
    L: sparse.csr_matrix, gold_of_vote: np.ndarray
) -> Tuple[np.ndarray, np.ndarray]:
    """Per source, votes equal to / different from a non-zero gold label."""
    has_gold = gold_of_vote != 0
    agrees = L.data == gold_of_vote
    correct = _votes_per_source(L, has_gold & agrees)
    incorrect = _votes_per_source(L, has_gold & ~agrees)
    return correct, incorrect


def _empirical_accuracies_from_csr(
    L: sparse.csr_matrix, gold_of_vote: np.ndarray
) -> np.ndarray:
    agreeing = _votes_per_source(L, L.data == gold_of_vote)
    return _accuracies(agreeing, _votes_per_source(L))


def _accuracies(agreeing: np.ndarray, votes: np.ndarray) -> np.ndarray:
    """``agreeing / votes`` per source, NaN where a source never votes."""
    accs = np.full(len(votes), np.nan)
    np.divide(agreeing, votes, out=accs, where=votes > 0)
    return accs


def lf_empirical_accuracies(L: LabelMatrixLike, Y: Labels) -> np.ndarray:
    """``[m]`` float64: per source, the fraction of its votes equal to gold.

    Args:
        L: label matrix ``[n, m]``.
        Y: gold labels ``[n]``; a vote on an item with ``Y == 0`` counts as wrong.

    A source that never votes gets NaN (without a RuntimeWarning).
    """
    if is_dask_array(L):
        return _dask_counts(L, Y).accuracies()
    L = _to_csr(L)
    return _empirical_accuracies_from_csr(L, _gold_of_each_vote(L, Y))


def _check_per_source(values, m: int, name: str) -> list:
    if isinstance(values, (str, bytes)):
        raise ValueError(f"{name} must be a sequence of length m={m}; found a string.")
    try:
        values = list(values)
    except TypeError:
        raise ValueError(
            f"{name} must be a sequence of length m={m}; found "
            f"{type(values).__name__}."
        ) from None
    if len(values) != m:
        raise ValueError(
            f"{name} must have one entry per source (m={m}); found {len(values)}."
        )
    return values


def lf_summary(
    L: LabelMatrixLike,
    Y: Optional[Labels] = None,
    lf_names: Optional[Sequence] = None,
    est_accs: Optional[Sequence[float]] = None,
) -> pd.DataFrame:
    """A table of per-source statistics, one row per source.

    Args:
        L: label matrix ``[n, m]``.
        Y: optional gold labels ``[n]`` (0 = no gold label).
        lf_names: optional m source names, used as the index (a first column
            ``"j"`` then holds 0..m-1); otherwise the index is 0..m-1.
        est_accs: optional m learned accuracies.

    Returns:
        a DataFrame with columns ``["j"]`` (only with ``lf_names``),
        ``"Polarity", "Coverage", "Overlaps", "Conflicts"``, then with ``Y``
        ``"Correct", "Incorrect", "Emp. Acc."`` and with ``est_accs``
        ``"Learned Acc."``. Correct/Incorrect count the source's votes that
        match / differ from a non-zero gold label.
    """
    if is_dask_array(L):
        stats: Union[_VoteCounts, _CsrStatistics] = _dask_counts(L, Y)
    else:
        stats = _CsrStatistics(_to_csr(L), Y)
    m = stats.m
    columns: Dict[str, object] = {}
    if lf_names is not None:
        index = _check_per_source(lf_names, m, "lf_names")
        columns["j"] = np.arange(m)
    else:
        index = list(range(m))
    columns["Polarity"] = _object_array(stats.polarities())
    columns["Coverage"] = stats.coverages()
    columns["Overlaps"] = stats.overlaps(False)
    columns["Conflicts"] = stats.conflicts(False)
    if Y is not None:
        columns["Correct"] = stats.correct
        columns["Incorrect"] = stats.incorrect
        columns["Emp. Acc."] = stats.accuracies()
    if est_accs is not None:
        columns["Learned Acc."] = np.asarray(
            _check_per_source(_flatten(est_accs), m, "est_accs"), dtype=np.float64
        )
    summary = pd.DataFrame(columns, index=pd.Index(index))
    # Int dtype when every source emits one label, object when lists appear.
    summary["Polarity"] = summary["Polarity"].infer_objects()
    return summary


class _CsrStatistics:
    """The per-source statistics of ``lf_summary`` read straight from a
    canonical CSR ``L`` (and gold labels ``Y [n]``, optional)."""

    def __init__(self, L: sparse.csr_matrix, Y: Optional[Labels] = None) -> None:
        self.L, self.m = L, L.shape[1]
        if Y is not None:
            self.gold_of_vote = _gold_of_each_vote(L, Y)
            counts = _correct_incorrect_votes(L, self.gold_of_vote)
            self.correct, self.incorrect = counts

    def polarities(self) -> List[Union[int, List[int]]]:
        return _polarities_from_csr(self.L)

    def coverages(self) -> np.ndarray:
        return _coverages_from_csr(self.L)

    def overlaps(self, normalize_by_coverage: bool) -> np.ndarray:
        return _overlaps_from_csr(self.L, normalize_by_coverage)

    def conflicts(self, normalize_by_overlaps: bool) -> np.ndarray:
        return _conflicts_from_csr(self.L, normalize_by_overlaps)

    def accuracies(self) -> np.ndarray:
        return _empirical_accuracies_from_csr(self.L, self.gold_of_vote)


class _VoteCounts:
    """The counts every per-source statistic is a ratio of, summed over the
    row blocks of a label matrix (see ``_dask_counts``).

    ``n`` items; ``covered_items``/``overlapped_items``/``conflicted_items``:
    items with >= 1 vote, >= 2 votes, disagreeing votes; per source (``[m]``
    int64): ``votes``, ``overlap_votes`` (votes on overlapped items),
    ``conflict_votes`` (on conflicted items) and, with gold labels,
    ``correct``/``incorrect`` (votes equal to / different from a non-zero
    gold label); ``pairs``: the distinct (source, label) pairs ``[u, 2]``.
    """

    _SUMMED = (
        "n",
        "covered_items",
        "overlapped_items",
        "conflicted_items",
        "votes",
        "overlap_votes",
        "conflict_votes",
        "correct",
        "incorrect",
    )

    def __init__(self, L: sparse.csr_matrix, Y: Optional[np.ndarray]) -> None:
        """The counts of one canonical CSR block (and its gold labels)."""
        row_votes = _row_vote_counts(L)
        conflicted = _row_conflict_mask(L)
        self.m = L.shape[1]
        self.n = L.shape[0]
        self.covered_items = int(np.count_nonzero(row_votes))
        self.overlapped_items = int(np.count_nonzero(row_votes > 1))
        self.conflicted_items = int(np.count_nonzero(conflicted))
        self.votes = _votes_per_source(L)
        self.overlap_votes = _votes_in_rows(L, row_votes > 1)
        self.conflict_votes = _votes_in_rows(L, conflicted)
        self.pairs = _source_label_pairs(L)
        self.correct = self.incorrect = None
        if Y is not None:
            gold_of_vote = Y[_row_of_each_vote(L)]
            self.correct, self.incorrect = _correct_incorrect_votes(L, gold_of_vote)

    def merge(self, other: "_VoteCounts") -> "_VoteCounts":
        """Add ``other``'s counts to these (and unite the pairs); returns self."""
        for name in self._SUMMED:
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value + getattr(other, name))
        if len(other.pairs):
            pairs = np.concatenate([self.pairs, other.pairs])
            self.pairs = np.unique(pairs, axis=0)
        return self

    def polarities(self) -> List[Union[int, List[int]]]:
        return _polarities_from_pairs(self.pairs, self.m)

    def coverages(self) -> np.ndarray:
        return self.votes / self.n

    def overlaps(self, normalize_by_coverage: bool) -> np.ndarray:
        if normalize_by_coverage:
            return _fraction(self.overlap_votes, self.votes)
        return self.overlap_votes / self.n

    def conflicts(self, normalize_by_overlaps: bool) -> np.ndarray:
        if normalize_by_overlaps:
            return _fraction(self.conflict_votes, self.overlap_votes)
        return self.conflict_votes / self.n

    def accuracies(self) -> np.ndarray:
        # votes are never 0, so a vote agreeing with gold is a correct one
        return _accuracies(self.correct, self.votes)


def _block_counts(
    block: np.ndarray, Y: Optional[np.ndarray] = None, start: int = 0
) -> _VoteCounts:
    """The ``_VoteCounts`` of one row block of a dask L (validated here)."""
    L = check_label_matrix(block, name="L", allow_empty=True)
    L = L if sparse.issparse(L) else sparse.csr_matrix(L)
    if Y is not None:
        Y = check_label_vector(Y, name="Y", first_item=start)
    return _VoteCounts(L, Y)


def _merge_counts(parts: List[_VoteCounts]) -> _VoteCounts:
    total = parts[0]
    for part in parts[1:]:
        total = total.merge(part)
    return total


def _dask_counts(L: Any, Y: Optional[Labels] = None) -> _VoteCounts:
    """The ``_VoteCounts`` of the dask label matrix ``L [n, m]`` (and gold
    labels ``Y [n]``, dask or in memory), counted block by block on the active
    Dask scheduler; L is never gathered."""
    L = dask_label_matrix(L, name="L")
    aligned = [] if Y is None else [dask_label_vector(Y, "Y", L)]
    return reduce_row_blocks(L, _block_counts, aligned=aligned, combine=_merge_counts)


def _object_array(values: list) -> np.ndarray:
    """A 1-D object array holding ``values`` as they are (lists stay lists)."""
    out = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):  # one entry per source, not per item
        out[i] = value
    return out


def _flatten(values):
    """Turn tensors/arrays of any shape into a flat sequence; leave lists alone."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    if isinstance(values, np.ndarray):
        return values.reshape(-1)
    return values


def single_lf_summary(Y_p: Labels, Y: Optional[Labels] = None) -> pd.DataFrame:
    """``lf_summary`` of one prediction vector ``Y_p [n]`` viewed as ``[n, 1]``."""
    Y_p = check_label_vector(Y_p, name="Y_p")
    return lf_summary(Y_p.reshape(-1, 1), Y=Y)


# ---------------------------------------------------- predictions vs gold
def _gold_and_pred(gold, pred) -> Tuple[np.ndarray, np.ndarray]:
    """Convert ``gold`` and ``pred`` to int64 ``[n]`` arrays of equal length."""
    gold, pred = check_int_vector(gold, "gold"), check_int_vector(pred, "pred")
    if gold.shape[0] != pred.shape[0]:
        raise ValueError(
            f"gold and pred must have the same length; found len(gold)="
            f"{gold.shape[0]} and len(pred)={pred.shape[0]}."
        )
    return gold, pred


def error_buckets(
    gold: Labels, pred: Labels, X: Optional[Sequence] = None
) -> defaultdict:
    """Group items by ``(predicted label, gold label)``.

    Args:
        gold, pred: labels ``[n]``.
        X: optional indexable of n items; when given, buckets hold ``X[i]``
            instead of the index ``i``.

    Returns:
        a ``defaultdict(list)`` keyed by ``(pred, gold)`` tuples of ints, each
        listing its items in order (for binary tasks ``(1, 2)`` holds the false
        positives).
    """
    gold, pred = _gold_and_pred(gold, pred)
    if X is not None and len(X) != gold.shape[0]:
        raise ValueError(
            f"X must have one item per label ({gold.shape[0]}); found {len(X)}."
        )
    buckets = defaultdict(list)
    if gold.size == 0:
        return buckets
    pairs, bucket_of_item, _ = _unique_pairs(pred, gold)
    order = np.argsort(bucket_of_item, kind="stable")
    splits = np.searchsorted(bucket_of_item[order], np.arange(1, len(pairs)))
    for (p, g), items in zip(pairs.tolist(), np.split(order, splits)):
        indices = items.tolist()
        buckets[(p, g)] = indices if X is None else [X[i] for i in indices]
    return buckets


class ConfusionMatrix:
    """Counts of ``(gold, pred)`` label pairs, compiled to a matrix with
    **rows = predicted label** and **columns = gold label**.

    Args:
        null_pred: keep the row of predicted label 0 (abstain) when compiling.
        null_gold: keep the column of gold label 0 (no gold label).
    """

    def __init__(self, null_pred: bool = False, null_gold: bool = False):
        self.counter: Counter = Counter()
        self.mat: Optional[np.ndarray] = None
        self.null_pred = null_pred
        self.null_gold = null_gold

    def __repr__(self) -> str:
        if self.mat is None:
            return (
                f"ConfusionMatrix(null_pred={self.null_pred}, "
                f"null_gold={self.null_gold}) [not compiled]"
            )
        return str(self.mat)

    def add(self, gold: Labels, pred: Labels) -> None:
        """Count the label pairs of ``gold [n]`` and ``pred [n]`` (ints >= 0)."""
        gold, pred = _gold_and_pred(gold, pred)
        for name, labels in (("gold", gold), ("pred", pred)):
            if labels.size and labels.min() < 0:
                raise ValueError(f"{name} must hold labels >= 0; found {labels.min()}.")
        if gold.size == 0:
            return
        pairs, _, counts = _unique_pairs(gold, pred)
        self.counter.update(
            {(g, p): c for (g, p), c in zip(pairs.tolist(), counts.tolist())}
        )

    def compile(self, trim: bool = True) -> np.ndarray:
        """Build, store and return the int matrix ``[K, K]`` (``K`` = largest
        label seen + 1) with ``mat[pred, gold]`` = count. With ``trim`` the row of
        pred 0 is dropped unless ``null_pred`` and the column of gold 0 unless
        ``null_gold``."""
        mat = self._full_matrix()
        if trim:
            mat = mat[self._shown_preds(mat)][:, self._shown_golds(mat)]
        self.mat = mat
        return mat

    def _full_matrix(self) -> np.ndarray:
        if not self.counter:
            raise ValueError(
                "ConfusionMatrix is empty; call add(gold, pred) with at least one "
                "item before compile()."
            )
        pairs = np.array(list(self.counter.keys()), dtype=np.int64)
        counts = np.array(list(self.counter.values()), dtype=np.int64)
        K = int(pairs.max()) + 1
        mat = np.zeros((K, K), dtype=np.int64)
        mat[pairs[:, 1], pairs[:, 0]] = counts
        return mat

    def _shown_preds(self, mat: np.ndarray) -> np.ndarray:
        return np.arange(0 if self.null_pred else 1, mat.shape[0])

    def _shown_golds(self, mat: np.ndarray) -> np.ndarray:
        return np.arange(0 if self.null_gold else 1, mat.shape[1])

    def display(
        self,
        normalize: bool = False,
        indent: int = 0,
        spacing: int = 2,
        decimals: int = 3,
        mark_diag: bool = True,
    ) -> None:
        """Print the matrix: a header of gold labels ``y=<gold>`` and one line
        ``l=<pred>`` per predicted label (the trimmed rows/columns of
        ``compile``).

        With ``normalize`` each entry is divided by its row's total over the
        non-null gold columns, printed with ``decimals`` decimals, and entries
        where pred == gold are marked with ``*`` when ``mark_diag``.
        """
        mat = self._full_matrix()
        preds, golds = self._shown_preds(mat), self._shown_golds(mat)
        if normalize:
            cells = _normalized_cells(mat, preds, golds, decimals, mark_diag)
        else:
            cells = [[str(v) for v in row] for row in mat[np.ix_(preds, golds)]]
        row_labels = [f"l={p}" for p in preds]
        col_labels = [f"y={g}" for g in golds]
        print(_format_table(row_labels, col_labels, cells, indent, spacing))


def _normalized_cells(
    mat: np.ndarray,
    preds: np.ndarray,
    golds: np.ndarray,
    decimals: int,
    mark_diag: bool,
) -> List[List[str]]:
    """Row-normalised entries (by the row total over gold labels >= 1) as text."""
    row_totals = mat[preds, 1:].sum(axis=1, keepdims=True)
    fractions = _fraction(mat[np.ix_(preds, golds)], row_totals)
    diagonal = preds[:, None] == golds[None, :]
    marks = np.where(diagonal & mark_diag, "*", "")
    return [
        [f"{value:.{decimals}f}{mark}" for value, mark in zip(row, row_marks)]
        for row, row_marks in zip(fractions.tolist(), marks.tolist())
    ]


def _format_table(
    row_labels: List[str],
    col_labels: List[str],
    cells: List[List[str]],
    indent: int,
    spacing: int,
) -> str:
    """Right-aligned text table with a header line of column labels."""
    texts = col_labels + [cell for row in cells for cell in row]
    width = max((len(text) for text in texts), default=1)
    label_width = max((len(text) for text in row_labels), default=0)
    gap, pad = " " * spacing, " " * indent
    lines = [
        pad + " " * label_width + "".join(gap + c.rjust(width) for c in col_labels)
    ]
    for label, row in zip(row_labels, cells):
        line = label.ljust(label_width) + "".join(gap + c.rjust(width) for c in row)
        lines.append(pad + line)
    return "\n".join(lines)


def confusion_matrix(
    gold: Labels,
    pred: Labels,
    null_pred: bool = False,
    null_gold: bool = False,
    normalize: bool = False,
    pretty_print: bool = True,
) -> np.ndarray:
    """Confusion matrix of ``pred [n]`` against ``gold [n]``.

    Rows are predicted labels and columns gold labels (1..K-1, plus 0 for
    ``null_pred`` / ``null_gold``). With ``normalize`` the counts are divided by
    ``n`` (all items, including those whose row/column was trimmed). With
    ``pretty_print`` the matrix is also printed.
    """
    gold, pred = _gold_and_pred(gold, pred)
    conf = ConfusionMatrix(null_pred=null_pred, null_gold=null_gold)
    conf.add(gold, pred)
    mat = conf.compile()
    if normalize:
        mat = mat / gold.shape[0]
    if pretty_print:
        conf.display(normalize=normalize)
    return mat
