"""Helpers of the Operation-based multi-task API: batching ragged tensors,
turning probabilities into predictions, filtering labels, metric tables.

Label convention of this module (the Operation API's): classes are ``0..k-1``
and ``-1`` means "no label" / abstain.
"""

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
import torch

from metal._checks import check_choice
from metal.labels import ZERO_BASED, break_ties
from metal.utils import move_to_device as _move_to_device
from metal.utils import padded_tensor

TIE_BREAK_POLICIES = ("random", "true-random", "abstain")

__all__ = [
    "collect_flow_outputs_by_suffix",
    "filter_labels",
    "list_to_tensor",
    "metrics_dict_to_dataframe",
    "move_to_device",
    "pad_batch",
    "preds_to_probs",
    "probs_to_preds",
    "to_int_label_array",
]


# ------------------------------------------------------------------ batching
def list_to_tensor(item_list: List[torch.Tensor]) -> torch.Tensor:
    """Combine per-example tensors into one batch tensor.

    * all items 0-dim: stacked to ``[B]``;
    * all items of one shape and not 1-D: stacked to ``[B, ...]``;
    * otherwise each item is flattened to 1-D and right-padded with 0 to the
      longest, giving ``[B, max_len]`` (equal-length 1-D items are simply
      stacked this way).
    """
    if not item_list:
        raise ValueError("list_to_tensor needs at least one tensor.")
    first = item_list[0]
    if all(item.dim() == 0 for item in item_list):
        return torch.stack(item_list, dim=0)
    if first.dim() != 1 and all(item.shape == first.shape for item in item_list):
        return torch.stack(item_list, dim=0)
    flat = [item.reshape(-1) for item in item_list]
    if all(item.shape[0] == flat[0].shape[0] for item in flat):
        return torch.stack(flat, dim=0)
    return pad_batch(flat)[0]


def pad_batch(
    batch: List[torch.Tensor],
    max_len: int = 0,
    pad_value: int = 0,
    left_padded: bool = False,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Pad 1-D tensors of unequal length into ``[B, L]``.

    ``L`` is the longest item's length, or ``max_len`` when ``0 < max_len <``
    that length (right padding keeps an over-long item's first ``L`` values,
    left padding its last ``L``, aligned right).

    Returns:
        ``(padded, mask)``; ``mask`` has ``padded``'s dtype and is 1 wherever
        ``padded`` equals ``pad_value`` (genuine values equal to ``pad_value``
        included).
    """
    longest = max(int(item.shape[0]) for item in batch)
    width = max_len if 0 < max_len < longest else longest
    padded = padded_tensor(
        list(batch), pad_idx=pad_value, left_padded=left_padded, max_len=width
    )
    mask = torch.eq(padded, pad_value).to(padded.dtype)
    return padded, mask


def move_to_device(obj: Any, device: int = -1) -> Any:
    """Move tensors (inside dicts, lists, tuples) to ``cuda:<device>``; a
    negative device, or no CUDA, leaves ``obj`` unchanged."""
    return _move_to_device(obj, device)


def collect_flow_outputs_by_suffix(
    output_dict: Mapping[str, Any], suffix: str
) -> List[torch.Tensor]:
    """The values of ``output_dict`` whose key ends with ``suffix``, by sorted key."""
    return [output_dict[key] for key in sorted(output_dict) if key.endswith(suffix)]


def metrics_dict_to_dataframe(metrics_dict: Dict[str, float]) -> pd.DataFrame:
    """A table with columns ``label, dataset, split, metric, score`` from
    ``{"label/dataset/split/metric": score}``."""
    rows = []
    for name, score in metrics_dict.items():
        parts = name.split("/")
        if len(parts) != 4:
            raise ValueError(
                "Metric names must have the form 'label/dataset/split/metric'; "
                f"found {name!r}."
            )
        rows.append([*parts, score])
    return pd.DataFrame(rows, columns=["label", "dataset", "split", "metric", "score"])


# ----------------------------------------------------------- label helpers
# The Operation API's tie policies, as ``metal.labels.break_ties`` names them.
_POLICIES = {"random": "hash", "true-random": "random", "abstain": "abstain"}


def probs_to_preds(
    probs: np.ndarray, tie_break_policy: str = "random", tol: float = 1e-5
) -> np.ndarray:
    """Predicted classes ``[n]`` (``0..k-1``) from probabilities ``[n, k]``.

    Columns within ``tol`` of a row's maximum are tied. Ties are broken by
    ``tie_break_policy``: ``"random"`` picks deterministically from a hash of
    the row index, ``"true-random"`` uniformly with NumPy's global RNG,
    ``"abstain"`` predicts ``-1`` (``metal.labels.break_ties``).
    """
    probs = np.asarray(probs)
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise ValueError(
            f"probs must be an [n, k] array with k >= 2; found shape {probs.shape}."
        )
    check_choice(tie_break_policy, TIE_BREAK_POLICIES, "tie_break_policy")
    return break_ties(probs, _POLICIES[tie_break_policy], ZERO_BASED, tol)


def preds_to_probs(preds: np.ndarray, num_classes: int) -> np.ndarray:
    """One-hot rows ``[n, num_classes]`` from predictions ``[n]`` in ``0..k-1``."""
    preds = np.asarray(preds).reshape(-1)
    if np.any(preds < 0):
        raise ValueError("preds_to_probs cannot convert negative (abstain) labels.")
    return np.eye(num_classes)[preds.astype(np.int64)]


def to_int_label_array(X: Any, flatten_vector: bool = True) -> np.ndarray:
    """Labels as an int array (``[n]`` when ``flatten_vector``).

    Raises:
        ValueError: "Input contains at least one non-integer value." or "Input
            could not be converted to 1d np.array".
    """
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    X = np.asarray(X)
    if X.dtype.kind not in "iub":
        try:
            as_float = X.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError("Input contains at least one non-integer value.") from None
        if not np.all(np.equal(np.mod(as_float, 1), 0)):
            raise ValueError("Input contains at least one non-integer value.")
    X = X.astype(np.int64)
    if flatten_vector:
        X = np.squeeze(X)
        if X.ndim == 0:
            X = X.reshape(1)
        if X.ndim != 1:
            raise ValueError("Input could not be converted to 1d np.array")
    return X


def filter_labels(
    label_dict: Dict[str, Optional[np.ndarray]], filter_dict: Dict[str, List[int]]
) -> Dict[str, Optional[np.ndarray]]:
    """Drop the rows where any array named in ``filter_dict`` holds one of its
    listed values; arrays that are None stay None."""
    keep = None
    for name, values in filter_dict.items():
        array = label_dict.get(name)
        if array is None:
            continue
        rows = np.asarray(array)
        hit = np.isin(rows, list(values))
        if hit.ndim > 1:
            hit = hit.reshape(hit.shape[0], -1).any(axis=1)
        keep = ~hit if keep is None else keep & ~hit
    if keep is None:
        return dict(label_dict)
    return {
        name: None if array is None else np.asarray(array)[keep]
        for name, array in label_dict.items()
    }


def _stack_rows(rows: Sequence[Any]) -> Any:
    """``np.stack`` of per-example arrays when they share a shape, else the list."""
    arrays = [np.asarray(row) for row in rows]
    if arrays and all(a.shape == arrays[0].shape for a in arrays):
        return np.stack(arrays)
    return arrays
