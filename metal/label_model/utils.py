"""Ground-truth helpers for experiments with the label model.

``L_aug`` is an indicator matrix ``[n, d]`` (e.g. the one-hot of a label matrix)
and ``Y`` gold labels in 1..k.
"""

import numpy as np

from metal._checks import check_label_vector


def _check_inputs(L_aug, Y, k):
    L_aug = np.asarray(L_aug.toarray() if hasattr(L_aug, "toarray") else L_aug)
    if L_aug.ndim != 2:
        raise ValueError(f"L_aug must be 2-D [n, d]; found shape {L_aug.shape}.")
    Y = check_label_vector(Y, name="Y", k=k, allow_abstain=False, n=L_aug.shape[0])
    return L_aug.astype(np.float64), Y


def compute_mu(L_aug, Y, k, p) -> np.ndarray:
    """Empirical ``mu [d, k]``: column y-1 is the mean of the rows of ``L_aug``
    whose gold label is y (``P(column on | Y = y)``). ``p`` is unused."""
    L_aug, Y = _check_inputs(L_aug, Y, k)
    mu = np.zeros((L_aug.shape[1], k))
    for y in range(1, k + 1):
        rows = Y == y
        if rows.any():
            mu[:, y - 1] = L_aug[rows].mean(axis=0)
    return mu


def compute_covariance(L_aug, Y, k, p) -> np.ndarray:
    """The class-conditional part of the overlap matrix:
    ``L_aug^T L_aug / n - mu diag(p) mu^T``."""
    mu = compute_mu(L_aug, Y, k, p)
    L_aug, _ = _check_inputs(L_aug, Y, k)
    p = np.asarray(p, dtype=np.float64)
    if p.shape != (k,):
        raise ValueError(f"p must have length k={k}; found shape {p.shape}.")
    return L_aug.T @ L_aug / L_aug.shape[0] - mu @ np.diag(p) @ mu.T


def compute_inv_covariance(L_aug, Y, k, p) -> np.ndarray:
    """The inverse of ``compute_covariance(L_aug, Y, k, p)``."""
    return np.linalg.inv(compute_covariance(L_aug, Y, k, p))


def print_matrix(X, decimals: int = 1) -> None:
    """Print each row of ``X`` rounded to ``decimals``."""
    for row in np.asarray(X):
        print([round(float(x), decimals) for x in row])
