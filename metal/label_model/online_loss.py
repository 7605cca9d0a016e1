"""Online weak supervision: a PyTorch loss that learns the label model as the
training data streams by.

Use it in place of a loss on gold labels::

    criterion = WeakSupervisionLoss(m, k=2, buffer_capacity=1000)
    for inputs, weak_labels in loader:          # weak_labels: [batch, m] votes
        loss = criterion(model(inputs), weak_labels)
        loss.backward()
        optimizer.step()

Each call appends the batch's votes to a ring buffer, refits a ``LabelModel`` on
the buffer every ``update_frequency`` calls (warm-started from the previous fit,
on overlap statistics kept up to date incrementally), turns the batch's votes
into probabilistic labels and returns the soft cross-entropy of the outputs
against them. Votes follow MeTaL's convention: 0 = abstain, 1..k = classes.
"""

import warnings
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from metal._checks import FloatArrayLike, check_class_balance, check_int
from metal.label_model.label_model import PROB_CLIP, LabelModel

# Integer votes ``[batch, m]`` or ``[batch, v, m]`` (a tensor, array or nested lists).
WeakLabels = Union[torch.Tensor, np.ndarray, Sequence[Any]]


class WeakSupervisionLoss(nn.Module):
    """Soft cross-entropy against labels from a label model fitted online.

    Args:
        m: number of weak sources (votes per item).
        k: number of classes.
        buffer_capacity: number of most recent vote rows the label model is
            fitted on.
        update_frequency: refit every this many calls (and on the first call).
        class_balance: optional ``P(Y = y)`` (length k); uniform otherwise.
        deps: optional dependency edges ``(i, j)`` between sources.
        **label_model_config: config of the underlying ``LabelModel`` (e.g.
            ``n_epochs``, ``prec_init``, ``l2``, ``seed``); ``verbose`` defaults
            to False.

    ``forward(outputs, weak_labels)``:
        * ``outputs``: logits ``[batch, k]``; for k = 2 also ``[batch]`` or
          ``[batch, 1]``, the logit of class 1 (MeTaL's positive class). Sequence
          form: ``[batch, v, k]`` (or ``[batch, v]`` / ``[batch, v, 1]`` for k = 2).
        * ``weak_labels``: integer votes ``[batch, m]`` (or ``[batch, v, m]``) in
          0..k, a tensor or array.
        Returns the mean soft cross-entropy over every item (differentiable in
        ``outputs`` only).

    Attributes: ``label_model`` (the current fit), ``buffer_size``,
    ``n_refits``, ``n_calls``, ``buffer`` (the buffered votes, oldest first).
    """

    def __init__(
        self,
        m: int,
        k: int = 2,
        buffer_capacity: int = 100,
        update_frequency: int = 10,
        class_balance: Optional[FloatArrayLike] = None,
        deps: Sequence[Tuple[int, int]] = (),
        **label_model_config: Any,
    ) -> None:
        super().__init__()
        self.m = check_int(m, "m", minimum=1)
        self.k = check_int(k, "k", minimum=2)
        self.buffer_capacity = check_int(buffer_capacity, "buffer_capacity", minimum=1)
        self.update_frequency = check_int(
            update_frequency, "update_frequency", minimum=1
        )
        self.class_balance = (
            None if class_balance is None else check_class_balance(class_balance, k)
        )
        label_model_config.setdefault("verbose", False)
        self.label_model = LabelModel(k=self.k, **label_model_config)
        # Validate deps against m now rather than at the first refit.
        self.label_model.m = self.m
        self.deps = self.label_model._check_deps(deps)
        self._votes = np.zeros((self.buffer_capacity, self.m), dtype=np.int16)
        self._next = 0
        self.buffer_size = 0
        self.n_calls = 0
        self.n_refits = 0
        d = self.m * self.k
        # Co-occurrence counts of the buffered rows' one-hot columns.
        self._counts = np.zeros((d, d), dtype=np.float64)
        # Row v of the table is the one-hot of vote v (row 0, abstain, is zero).
        self._vote_table = np.eye(self.k + 1, dtype=np.float32)[:, 1:]

    # ------------------------------------------------------------- buffer
    @property
    def buffer(self) -> np.ndarray:
        """The buffered vote rows ``[buffer_size, m]``, oldest first."""
        if self.buffer_size < self.buffer_capacity:
            return self._votes[: self.buffer_size].copy()
        return np.concatenate([self._votes[self._next :], self._votes[: self._next]])

    def _one_hot(self, votes: np.ndarray) -> np.ndarray:
        """Source-major one-hot ``[rows, m*k]`` (float32) of vote rows (abstains
        all-zero). Counts of a batch are exact in float32."""
        return np.take(self._vote_table, votes, axis=0).reshape(
            len(votes), self.m * self.k
        )

    def _push(self, votes: np.ndarray) -> None:
        """Append rows to the ring buffer, keeping the overlap counts in step:
        the new rows' outer products are added, the evicted rows' subtracted."""
        votes = votes[-self.buffer_capacity :]
        rows = len(votes)
        positions = (self._next + np.arange(rows)) % self.buffer_capacity
        n_evicted = max(0, self.buffer_size + rows - self.buffer_capacity)
        X_new = self._one_hot(votes)
        self._last_one_hot = X_new
        if n_evicted:
            # The first (capacity - size) new rows fill empty slots; the rest
            # overwrite the oldest rows.
            X_old = self._one_hot(self._votes[positions[rows - n_evicted :]])
            X = np.concatenate([X_new, X_old])
            signed = np.concatenate([X_new, -X_old])
            self._counts += X.T @ signed
        else:
            self._counts += X_new.T @ X_new
        self._votes[positions] = votes
        self._next = (self._next + rows) % self.buffer_capacity
        self.buffer_size = min(self.buffer_capacity, self.buffer_size + rows)

    # -------------------------------------------------------------- refits
    def _refit(self) -> None:
        model = self.label_model
        warm_start = None
        if model.is_trained:
            warm_start = {"mu": model.mu.detach().double().cpu().numpy()}
            if model.inv_form:
                warm_start["Z"] = model.Z.detach().cpu()
        L = self.buffer
        if self.n_refits == 0 or model.deps != self.deps:
            model._set_class_balance(self.class_balance, None)
            model._set_constants(L)
            model._set_dependencies(self.deps)
        model.n = len(L)
        O = self._counts / self.buffer_size
        try:
            model._fit(L, O=O, warm_start=warm_start)
        except ValueError as error:
            if not self.deps:
                raise
            # e.g. a singular O early in the stream: fit without dependencies.
            warnings.warn(
                f"The dependency-aware refit failed ({error}); refitting without "
                "deps on this buffer."
            )
            model._set_dependencies([])
            model._fit(L, O=O)
        self._cache_log_weights()
        self.n_refits += 1

    # ------------------------------------------------------------- forward
    def _check_votes(self, weak_labels: WeakLabels) -> np.ndarray:
        if isinstance(weak_labels, torch.Tensor):
            votes = weak_labels.detach().cpu().numpy()
        else:
            try:
                votes = np.asarray(weak_labels)
            except Exception:
                raise ValueError(
                    "weak_labels must be a tensor or array of integer votes; found "
                    f"{type(weak_labels).__name__}."
                ) from None
        if votes.ndim not in (2, 3) or votes.shape[-1] != self.m:
            raise ValueError(
                f"weak_labels must have shape [batch, m] or [batch, v, m] with "
                f"m={self.m} votes per item; found shape {votes.shape}."
            )
        if votes.dtype.kind not in "iufb":
            raise ValueError(f"weak_labels must be numeric; found dtype {votes.dtype}.")
        if votes.size:
            if votes.dtype.kind == "f" and not np.all(
                np.isfinite(votes) & (votes == np.round(votes))
            ):
                raise ValueError("weak_labels must hold integer votes in 0..k.")
            lo, hi = votes.min(), votes.max()
            if lo < 0 or hi > self.k:
                raise ValueError(
                    f"weak_labels must have values in 0..{self.k} (0 = abstain); "
                    f"found values in {lo:g}..{hi:g}."
                )
        return votes.astype(np.int16)

    def _flat_logits(
        self, outputs: torch.Tensor, lead_shape: Tuple[int, ...]
    ) -> torch.Tensor:
        """Logits ``[items, k]`` (or ``[items]`` single class-1 logits for k=2)."""
        if not isinstance(outputs, torch.Tensor):
            raise ValueError(
                f"outputs must be a tensor of logits; found {type(outputs).__name__}."
            )
        lead = tuple(outputs.shape[: len(lead_shape)])
        if lead != tuple(lead_shape):
            raise ValueError(
                f"outputs and weak_labels must cover the same items: weak_labels "
                f"has leading shape {tuple(lead_shape)} but outputs has shape "
                f"{tuple(outputs.shape)}."
            )
        trailing = tuple(outputs.shape[len(lead_shape) :])
        n_items = int(np.prod(lead_shape))
        if trailing == (self.k,):
            return outputs.reshape(n_items, self.k)
        if self.k == 2 and trailing in ((), (1,)):
            return outputs.reshape(n_items)
        raise ValueError(
            f"outputs must have a last dimension of k={self.k} logits"
            + (" (or one logit of class 1, or none)" if self.k == 2 else "")
            + f"; found outputs of shape {tuple(outputs.shape)}."
        )

    def forward(self, outputs: torch.Tensor, weak_labels: WeakLabels) -> torch.Tensor:
        votes = self._check_votes(weak_labels)
        logits = self._flat_logits(outputs, votes.shape[:-1])
        flat_votes = votes.reshape(-1, self.m)
        if len(flat_votes) == 0:
            raise ValueError("weak_labels must contain at least one item.")
        self._push(flat_votes)
        if self.n_calls % self.update_frequency == 0:
            self._refit()
        self.n_calls += 1
        if len(flat_votes) <= self.buffer_capacity:
            one_hot = self._last_one_hot
        else:
            one_hot = self._one_hot(flat_votes)
        probs = self._probabilistic_labels(flat_votes, one_hot)
        probs = probs.to(device=logits.device, dtype=logits.dtype)
        if logits.dim() == 1:
            return F.binary_cross_entropy_with_logits(logits, probs[:, 0])
        return -(probs * F.log_softmax(logits, dim=1)).sum(dim=1).mean()

    def _probabilistic_labels(
        self, votes: np.ndarray, one_hot: np.ndarray = None
    ) -> torch.Tensor:
        """``[items, k]`` posterior of the current label model (constants).

        Computed in NumPy from the batch's one-hot and the log mu cached at each
        refit: the batch is tiny, and torch's threaded kernels cost more in
        synchronisation than in arithmetic here.
        """
        model = self.label_model
        if model.inv_form and model._blocks:
            with torch.no_grad():
                Lc = torch.from_numpy(votes).to(model._device())
                scores = model._log_scores(Lc, model._log_weights())
                return torch.softmax(scores.double().cpu(), dim=1)
        if one_hot is None:
            one_hot = self._one_hot(votes)
        log_mu, log_prior = self._log_weights
        scores = one_hot @ log_mu + log_prior
        scores -= scores.max(axis=1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(axis=1, keepdims=True)
        return torch.from_numpy(probs)

    def _cache_log_weights(self) -> None:
        """Clipped log mu ``[m*k, k]`` and log p for the batch posteriors."""
        model = self.label_model
        low, high = PROB_CLIP
        mu = np.clip(model.mu.detach().double().cpu().numpy(), low, high)
        with np.errstate(divide="ignore"):
            self._log_weights = (
                np.log(mu).astype(np.float32),
                np.log(model.p).astype(np.float32),
            )
