"""Toy data for the multi-task tutorial (``from utils import ...`` when run
from ``tutorials/``).

Each generator draws ``n`` points uniformly in the square ``[-1, 1]^2`` and
labels them 0/1 (the Operation API's 0-indexed labels), then splits them
80/10/10 into train/valid/test::

    train, valid, test = make_circle_dataset(1000, 1)
    (X_train, Y_train) = train

``X_*`` are float arrays ``[n_split, 2]`` and ``Y_*`` int arrays ``[n_split]``.
Points come from NumPy's global RNG (seed it with ``np.random.seed``) unless a
``seed`` is given; the split always uses ``random_state=123``.
"""

from typing import Callable, Optional, Tuple

import numpy as np
from sklearn.model_selection import train_test_split

Split = Tuple[np.ndarray, np.ndarray]

__all__ = ["make_circle_dataset", "make_inv_circle_dataset", "make_square_dataset"]


def _uniform_points(n: int, seed: Optional[int]) -> np.ndarray:
    rng = np.random if seed is None else np.random.RandomState(seed)
    return rng.uniform(-1.0, 1.0, size=(n, 2))


def _train_valid_test(X: np.ndarray, Y: np.ndarray) -> Tuple[Split, Split, Split]:
    """80% train; the remaining 20% halved into valid and test."""
    X_train, X_rest, Y_train, Y_rest = train_test_split(
        X, Y, test_size=0.2, random_state=123
    )
    X_valid, X_test, Y_valid, Y_test = train_test_split(
        X_rest, Y_rest, test_size=0.5, random_state=123
    )
    return (X_train, Y_train), (X_valid, Y_valid), (X_test, Y_test)


def _make(n: int, label_fn: Callable[[np.ndarray], np.ndarray], seed):
    X = _uniform_points(n, seed)
    return _train_valid_test(X, label_fn(X).astype(np.int64))


def make_circle_dataset(n: int, r: float, seed: Optional[int] = None):
    """Label 1 inside the circle ``x^2 + y^2 < r``, else 0."""
    return _make(n, lambda X: X[:, 0] ** 2 + X[:, 1] ** 2 < r, seed)


def make_inv_circle_dataset(n: int, r: float, seed: Optional[int] = None):
    """Label 1 outside the circle ``x^2 + y^2 < r``, else 0 (circle flipped)."""
    return _make(n, lambda X: X[:, 0] ** 2 + X[:, 1] ** 2 >= r, seed)


def make_square_dataset(n: int, r: float, seed: Optional[int] = None):
    """Label 1 inside the square ``|x|, |y| < r / 2``, else 0."""
    return _make(
        n, lambda X: (np.abs(X[:, 0]) < r / 2) & (np.abs(X[:, 1]) < r / 2), seed
    )
