"""Cross-entropy against probabilistic (soft) labels."""

from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

REDUCTIONS = ("none", "mean", "sum")


class SoftCrossEntropyLoss(nn.Module):
    """Cross-entropy of logits against probabilistic targets.

    For logits ``input [n, k]`` and target probabilities ``target [n, k]``
    (column ``c`` is ``P(Y = c + 1)``), the loss of example ``i`` is
    ``sum_y target[i, y] * w[y] * -log_softmax(input[i])[y]``. With one-hot
    targets it equals ``nn.CrossEntropyLoss`` exactly.

    Args:
        weight: optional per-class weights ``[k]`` (a float buffer ``weight``).
        reduction: ``"none"`` (a vector ``[n]``), ``"mean"`` (the plain mean over
            the ``n`` examples, not divided by the weights) or ``"sum"``.
    """

    def __init__(
        self, weight: Optional[Sequence[float]] = None, reduction: str = "mean"
    ) -> None:
        super().__init__()
        if weight is not None:
            weight = torch.as_tensor(weight, dtype=torch.float32)
        self.register_buffer("weight", weight)
        self.reduction = reduction

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return soft_cross_entropy(input, target, self.weight, self.reduction)


def soft_cross_entropy(
    input: torch.Tensor,
    target: torch.Tensor,
    weight: Optional[torch.Tensor] = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """The loss of ``SoftCrossEntropyLoss`` as a function (see there)."""
    if reduction not in REDUCTIONS:
        raise ValueError(
            f"Keyword 'reduction' must be one of {list(REDUCTIONS)}; found "
            f"{reduction!r}."
        )
    if input.dim() != 2 or target.shape != input.shape:
        raise ValueError(
            "SoftCrossEntropyLoss needs logits and target probabilities of the "
            f"same shape [n, k]; found {tuple(input.shape)} and "
            f"{tuple(target.shape)}."
        )
    # torch's cross-entropy with probability targets computes exactly this
    # (per row: products, then a row sum, so it equals nn.CrossEntropyLoss for
    # one-hot targets; "mean" divides by n whatever the weights).
    if weight is not None and weight.dtype != input.dtype:
        weight = weight.to(input.dtype)
    if target.dtype != input.dtype:
        target = target.to(input.dtype)
    return F.cross_entropy(input, target, weight=weight, reduction=reduction)
