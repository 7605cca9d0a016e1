"""A linear layer over sparse binary features given as lists of feature ids."""

import math

import torch
import torch.nn as nn

from metal._checks import check_int, check_positive_int


class SparseLinearModule(nn.Module):
    """``W(X).sum(dim=1) + b``: a linear map of a sparse 0/1 feature vector.

    Each row of the input lists the ids of the row's active features, padded
    with ``padding_idx``; the padding row of ``W`` is zero and never updated.
    ``W`` is a sparse ``nn.Embedding``, so train with an optimizer that accepts
    sparse gradients (SGD without weight decay).

    Args:
        embed_size: the output width (e.g. the number of classes).
        vocab_size: the number of feature ids (``0..vocab_size-1``, padding
            included).
        padding_idx: the id used for padding.

    Raises:
        ValueError: for non-positive sizes or a ``padding_idx`` out of range.
    """

    def __init__(self, embed_size: int, vocab_size: int, padding_idx: int = 0):
        super().__init__()
        embed_size = check_positive_int(embed_size, "embed_size")
        vocab_size = check_positive_int(vocab_size, "vocab_size")
        padding_idx = check_int(
            padding_idx,
            "padding_idx",
            minimum=0,
            maximum=vocab_size - 1,
            expected=f"an integer in 0..{vocab_size - 1} (vocab_size={vocab_size})",
        )
        self.vocab_size = vocab_size
        self.padding_idx = padding_idx
        self.W = nn.Embedding(
            vocab_size, embed_size, sparse=True, padding_idx=padding_idx
        )
        self.b = nn.Parameter(torch.empty(embed_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw ``W`` and ``b`` uniformly in ``±1/sqrt(vocab_size)``; zero the
        padding row."""
        bound = 1.0 / math.sqrt(self.vocab_size)
        with torch.no_grad():
            self.W.weight.uniform_(-bound, bound)
            self.W.weight[self.padding_idx].zero_()
            self.b.uniform_(-bound, bound)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Feature ids ``[n, h]`` (integers) -> ``[n, embed_size]``."""
        if not isinstance(X, torch.Tensor) or X.dim() != 2:
            raise ValueError(
                "SparseLinearModule expects feature ids of shape [n, h]; found "
                f"{tuple(getattr(X, 'shape', ()))} ({type(X).__name__})."
            )
        if X.is_floating_point():
            X = X.long()
        return self.W(X).sum(dim=1) + self.b
