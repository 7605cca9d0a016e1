"""Token classification (one label per token), MeTaL v0.5 API.

The head must be a ``MetalModule`` returning ``(logits, attention_mask)``:
logits ``[B, L, k]`` and mask ``[B, L]`` (1 = real token, 0 = padding). Gold
labels are ``[B, L']`` in ``1..k`` (0 = padding / no label), right-padded.
"""

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from metal.end_model.identity_module import IdentityModule
from metal.mmtl.scorer import Scorer
from metal.mmtl.task import StageTask

__all__ = [
    "TokenClassificationTask",
    "tokenwise_accuracy",
    "tokenwise_ce_loss",
    "tokenwise_softmax",
]


def _real_token_positions(mask: torch.Tensor) -> torch.Tensor:
    return mask.reshape(-1) == 1


def tokenwise_ce_loss(
    out: Tuple[torch.Tensor, torch.Tensor], Y_gold: torch.Tensor
) -> torch.Tensor:
    """Mean cross-entropy over the real tokens.

    Args:
        out: ``(logits [B, L, k], mask [B, L])``.
        Y_gold: ``[B, L']`` labels in ``1..k`` (padded; only the first ``L``
            columns are used, or all if shorter).
    """
    logits, mask = out
    length = min(logits.shape[1], Y_gold.shape[1])
    logits, mask, Y_gold = logits[:, :length], mask[:, :length], Y_gold[:, :length]
    keep = _real_token_positions(mask)
    flat_logits = logits.reshape(-1, logits.shape[-1])[keep]
    flat_gold = Y_gold.reshape(-1)[keep].long()
    return F.cross_entropy(flat_logits, flat_gold - 1)


def tokenwise_softmax(out: Tuple[torch.Tensor, torch.Tensor]) -> List[torch.Tensor]:
    """Per-example probabilities: a list of ``[n_real_tokens_i, k]`` tensors."""
    logits, mask = out
    probs = F.softmax(logits, dim=-1)
    return [row[m == 1] for row, m in zip(probs, mask)]


def tokenwise_accuracy(
    gold: Sequence[np.ndarray],
    preds: Sequence[np.ndarray],
    probs: Optional[Sequence[np.ndarray]] = None,
) -> Dict[str, float]:
    """``{"token_acc": mean over examples of the fraction of tokens right}``.

    Gold rows may be padded; each is cut to the length of its prediction.
    """
    per_example = []
    for gold_row, pred_row in zip(gold, preds):
        pred_row = np.asarray(pred_row).reshape(-1)
        gold_row = np.asarray(gold_row).reshape(-1)[: len(pred_row)]
        if len(pred_row):
            per_example.append(float(np.mean(gold_row == pred_row)))
    return {"token_acc": float(np.mean(per_example)) if per_example else 0.0}


class TokenClassificationTask(StageTask):
    """A v0.5 task labelling every token (see the module docstring)."""

    def __init__(
        self,
        name: str,
        input_module: nn.Module = IdentityModule(),
        middle_module: nn.Module = IdentityModule(),
        head_module: nn.Module = IdentityModule(),
        output_hat_func=tokenwise_softmax,
        loss_hat_func=tokenwise_ce_loss,
        loss_multiplier: float = 1.0,
        scorer: Scorer = Scorer(
            custom_metric_funcs={tokenwise_accuracy: ["token_acc"]}
        ),
    ) -> None:
        super().__init__(
            name,
            input_module,
            middle_module,
            head_module,
            output_hat_func,
            loss_hat_func,
            loss_multiplier,
            scorer,
        )
