"""Synthetic label matrices and bag-of-words features for tests and tutorials.

Label conventions: classes are ``1..k`` and ``0`` means abstain. A label matrix
``L`` has shape ``[n, m]`` (n items, m sources) with ``L[i, j]`` in ``0..k``.

All randomness comes from NumPy's global RNG, so ``np.random.seed(s)`` before a
call makes the result reproducible. Sampling is vectorised over items.
"""

from collections import defaultdict
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from numpy.random import choice, random
from scipy.sparse import csr_matrix

from metal._checks import check_class_balance, check_int, check_int_vector
from metal._lazy import lazy_exports
from metal.synthetic.words1k import vocab1k

__all__ = [
    "logistic_fn",
    "choose_other_label",
    "indpm",
    "SingleTaskTreeDepsGenerator",
    "gaussian_bags_of_words",
    "bags_to_counts",
    "singletask_synthetic",
    "copying_sources",
]


def logistic_fn(x):
    """The logistic function ``1 / (1 + exp(-x))`` (elementwise on arrays)."""
    return 1 / (1 + np.exp(-x))


def choose_other_label(k: int, y: int) -> int:
    """A label drawn uniformly from ``{1..k}`` without ``y`` (needs ``k >= 2``)."""
    other = choice(k - 1) + 1
    return int(other + 1 if other >= y else other)


def indpm(x, y) -> int:
    """``1`` if ``x == y`` else ``-1``."""
    return 1 if x == y else -1


def _check_range(value, name: str) -> Tuple[float, float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be a (min, max) pair of numbers; found {value!r}."
        ) from None
    if not (np.isfinite(low) and np.isfinite(high)) or low > high:
        raise ValueError(
            f"{name} must be a finite (min, max) pair with min <= max; found {value!r}."
        )
    return low, high


def _check_probability(value, name: str) -> float:
    try:
        prob = float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be a number in [0, 1]; found {value!r}."
        ) from None
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1]; found {value!r}.")
    return prob


def _sample_rows(probs: np.ndarray) -> np.ndarray:
    """One categorical draw per row of ``probs [n, c]`` (one uniform per row)."""
    cumulative = np.cumsum(probs, axis=1)
    u = random(probs.shape[0])
    draws = (u[:, None] >= cumulative).sum(axis=1)
    # Guard against rounding leaving the last cumulative value just under u.
    return np.minimum(draws, probs.shape[1] - 1)


