"""Learning which sources depend on each other from their votes alone.

The method is the robust-PCA structure learning of Varma et al., "Learning
Dependency Structures for Weak Supervision Models" (ICML 2019), on the
statistics the label model already computes (the overlap matrix O, one
chunked pass over L).

Model. Let ``psi`` be the one-hot indicators of the sources' non-abstain votes
(``d = m*k`` columns, source-major) and ``Sigma = Cov(psi)``. In the joint
model of the sources and the latent class Y, the inverse covariance is sparse:
it is non-zero between two sources only if they share a dependency. Y is not
observed, and marginalising it out leaves

    Sigma^-1 = S - Lr

with S sparse (the dependencies among the sources) and Lr positive
semi-definite of rank at most k - 1 (Y's effect). The split is found by the
convex program

    minimise  lambda * ||offdiag(S)||_1 + trace(Lr)
    subject to  S - Lr = Sigma^-1,  Lr >= 0,

solved by ADMM on the inverse covariance scaled to unit diagonal (so that
``lambda`` and the strengths below are unit-free partial correlations). The
strength of a pair of sources is the largest ``|S|`` entry between their
columns; the pairs stronger than a threshold chosen from the data are the
learned dependencies.
"""

from typing import Any, List, Tuple

import numpy as np
import scipy.sparse as sparse
import torch

from metal._checks import check_float_array, check_int
from metal.label_model.label_model import LabelModel
from metal.utils import _one_torch_thread

__all__ = ["dependency_strengths", "dependency_threshold", "learn_dependencies"]

# Scale of the ridge added to the covariance before it is inverted (relative
# to its mean variance): it keeps exact copies and other singular pairs finite
# (they come out as strengths near 1).
_RIDGE = 1e-6

# With fewer candidate pairs than this the spread of the strengths says too
# little, and only ``min_strength`` sets the threshold.
_MIN_PAIRS_FOR_SPREAD = 10


def dependency_strengths(
    L: Any,
    k: int,
    sparsity: float = 0.05,
    max_iter: int = 1000,
    tol: float = 1e-4,
) -> np.ndarray:
    """Strength of the dependency between every pair of sources.

    Args:
        L: the label matrix ``[n, m]`` in any form ``LabelModel.train_model``
            accepts (dense, sparse, pandas, a dask array), votes in 0..k with
            0 = abstain.
        k: the number of classes (votes 1..k).
        sparsity: ``lambda``, the weight of the sparse part's l1 norm relative
            to the trace of the low-rank part, in units of partial
            correlation. Larger values leave fewer, stronger pairs in S.
        max_iter: the most ADMM iterations.
        tol: the relative residual at which ADMM stops.

    Returns:
        float64 ``[m, m]``, symmetric with zero diagonal: entry ``(i, j)`` is
        the largest absolute partial correlation between a vote of source i
        and a vote of source j left in the sparse part, in ``[0, 1]``
        (about 0 for conditionally independent sources, 1 for exact copies).
        A source that never votes has strength 0 with every other.
    """
    sparsity = _non_negative(sparsity, "sparsity")
    max_iter = check_int(max_iter, "max_iter", minimum=1)
    tol = _non_negative(tol, "tol")
    O, m = _overlap_matrix(L, k)
    strengths = np.zeros((m, m))
    mean = np.diag(O)
    active = (mean > 0) & (mean < 1)  # a column with no variance tells nothing
    if m < 2 or active.sum() < 2:
        return strengths
    columns = np.flatnonzero(active)
    sigma = O[np.ix_(columns, columns)] - np.outer(mean[columns], mean[columns])
    sigma[np.diag_indices_from(sigma)] += _RIDGE * np.mean(np.diag(sigma))
    precision = np.linalg.inv(sigma)
    scale = np.sqrt(np.diag(precision))
    sparse_part = _sparse_plus_low_rank(
        precision / np.outer(scale, scale), sparsity, max_iter, tol
    )
    scale = np.sqrt(np.abs(np.diag(sparse_part)))
    scale[scale == 0] = 1.0
    partial = np.abs(sparse_part / np.outer(scale, scale))
    source = columns // k
    np.maximum.at(strengths, (source[:, None], source[None, :]), partial)
    np.fill_diagonal(strengths, 0.0)
    strengths = np.minimum(np.maximum(strengths, strengths.T), 1.0)
    return strengths


