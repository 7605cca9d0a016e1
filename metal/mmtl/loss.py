"""Cross-entropy against probabilistic labels, for tasks trained on a label
model's output (``[n, k]`` rows of class probabilities, column ``c`` =
``P(Y = c)`` in the Operation API's 0-indexed convention)."""

from typing import Optional

import torch

from metal.end_model.loss import soft_cross_entropy

__all__ = ["cross_entropy_with_probs"]


def cross_entropy_with_probs(
    input: torch.Tensor,
    target: torch.Tensor,
    weight: Optional[torch.Tensor] = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Cross-entropy of logits ``input [n, k]`` against target probabilities
    ``target [n, k]``.

    Example ``i`` costs ``sum_y target[i, y] * w_y * CE(input[i], y)`` with
    ``w_y = weight[y]`` (1 without weights). ``reduction`` is ``"none"`` (a
    vector ``[n]``), ``"mean"`` (over the ``n`` examples) or ``"sum"``. For
    one-hot targets this equals ``F.cross_entropy`` with the hard labels
    (with weights: its ``reduction="none"`` output, then the mean).

    Raises:
        ValueError: "Keyword 'reduction' must be one of ['none', 'mean', 'sum']"
            or for shapes that differ.
    """
    return soft_cross_entropy(input, target, weight=weight, reduction=reduction)
