"""Ground-truth helpers for experiments with the label model.

``L_aug`` is an indicator matrix ``[n, d]`` (e.g. the one-hot of a label matrix)
and ``Y`` gold labels in 1..k.
"""

from typing import Any, Tuple, Union

import numpy as np
import scipy.sparse as sparse

from metal._checks import (
    FloatArrayLike,
    LabelVectorLike,
    check_float_array,
    check_label_vector,
)

# An indicator matrix ``[n, d]``: dense or scipy.sparse.
IndicatorMatrix = Union[np.ndarray, sparse.spmatrix]


def _check_inputs(
    L_aug: IndicatorMatrix, Y: LabelVectorLike, k: int
) -> Tuple[np.ndarray, np.ndarray]:
    L_aug = np.asarray(L_aug.toarray() if hasattr(L_aug, "toarray") else L_aug)
    if L_aug.ndim != 2:
        raise ValueError(f"L_aug must be 2-D [n, d]; found shape {L_aug.shape}.")
    Y = check_label_vector(Y, name="Y", k=k, allow_abstain=False, n=L_aug.shape[0])
    return L_aug.astype(np.float64), Y


def compute_mu(
    L_aug: IndicatorMatrix, Y: LabelVectorLike, k: int, p: Any
) -> np.ndarray:
    """Empirical ``mu [d, k]``: column y-1 is the mean of the rows of ``L_aug``
    whose gold label is y (``P(column on | Y = y)``). ``p`` is unused."""
    L_aug, Y = _check_inputs(L_aug, Y, k)
    mu = np.zeros((L_aug.shape[1], k))
    for y in range(1, k + 1):
        rows = Y == y
        if rows.any():
            mu[:, y - 1] = L_aug[rows].mean(axis=0)
    return mu


def compute_covariance(
    L_aug: IndicatorMatrix, Y: LabelVectorLike, k: int, p: FloatArrayLike
) -> np.ndarray:
    """The class-conditional part of the overlap matrix:
    ``L_aug^T L_aug / n - mu diag(p) mu^T``."""
    mu = compute_mu(L_aug, Y, k, p)
    L_aug, _ = _check_inputs(L_aug, Y, k)
    p = check_float_array(
        p, "p", expected=f"a class balance of length k={k}", finite=False
    )
    if p.shape != (k,):
        raise ValueError(f"p must have length k={k}; found shape {p.shape}.")
    return L_aug.T @ L_aug / L_aug.shape[0] - mu @ np.diag(p) @ mu.T


def compute_inv_covariance(
    L_aug: IndicatorMatrix, Y: LabelVectorLike, k: int, p: FloatArrayLike
) -> np.ndarray:
    """The inverse of ``compute_covariance(L_aug, Y, k, p)``."""
    return np.linalg.inv(compute_covariance(L_aug, Y, k, p))


def print_matrix(X: Any, decimals: int = 1) -> None:
    """Print each row of ``X`` (anything ``np.asarray`` reads as 2-D) rounded to
    ``decimals``."""
    for row in np.asarray(X):
        print([round(float(x), decimals) for x in row])