def dependency_threshold(
    strengths: np.ndarray, min_strength: float = 0.1, spread: float = 8.0
) -> float:
    """The threshold above which a pair's strength counts as a dependency.

    The rule: most pairs of sources are independent, so the strengths of the
    pairs (``i < j``) form a bulk of estimation noise, and a dependency is an
    outlier above it. The threshold is the bulk's median plus ``spread``
    robust standard deviations (``1.4826 * MAD``), and never below
    ``min_strength`` (a partial correlation below 0.1 changes the label
    model's posteriors little). With fewer than 10 pairs only
    ``min_strength`` applies.

    Args:
        strengths: ``[m, m]`` from ``dependency_strengths``.
        min_strength: the smallest strength ever reported.
        spread: how many robust standard deviations above the median.

    Returns:
        The threshold, a float in ``[min_strength, inf)``.
    """
    min_strength = _non_negative(min_strength, "min_strength")
    spread = _non_negative(spread, "spread")
    strengths = np.asarray(strengths, dtype=np.float64)
    if strengths.ndim != 2 or strengths.shape[0] != strengths.shape[1]:
        raise ValueError(
            "strengths must be a square [m, m] array; found shape "
            f"{list(strengths.shape)}."
        )
    values = strengths[np.triu_indices(strengths.shape[0], 1)]
    if values.size < _MIN_PAIRS_FOR_SPREAD:
        return min_strength
    median = float(np.median(values))
    mad = float(np.median(np.abs(values - median)))
    return max(min_strength, median + spread * 1.4826 * mad)


def learn_dependencies(
    L: Any,
    k: int,
    sparsity: float = 0.05,
    min_strength: float = 0.1,
    spread: float = 8.0,
    max_iter: int = 1000,
    tol: float = 1e-4,
) -> List[Tuple[int, int]]:
    """The pairs of dependent sources, learned from the votes alone.

    Use it as ``LabelModel(k).train_model(L, deps=learn_dependencies(L, k))``.
    It reads only the overlap matrix of L (one chunked pass), splits the
    inverse covariance of the votes into a sparse part (the dependencies) and
    a low-rank part (the latent class) with ``dependency_strengths``, and keeps
    the pairs whose strength is above ``dependency_threshold`` (the median
    strength plus ``spread`` robust standard deviations, at least
    ``min_strength``). The defaults suit typical data (thousands of items or
    more); nothing needs tuning.

    Args:
        L: the label matrix ``[n, m]`` (votes 0..k, 0 = abstain), in any form
            ``LabelModel.train_model`` accepts.
        k: the number of classes.
        sparsity, max_iter, tol: see ``dependency_strengths``.
        min_strength, spread: see ``dependency_threshold``.

    Returns:
        The learned dependencies: ``(i, j)`` source pairs with ``i < j``,
        sorted.
    """
    strengths = dependency_strengths(L, k, sparsity, max_iter, tol)
    threshold = dependency_threshold(strengths, min_strength, spread)
    rows, cols = np.nonzero(np.triu(strengths, 1) > threshold)
    return sorted((int(i), int(j)) for i, j in zip(rows, cols))


def _non_negative(value: Any, name: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a non-negative number; found {value!r}.")
    checked = check_float_array(
        value, name, expected="a non-negative number", minimum=0.0, shape=()
    )
    return float(checked)


def _overlap_matrix(L: Any, k: int) -> Tuple[np.ndarray, int]:
    """``(O, m)``: the label model's overlap matrix of L (validated by it),
    dense (the method inverts it)."""
    model = LabelModel(k=k, verbose=False)
    checked = model._check_L(L)
    model._set_constants(checked)
    O = model._overlap_matrix(checked)
    return (O.toarray() if sparse.issparse(O) else O), model.m


def _sparse_plus_low_rank(
    M: np.ndarray, sparsity: float, max_iter: int, tol: float
) -> np.ndarray:
    """The sparse part S of ``M = S - Lr`` (see the module docstring), by
    ADMM with penalty 1 on the scaled-dual form:

    - S: soft-threshold ``M + Lr - U`` at ``sparsity`` off the diagonal;
    - Lr: project ``S - M + U - I`` onto the PSD cone (eigenvalues clipped
      at 0);
    - U: add the residual ``S - Lr - M``.

    Stops when the residual and the change of Lr are below ``tol`` times
    ``||M||``. Runs in float64 torch on one thread (the matrices are small,
    ``d x d`` with d the number of vote columns, and one thread is the
    fastest for them).
    """
    with _one_torch_thread():
        target_matrix = torch.from_numpy(np.ascontiguousarray(M, dtype=np.float64))
        d = target_matrix.shape[0]
        off = ~torch.eye(d, dtype=torch.bool)
        identity = torch.eye(d, dtype=torch.float64)
        low = torch.zeros_like(target_matrix)
        dual = torch.zeros_like(target_matrix)
        norm = max(float(torch.linalg.norm(target_matrix)), 1e-12)
        S = target_matrix.clone()
        for _ in range(max_iter):
            target = target_matrix + low - dual
            shrunk = torch.sign(target) * torch.clamp(target.abs() - sparsity, min=0)
            S = torch.where(off, shrunk, target)
            step = S - target_matrix + dual - identity
            values, vectors = torch.linalg.eigh((step + step.T) / 2)
            previous = low
            low = (vectors * values.clamp(min=0)) @ vectors.T
            residual = S - low - target_matrix
            dual += residual
            if (
                float(torch.linalg.norm(residual)) <= tol * norm
                and float(torch.linalg.norm(low - previous)) <= tol * norm
            ):
                break
        return S.numpy()
