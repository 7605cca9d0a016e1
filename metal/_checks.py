"""Input validation shared by the public entry points of ``metal``.

Every function raises ``ValueError`` naming the argument, what was expected and
what was found. Label matrices are returned in a compact canonical form: a dense
NumPy array of a narrow integer dtype, or a CSR matrix with the same data dtype
and no stored zeros. Neither form is ever expanded to a float one-hot.
"""

from typing import Any, Iterator, Optional, Sequence, Union

import numpy as np
import scipy.sparse as sparse
import torch

from metal.utils import arraylike_to_numpy

LabelMatrix = Union[np.ndarray, sparse.csr_matrix]

# Rows per chunk when label matrices are processed piecewise.
CHUNK_ROWS = 65536


def _narrow_int_dtype(max_value: int) -> np.dtype:
    for dtype in (np.int8, np.int16, np.int32):
        if max_value <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.int64)


def _check_values(values: np.ndarray, name: str, k: Optional[int]) -> int:
    """Check that ``values`` are finite non-negative integers (<= k); return max."""
    if values.size == 0:
        return 0
    if values.dtype.kind == "b":
        values = values.view(np.uint8)
    if values.dtype.kind not in "iuf":
        raise ValueError(
            f"{name} must hold numeric labels in {{0, 1, ..., k}}; found dtype "
            f"{values.dtype}."
        )
    if values.dtype.kind == "f":
        if not np.all(np.isfinite(values)):
            raise ValueError(
                f"{name} must hold integer labels in {{0, 1, ..., k}}; found NaN or "
                "infinite entries."
            )
        fractional = values != np.floor(values)
        if fractional.any():
            bad = values[fractional].flat[0]
            raise ValueError(
                f"{name} must hold integer labels in {{0, 1, ..., k}}; found the "
                f"fractional value {bad}."
            )
    lo, hi = values.min(), values.max()
    if lo < 0:
        hint = (
            " (-1 is an abstain in other libraries; MeTaL uses 0 for abstain and "
            "1..k for classes)"
            if lo == -1
            else ""
        )
        upper = k if k is not None else "k"
        raise ValueError(
            f"{name} must have values in {{0, 1, ..., {upper}}}; found the negative "
            f"value {lo:g}{hint}."
        )
    if k is not None and hi > k:
        raise ValueError(
            f"{name} must have values in {{0, 1, ..., {k}}}; found the value {hi:g}, "
            f"larger than k={k}."
        )
    return int(hi)


def check_label_matrix(
    L, name: str = "L", k: Optional[int] = None, allow_empty: bool = False
) -> LabelMatrix:
    """Validate a label matrix ``[n, m]`` with entries in ``{0, 1, ..., k}``.

    Accepts dense NumPy arrays (any integer dtype or integral floats), any
    scipy.sparse format, torch tensors and nested lists.

    Returns:
        a dense array of the narrowest integer dtype that holds the labels, or a
        CSR matrix with such data and no explicitly stored zeros.
    """
    if L is None:
        raise ValueError(f"{name} must be a label matrix of shape [n, m]; found None.")
    if isinstance(L, torch.Tensor):
        L = L.detach().cpu()
        L = (L.to_dense() if L.is_sparse else L).numpy()
    if sparse.issparse(L):
        if L.ndim != 2:
            raise ValueError(f"{name} must be 2-D [n, m]; found shape {L.shape}.")
        L = sparse.csr_matrix(L)
        _check_shape(L.shape, name, allow_empty)
        hi = _check_values(L.data, name, k)
        dtype = _narrow_int_dtype(max(hi, k or 0))
        out = sparse.csr_matrix(
            (L.data.astype(dtype), L.indices, L.indptr), shape=L.shape, copy=True
        )
        out.eliminate_zeros()
        out.sort_indices()
        return out
    try:
        arr = np.asarray(L)
    except Exception as exc:  # ragged nested lists and the like
        raise ValueError(
            f"{name} must be a 2-D label matrix; could not convert a "
            f"{type(L).__name__} to an array ({exc})."
        ) from None
    if arr.dtype == object:
        raise ValueError(
            f"{name} must be a 2-D numeric label matrix; found an object array "
            "(ragged rows or non-numeric entries)."
        )
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D label matrix of shape [n, m]; found an array of "
            f"shape {arr.shape}. For a single source use L.reshape(-1, 1)."
        )
    _check_shape(arr.shape, name, allow_empty)
    hi = _check_values(arr, name, k)
    dtype = _narrow_int_dtype(max(hi, k or 0))
    if arr.dtype == dtype:
        return arr
    return arr.astype(dtype)


def _check_shape(shape, name: str, allow_empty: bool) -> None:
    if not allow_empty and (shape[0] == 0 or shape[1] == 0):
        raise ValueError(
            f"{name} must have at least one row and one column; found shape "
            f"{tuple(shape)}."
        )


def iter_dense_chunks(
    L: LabelMatrix, chunk_rows: int = CHUNK_ROWS
) -> Iterator[np.ndarray]:
    """Yield consecutive row blocks of a canonical label matrix as dense arrays."""
    n = L.shape[0]
    for start in range(0, n, chunk_rows):
        block = L[start : start + chunk_rows]
        yield block.toarray() if sparse.issparse(block) else np.asarray(block)


def check_label_vector(
    Y,
    name: str = "Y",
    k: Optional[int] = None,
    allow_abstain: bool = True,
    n: Optional[int] = None,
) -> np.ndarray:
    """Validate a 1-D vector of hard labels; return it as ``int64``.

    Labels must lie in ``1..k`` (or ``0..k`` when ``allow_abstain``).
    """
    if Y is None:
        raise ValueError(f"{name} must be a 1-D array of labels; found None.")
    try:
        arr = arraylike_to_numpy(Y)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} must have {n} labels; found {arr.shape[0]}.")
    if arr.size:
        lo = 0 if allow_abstain else 1
        bad = (arr < lo) | ((arr > k) if k is not None else False)
        if np.any(bad):
            upper = k if k is not None else "k"
            raise ValueError(
                f"{name} must have values in {lo}..{upper}; found the value "
                f"{arr[bad][0]}."
            )
    return arr


def check_class_balance(class_balance, k: int, name: str = "class_balance"):
    """Validate a class balance of length ``k`` summing to 1; return float64."""
    if isinstance(class_balance, torch.Tensor):
        class_balance = class_balance.detach().cpu().numpy()
    try:
        p = np.asarray(class_balance, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be a sequence of {k} probabilities; found "
            f"{class_balance!r}."
        ) from None
    if p.shape[0] != k:
        raise ValueError(f"{name} must have length k={k}; found length {p.shape[0]}.")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError(f"{name} must be non-negative and finite; found {p.tolist()}.")
    if abs(p.sum() - 1.0) > 1e-6:
        raise ValueError(f"{name} must sum to 1; found sum {p.sum():.6g}.")
    return p


def check_int(value, name: str, minimum: Optional[int] = None) -> int:
    """Validate an integer-valued argument."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer; found {value!r}.")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; found {value}.")
    return int(value)


def check_choice(value: Any, choices: Sequence[Any], name: str) -> Any:
    """Return ``value`` if it is one of ``choices``.

    Raises:
        ValueError: ``"Unrecognized <name> option <value>; choose from [...]"``.
    """
    if value not in choices:
        raise ValueError(
            f"Unrecognized {name} option {value!r}; choose from {list(choices)}."
        )
    return value
