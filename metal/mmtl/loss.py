"""Cross-entropy against probabilistic labels, for tasks trained on a label
model's output (``[n, k]`` rows of class probabilities, column ``c`` =
``P(Y = c)`` in the Operation API's 0-indexed convention).

``cross_entropy_with_probs(input, target, weight=None, reduction="mean")`` is
the Operation API's name of ``metal.end_model.loss.soft_cross_entropy``: example
``i`` costs ``sum_y target[i, y] * w_y * CE(input[i], y)`` (``w_y = weight[y]``,
1 without weights); ``reduction`` is ``"none"``, ``"mean"`` or ``"sum"``. For
one-hot targets it equals ``F.cross_entropy`` with the hard labels.
"""

from metal.end_model.loss import soft_cross_entropy

__all__ = ["cross_entropy_with_probs"]

cross_entropy_with_probs = soft_cross_entropy