class SingleTaskTreeDepsGenerator:
    """Sample a single-task label matrix from sources correlated along a forest.

    Each source ``i`` has class-conditional strengths ``theta[i][y]`` (y in 1..k);
    each dependency edge ``(parent, child)`` has a weight ``theta[(i, j)]``. Given
    ``Y = y`` and its parent's vote ``lp``, source ``j`` votes ``0`` (abstain) with
    ``P_conditional(j, 0, pj, lp, y)``, ``y`` with ``P_conditional(j, y, pj, lp, y)``
    and splits the remaining mass equally among the ``k - 1`` wrong classes.

    Args:
        n: number of items; m: number of sources; k: number of classes.
        class_balance: ``P(Y = y)`` for ``y = 1..k`` (default uniform).
        theta_range: range of the uniform draws of the accuracy strengths.
        edge_prob: probability that source ``i > 0`` gets a parent in ``0..i-1``
            (``1.0`` gives a random tree over all sources, ``0.0`` no edges).
        theta_edge_range: range of the uniform draws of the edge weights.
        **kwargs: ignored.

    Attributes:
        n, m, k; E: list of ``(parent, child)`` edges; parent: ``{child: parent}``;
        theta: ``defaultdict(float)``; p: class balance ``[k]``; L: CSR int matrix
        ``[n, m]`` with values in ``0..k``; Y: int64 ``[n]`` in ``1..k``; c_probs:
        empirical ``P(L_i = l | Y = y)`` as ``[m * (k+1), k]`` where row
        ``i * (k+1) + l`` is source ``i`` voting ``l`` and column ``y - 1`` is
        ``Y = y``.
    """

    def __init__(
        self,
        n: int,
        m: int,
        k: int = 2,
        class_balance: Optional[Sequence[float]] = None,
        theta_range: Tuple[float, float] = (0, 1.5),
        edge_prob: float = 0.0,
        theta_edge_range: Tuple[float, float] = (-1, 1),
        **kwargs,
    ):
        self.n = check_int(n, "n", minimum=1)
        self.m = check_int(m, "m", minimum=1)
        self.k = check_int(k, "k", minimum=1)
        theta_range = _check_range(theta_range, "theta_range")
        theta_edge_range = _check_range(theta_edge_range, "theta_edge_range")
        edge_prob = _check_probability(edge_prob, "edge_prob")

        self._generate_edges(edge_prob)
        self._generate_params(theta_range, theta_edge_range)
        if class_balance is None:
            self.p = np.full(self.k, 1 / self.k)
        else:
            p = check_class_balance(class_balance, self.k)
            # Renormalise: np.random.choice is stricter about the sum than the check.
            self.p = p / p.sum()
        self._generate_label_matrix()
        self._get_conditional_probs()
        self.L = csr_matrix(self.L, dtype=int)

    def _generate_edges(self, edge_prob: float) -> None:
        self.E: List[Tuple[int, int]] = []
        self.parent = {}
        for i in range(self.m):
            if random() < edge_prob and i > 0:
                p_i = int(choice(i))
                self.E.append((p_i, i))
                self.parent[i] = p_i

    def _generate_params(self, theta_range, theta_edge_range) -> None:
        self.theta = defaultdict(float)
        t_min, t_max = theta_range
        for i in range(self.m):
            self.theta[i] = (t_max - t_min) * random(self.k + 1) + t_min
        te_min, te_max = theta_edge_range
        for i, j in self.E:
            w = (te_max - te_min) * random() + te_min
            self.theta[(i, j)] = w
            self.theta[(j, i)] = w

    def _P(self, i: int, li: int, j: int, lj: int, y: int) -> float:
        """Unnormalised weight of source i voting ``li`` given ``Y = y`` and
        source j's vote ``lj``."""
        return np.exp(
            self.theta[i][y] * indpm(li, y) + self.theta[(i, j)] * indpm(li, lj)
        )

    def P_conditional(self, i: int, li: int, j: int, lj: int, y: int) -> float:
        """``_P(i, li, j, lj, y)`` normalised over ``li`` in ``0..k``."""
        total = sum(self._P(i, vote, j, lj, y) for vote in range(self.k + 1))
        return self._P(i, li, j, lj, y) / total

    def _vote_distribution(
        self, j: int, Y: np.ndarray, parent_votes: np.ndarray
    ) -> np.ndarray:
        """Distribution ``[n, k+1]`` of source j's vote for every item.

        ``Y [n]`` holds the true labels and ``parent_votes [n]`` the votes of
        j's parent (ignored when j has none: its edge weight is 0).
        """
        pj = self.parent.get(j, 0)
        w = self.theta[(j, pj)]
        strength = self.theta[j][Y][:, None]
        values = np.arange(self.k + 1)[None, :]
        energy = np.where(values == Y[:, None], strength, -strength) + np.where(
            values == parent_votes[:, None], w, -w
        )
        energy -= energy.max(axis=1, keepdims=True)
        weights = np.exp(energy)
        cond = weights / weights.sum(axis=1, keepdims=True)

        rows = np.arange(Y.shape[0])
        prob_y = cond[rows, Y]
        prob_0 = cond[:, 0]
        dist = np.zeros_like(cond)
        if self.k > 1:
            wrong = np.clip(1 - prob_y - prob_0, 0.0, None) / (self.k - 1)
            dist[:, 1:] = wrong[:, None]
        dist[:, 0] = prob_0
        dist[rows, Y] = prob_y
        return dist

    def _generate_label_matrix(self) -> None:
        self.Y = (choice(self.k, size=self.n, p=self.p) + 1).astype(np.int64)
        self.L = np.zeros((self.n, self.m), dtype=np.int64)
        # A source's parent always has a smaller index, so its votes exist.
        for j in range(self.m):
            parent_votes = self.L[:, self.parent.get(j, 0)]
            dist = self._vote_distribution(j, self.Y, parent_votes)
            self.L[:, j] = _sample_rows(dist)

    def _get_conditional_probs(self) -> None:
        k1 = self.k + 1
        sources = np.arange(self.m)[None, :]
        cells = ((sources * k1 + self.L) * self.k + (self.Y[:, None] - 1)).ravel()
        counts = np.bincount(cells, minlength=self.m * k1 * self.k)
        counts = counts.reshape(self.m * k1, self.k).astype(np.float64)
        class_counts = np.bincount(self.Y - 1, minlength=self.k).astype(np.float64)
        # Classes that never occur get all-zero columns rather than NaN.
        self.c_probs = np.divide(
            counts,
            class_counts[None, :],
            out=np.zeros_like(counts),
            where=class_counts[None, :] > 0,
        )


