"""Estimate the class balance P(Y) from unlabeled votes.

Assumes the sources are conditionally independent given Y. The third-order
overlap tensor of the sources' one-hot votes is then a symmetric rank-k tensor,
``O[i, j, l, a, b, c] = sum_y Q[i, a, y] Q[j, b, y] Q[l, c, y]`` over distinct
sources i, j, l, with ``Q[i, a, y] = P(lambda_i = k_0 + a | Y = y) P(Y = y)^(1/3)``;
fitting ``Q`` recovers both the class balance and the sources' conditional
probability tables.
"""

import warnings
from typing import Optional, Union

import numpy as np
import scipy.optimize as optimize
import torch
import torch.nn as nn

from metal._checks import (
    LabelMatrixLike,
    check_int,
    check_label_matrix,
    iter_dense_chunks,
)

# Rows per chunk for the third-order overlap tensor (its chunk is [rows, D^2]).
_TENSOR_CHUNK_ROWS = 2048


class ClassBalanceModel(nn.Module):
    """Estimates ``P(Y)`` and ``P(lambda_i | Y)`` by tensor factorisation.

    Args:
        k: the number of classes (labels 1..k).
        abstains: whether sources may abstain (emit 0). With abstains the
            sources' outputs are ``0..k`` (``k_lf = k + 1`` values), otherwise
            ``1..k`` (``k_lf = k``).
        config: stored, unused.

    After ``train_model``: ``class_balance`` (``[k]``) and ``cond_probs``
    (``[m, k_lf, k]``: row ``a`` is the emitted value ``k_0 + a``, column ``y-1``
    the true class y).
    """

    def __init__(
        self, k: int, abstains: bool = True, config: Optional[dict] = None
    ) -> None:
        super().__init__()
        self.config = config
        self.k = check_int(k, "k", minimum=2)
        self.abstains = bool(abstains)
        self.k_0 = 0 if self.abstains else 1
        self.k_lf = self.k + 1 if self.abstains else self.k
        self.cond_probs = None
        self.class_balance = None

    def _get_overlaps_tensor(self, L: LabelMatrixLike) -> torch.Tensor:
        """``O[i, j, l, a, b, c]``: the fraction of items on which sources i, j, l
        emit ``k_0+a``, ``k_0+b``, ``k_0+c``; float32 ``(m, m, m, k_lf, k_lf, k_lf)``.
        Without abstains, 0 votes are dropped."""
        L = check_label_matrix(L, name="L", k=self.k)
        n, m = L.shape
        D = m * self.k_lf
        total = np.zeros((D * D, D))
        values = self.k_0 + np.arange(self.k_lf)
        for chunk in iter_dense_chunks(L, _TENSOR_CHUNK_ROWS):
            X = (chunk[:, :, None] == values).reshape(len(chunk), D)
            X = X.astype(np.float32)
            pairs = (X[:, :, None] * X[:, None, :]).reshape(len(chunk), D * D)
            total += pairs.T @ X
        O = total.reshape(m, self.k_lf, m, self.k_lf, m, self.k_lf) / n
        return torch.from_numpy(O.transpose(0, 2, 4, 1, 3, 5).copy()).float()

    def get_mask(self, m: int) -> torch.Tensor:
        """Bool tensor ``(m, m, m, k_lf, k_lf, k_lf)``: True where the three
        source indices are pairwise distinct."""
        idx = torch.arange(m)
        i, j, l = idx[:, None, None], idx[None, :, None], idx[None, None, :]
        distinct = (i != j) & (j != l) & (i != l)
        shape = (m, m, m, self.k_lf, self.k_lf, self.k_lf)
        return distinct[:, :, :, None, None, None].expand(shape).contiguous()

    @staticmethod
    def get_loss(O: torch.Tensor, Q: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``||(O - T)[mask]||^2`` with ``T = sum_y Q_y (x) Q_y (x) Q_y``."""
        T = torch.einsum("iay,jby,lcy->ijlabc", Q, Q, Q)
        return torch.sum((O - T)[mask] ** 2)

    def train_model(
        self,
        L: Optional[LabelMatrixLike] = None,
        O: Optional[torch.Tensor] = None,
        lr: float = 1,
        max_iter: int = 1000,
        verbose: bool = False,
    ) -> None:
        """Fit from a label matrix ``L`` ``[n, m]`` (values 0..k) or directly from
        an overlap tensor ``O`` (shape as returned by ``_get_overlaps_tensor``)."""
        if O is not None:
            O = self._check_overlaps_tensor(O)
        elif L is not None:
            O = self._get_overlaps_tensor(L)
        else:
            raise ValueError("L or O required as input.")
        self.m = O.shape[0]
        if self.m < 3:
            raise ValueError(
                f"ClassBalanceModel needs at least 3 sources; found m={self.m}."
            )
        self.mask = self.get_mask(self.m)
        O64, mask = O.double(), self.mask
        self.Q = nn.Parameter(torch.rand(self.m, self.k_lf, self.k).double())
        optimizer = torch.optim.LBFGS(
            [self.Q],
            lr=lr,
            max_iter=max_iter,
            tolerance_grad=1e-12,
            tolerance_change=1e-15,
            history_size=50,
            line_search_fn="strong_wolfe",
        )

        def closure():
            optimizer.zero_grad()
            loss = self.get_loss(O64, self.Q, mask)
            loss.backward()
            if verbose:
                print(f"{loss.item():.8f}")
            return loss

        optimizer.step(closure)
        self._recover_estimates(self.Q.detach().cpu().numpy())

    def _check_overlaps_tensor(
        self, O: Union[torch.Tensor, np.ndarray]
    ) -> torch.Tensor:
        O = torch.as_tensor(O)
        m = O.shape[0] if O.dim() else 0
        expected = (m, m, m, self.k_lf, self.k_lf, self.k_lf)
        if O.dim() != 6 or tuple(O.shape) != expected:
            raise ValueError(
                f"O must have shape (m, m, m, {self.k_lf}, {self.k_lf}, "
                f"{self.k_lf}); found {tuple(O.shape)}."
            )
        return O.float()

    def _recover_estimates(self, q: np.ndarray) -> None:
        """Class balance and conditional tables from the fitted ``Q``, with the
        latent columns ordered to match the true classes."""
        p_y = np.mean(np.abs(q.sum(axis=1)) ** 3, axis=0)
        cps = q * np.power(p_y, -1.0 / 3)[None, None, :]
        col_order = self._column_order(cps)
        self.class_balance = p_y[col_order]
        self.cond_probs = cps[:, :, col_order]

    def _column_order(self, cps: np.ndarray) -> np.ndarray:
        """``col_order[c]``: the latent column of true class c+1, assuming the
        sources are better than random. Each source votes for the column it
        most associates with each emitted class; the most common vote wins, and
        if that is not a permutation an assignment on the average table is used."""
        non_abstain = cps[:, 1:, :] if self.abstains else cps
        per_source = non_abstain.argmax(axis=2)
        orders, counts = np.unique(per_source, axis=0, return_counts=True)
        col_order = orders[np.argmax(counts)]
        if np.array_equal(np.sort(col_order), np.arange(self.k)):
            return col_order
        warnings.warn(
            "The sources disagree on which latent column is which class; ordering "
            "the columns by the average conditional table instead."
        )
        rows, cols = optimize.linear_sum_assignment(
            non_abstain.mean(axis=0), maximize=True
        )
        return cols[np.argsort(rows)]
