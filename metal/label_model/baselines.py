"""Baseline label models: random, majority class and majority vote.

They share the LabelModel interface (``train_model``, ``predict_proba``,
``predict``, ``score``) but ignore the sources' accuracies and dependencies.
Given a ``dask.array.Array`` L, ``predict_proba`` returns a lazy float64 dask
array ``[n, k]`` with L's row chunks (see ``metal._dask``).
"""

from typing import Any, Callable

import numpy as np
import torch

from metal._checks import (
    FloatArrayLike,
    LabelMatrixLike,
    check_class_balance,
    check_label_matrix,
    iter_dense_chunks,
)
from metal._dask import dask_label_matrix, is_dask_array, map_row_blocks
from metal.label_model.label_model import LabelModel


class RandomVoter(LabelModel):
    """Predicts random probabilities (NumPy's global RNG), ignoring the votes."""

    def train_model(self, *args: Any, **kwargs: Any) -> None:
        """Nothing to learn."""
        self.is_trained = True

    def predict_proba(self, L: LabelMatrixLike) -> np.ndarray:
        """Random rows of ``[n, k]`` probabilities (only ``L``'s length is used).

        For a dask L: a lazy array whose blocks draw from ``RandomState((seed,
        first row))``, with one seed drawn from NumPy's global RNG here (the
        same values every time it is computed)."""
        if is_dask_array(L):
            seed = int(np.random.randint(2**31))
            return _lazy_rows(L, self.k, _random_rows, self.k, seed)
        n = _n_rows(L)
        Y_p = np.random.rand(n, self.k)
        return Y_p / Y_p.sum(axis=1, keepdims=True)

    def _get_extra_state_dict(self) -> dict:
        return {"seed": self.seed, "k": self.k, "is_trained": True}

    def _set_extra_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)


class MajorityClassVoter(RandomVoter):
    """Predicts the majority class of a given class balance for every item."""

    def train_model(self, balance: FloatArrayLike, *args: Any, **kwargs: Any) -> None:
        """Store ``balance``: ``P(Y = y)``, length k, summing to 1."""
        self.balance = check_class_balance(balance, self.k, name="balance")
        self.is_trained = True

    def predict_proba(self, L: LabelMatrixLike) -> np.ndarray:
        """``[n, k]`` rows one-hot on the majority class (uniform over ties)."""
        if getattr(self, "balance", None) is None:
            raise ValueError(
                "MajorityClassVoter needs a class balance; call "
                "train_model(balance) first."
            )
        top = (self.balance == self.balance.max()).astype(np.float64)
        if is_dask_array(L):
            return _lazy_rows(L, self.k, _repeated_row, top / top.sum())
        n = _n_rows(L)
        return np.tile(top / top.sum(), (n, 1))

    def _get_extra_state_dict(self) -> dict:
        state = super()._get_extra_state_dict()
        if getattr(self, "balance", None) is not None:
            state["balance"] = self.balance.tolist()
        return state

    def _set_extra_state_dict(self, state: dict) -> None:
        state = dict(state)
        balance = state.pop("balance", None)
        super()._set_extra_state_dict(state)
        self.balance = None if balance is None else np.asarray(balance, np.float64)


class MajorityLabelVoter(RandomVoter):
    """Majority vote over the non-abstaining sources of each item.

    A clear majority gives a one-hot row; a tie spreads the mass equally over
    the tied classes; an item on which every source abstains gets ``1/k``.
    """

    def predict_proba(self, L: LabelMatrixLike) -> np.ndarray:
        """``[n, k]`` float64 vote shares of the top classes (see class doc)."""
        if is_dask_array(L):
            return _lazy_rows(L, self.k, _dask_majority_shares, self.k)
        return _majority_shares(check_label_matrix(L, name="L", k=self.k), self.k)


def _majority_shares(L: Any, k: int) -> np.ndarray:
    """``[n, k]`` float64: per item, 1/t on each of its t most voted classes
    (all k when every source abstains). ``L``: a validated label matrix."""
    out = []
    for chunk in iter_dense_chunks(L):
        Lc = torch.from_numpy(chunk)
        counts = torch.stack([(Lc == y).sum(dim=1) for y in range(1, k + 1)], 1)
        top = counts == counts.max(dim=1, keepdim=True).values
        top = top.double()
        out.append(top / top.sum(dim=1, keepdim=True))
    return torch.cat(out).numpy() if out else np.zeros((0, k))


def _dask_majority_shares(block: np.ndarray, k: int, start: int = 0) -> np.ndarray:
    """``_majority_shares`` of one row block of a dask L, validated first."""
    block = check_label_matrix(block, name="L", k=k, allow_empty=True)
    return _majority_shares(block, k)


def _random_rows(L: np.ndarray, k: int, seed: int, start: int = 0) -> np.ndarray:
    rng = np.random.RandomState([seed, start % 2**32, start // 2**32])
    Y_p = rng.rand(L.shape[0], k)
    return Y_p / Y_p.sum(axis=1, keepdims=True)


def _repeated_row(L: np.ndarray, row: np.ndarray, start: int = 0) -> np.ndarray:
    return np.tile(row, (L.shape[0], 1))


def _lazy_rows(L: Any, k: int, block_fn: Callable[..., np.ndarray], *args: Any) -> Any:
    """The lazy float64 ``[n, k]`` dask array of ``block_fn(block, *args,
    start=first_row)`` over the row blocks of the dask label matrix ``L``."""
    L = dask_label_matrix(L, name="L")
    return map_row_blocks(L, block_fn, *args, dtype=np.float64, width=k)


def _n_rows(L: Any) -> int:
    if L is None:
        raise ValueError("L must be a label matrix [n, m]; found None.")
    shape = getattr(L, "shape", None)
    if shape is None:
        return len(L)
    if len(shape) == 0:
        raise ValueError(f"L must be a label matrix [n, m]; found shape {shape}.")
    return int(shape[0])