def _check_bag_size(bag_size) -> Tuple[int, int]:
    try:
        sizes = [int(s) for s in bag_size]
        exact = all(float(s) == int(s) for s in bag_size)
    except (TypeError, ValueError):
        raise ValueError(
            f"bag_size must be a [min, max] pair of ints; found {bag_size!r}."
        ) from None
    if not sizes or not exact or min(sizes) < 0 or min(sizes) >= max(sizes):
        raise ValueError(
            "bag_size must hold ints with 0 <= min < max (lengths are drawn from "
            f"min..max-1); found {bag_size!r}."
        )
    return min(sizes), max(sizes)


def gaussian_bags_of_words(
    Y,
    vocab: Sequence[str] = vocab1k,
    sigma: float = 1,
    bag_size: Sequence[int] = [25, 50],
    **kwargs,
) -> Tuple[List[torch.Tensor], List[str]]:
    """Draw one bag of words per item from a label-specific word distribution.

    Each distinct label gets a distribution over the vocabulary proportional to
    ``|N(0, sigma)|`` draws; bag lengths are uniform in
    ``min(bag_size)..max(bag_size) - 1``; words are drawn i.i.d.

    Args:
        Y: labels ``[n]`` (any ints, e.g. 1..k).
        vocab: the words (length V).
        sigma: standard deviation of the Gaussian word weights (> 0).
        bag_size: ``[min, max)`` range of bag lengths.
        **kwargs: ignored.

    Returns:
        ``(X, items)``: ``X`` a list of n int64 tensors of word indices in
        ``0..V-1``, ``items`` the corresponding space-joined strings.
    """
    Y = check_int_vector(Y, "Y")
    vocab = list(vocab)
    if not vocab:
        raise ValueError("vocab must be a non-empty list of words; found [].")
    try:
        sigma = float(sigma)
    except (TypeError, ValueError):
        raise ValueError(f"sigma must be a positive number; found {sigma!r}.") from None
    if not (np.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a positive number; found {sigma!r}.")
    low, high = _check_bag_size(bag_size)

    V = len(vocab)
    labels = np.unique(Y)
    word_dists = {}
    for label in labels:
        weights = np.abs(np.random.normal(0, sigma, V))
        word_dists[label] = weights / weights.sum()
    lengths = np.random.randint(low, high, size=Y.shape[0])

    bags: List[Optional[np.ndarray]] = [None] * Y.shape[0]
    for label in labels:
        members = np.flatnonzero(Y == label)
        words = choice(V, size=int(lengths[members].sum()), p=word_dists[label])
        pieces = np.split(words, np.cumsum(lengths[members])[:-1])
        for index, piece in zip(members, pieces):
            bags[index] = piece
    X = [torch.from_numpy(bag.astype(np.int64)) for bag in bags]
    items = [" ".join(vocab[w] for w in bag) for bag in bags]
    return X, items


def bags_to_counts(bags: Sequence[torch.Tensor], vocab_size: int) -> torch.Tensor:
    """Word-count matrix of bags of word indices.

    Args:
        bags: n 1-D integer tensors of word indices in ``0..vocab_size-1``.
        vocab_size: V.

    Returns:
        float32 tensor ``[n, V]`` whose entry ``[i, w]`` counts word w in bag i.
    """
    vocab_size = check_int(vocab_size, "vocab_size", minimum=1)
    bags = [torch.as_tensor(bag).reshape(-1).long() for bag in bags]
    counts = torch.zeros(len(bags), vocab_size, dtype=torch.float32)
    if not bags:
        return counts
    words = torch.cat(bags)
    if words.numel() and (words.min() < 0 or words.max() >= vocab_size):
        raise ValueError(
            f"bags must hold word indices in 0..{vocab_size - 1}; found values in "
            f"{int(words.min())}..{int(words.max())}."
        )
    rows = torch.repeat_interleave(
        torch.arange(len(bags)), torch.tensor([len(bag) for bag in bags])
    )
    counts.index_put_((rows, words), torch.ones(words.shape[0]), accumulate=True)
    return counts


def singletask_synthetic(n: int, m: int, k: int, **kwargs):
    """Synthetic single-task data: label matrix plus bag-of-words features.

    ``kwargs`` go to both ``SingleTaskTreeDepsGenerator`` and
    ``gaussian_bags_of_words`` (each ignores what it does not use).

    Returns:
        ``(D, L, X, Y, deps)``: D the n item strings; L the CSR int label matrix
        ``[n, m]``; X the float32 word counts ``[n, V]``; Y int64 labels ``[n]``
        in 1..k; deps the dependency edge list.
    """
    data = SingleTaskTreeDepsGenerator(n, m, k, **kwargs)
    bags, D = gaussian_bags_of_words(data.Y, **kwargs)
    X = bags_to_counts(bags, len(kwargs.get("vocab", vocab1k)))
    return D, data.L, X, data.Y, data.E


# The multi-task generator lives in metal.synthetic.multitask (so single-task
# users never import metal.multitask); it is importable from here too.
__getattr__, __dir__ = lazy_exports(
    __name__,
    globals(),
    {"HierarchicalMultiTaskTreeDepsGenerator": "metal.synthetic.multitask"},
)


def copying_sources(
    n: int,
    m: int,
    k: int = 2,
    copies: Sequence[Tuple[int, int, float]] = (),
    coverage_range: Tuple[float, float] = (0.3, 0.7),
    accuracy_range: Tuple[float, float] = (0.6, 0.85),
    seed: Optional[int] = None,
) -> Tuple[np.ndarray, np.ndarray]:
    """Votes of m sources with planted dependencies: some sources copy others.

    Each source first votes independently given the true class: it votes with
    its coverage (drawn from ``coverage_range``), and a vote is right with its
    accuracy (drawn from ``accuracy_range``), else one of the other k - 1
    classes uniformly. Then for each ``(a, b, p)`` in ``copies`` (in order),
    source b replaces its vote by source a's, errors included, on each item
    where a voted, with probability p. So b depends on a given the class.

    Args:
        n, m, k: items, sources, classes (votes 1..k, 0 = abstain).
        copies: ``(a, b, p)`` triples: b copies a with probability p.
        coverage_range, accuracy_range: ``(min, max)`` of the uniform draws.
        seed: seed of the NumPy generator used (fresh entropy when None).

    Returns:
        ``(L, Y)``: ``L`` int64 ``[n, m]`` in 0..k and ``Y`` int64 ``[n]`` in
        1..k (uniform classes).
    """
    n = check_int(n, "n", minimum=1)
    m = check_int(m, "m", minimum=1)
    k = check_int(k, "k", minimum=2)
    low_c, high_c = _check_range(coverage_range, "coverage_range")
    low_a, high_a = _check_range(accuracy_range, "accuracy_range")
    if low_c < 0 or high_c > 1 or low_a < 0 or high_a > 1:
        raise ValueError(
            "coverage_range and accuracy_range must lie in [0, 1]; found "
            f"{coverage_range!r} and {accuracy_range!r}."
        )
    checked = []
    for triple in copies:
        try:
            a, b, p = triple
        except (TypeError, ValueError):
            raise ValueError(
                f"copies must hold (a, b, p) triples; found {triple!r}."
            ) from None
        a = check_int(a, "copies source a", minimum=0, maximum=m - 1)
        b = check_int(b, "copies source b", minimum=0, maximum=m - 1)
        if a == b:
            raise ValueError(
                f"copies must pair two different sources; found {triple!r}."
            )
        checked.append((a, b, _check_probability(p, "copies probability p")))
    rng = np.random.default_rng(seed)
    Y = rng.integers(1, k + 1, n)
    coverage = rng.uniform(low_c, high_c, m)
    accuracy = rng.uniform(low_a, high_a, m)
    L = np.zeros((n, m), dtype=np.int64)
    for j in range(m):
        wrong = (Y - 1 + rng.integers(1, k, n)) % k + 1
        votes = np.where(rng.random(n) < accuracy[j], Y, wrong)
        L[:, j] = np.where(rng.random(n) < coverage[j], votes, 0)
    for a, b, p in checked:
        copied = (rng.random(n) < p) & (L[:, a] > 0)
        L[:, b] = np.where(copied, L[:, a], L[:, b])
    return L, Y
