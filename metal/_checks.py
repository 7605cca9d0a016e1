"""Input validation shared by the public entry points of ``metal``.

Every function raises ``ValueError`` naming the argument, what was expected and
what was found; the ``is_*`` predicates only answer. Label matrices are returned
in a compact canonical form: a dense NumPy array of a narrow integer dtype, or a
CSR matrix with the same data dtype and no stored zeros. Neither form is ever
expanded to a float one-hot.

The checks, by kind:

* scalars: ``is_int``, ``is_number``, ``check_int``, ``check_positive_int``,
  ``check_choice``;
* float arrays: ``check_float_array``, ``check_class_balance``;
* index pairs (dependencies, task-graph edges): ``check_pairs``;
* label matrices: ``check_label_matrix`` (and ``iter_dense_chunks``);
* label vectors: ``arraylike_to_numpy``, ``check_int_vector``,
  ``check_label_vector``, ``labels_to_tensor``, ``check_train_labels``,
  ``check_gold_labels``;
* multi-task labels: ``check_task_list``, ``check_feasible_rows``.

This module imports nothing else of ``metal``, so every layer can use it.
"""

import numbers
from typing import Any, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import scipy.sparse as sparse
import torch

# The canonical label matrix ``check_label_matrix`` returns.
LabelMatrix = Union[np.ndarray, sparse.csr_matrix]

# What the checks accept, for the hints of public signatures: a label matrix
# ``[n, m]`` (dense, any scipy.sparse format, a tensor or nested lists), a label
# vector ``[n]`` and a number or array of floats.
LabelMatrixLike = Union[
    np.ndarray, sparse.spmatrix, torch.Tensor, Sequence[Sequence[float]]
]
LabelVectorLike = Union[np.ndarray, torch.Tensor, sparse.spmatrix, Sequence[float]]
FloatArrayLike = Union[float, np.ndarray, torch.Tensor, Sequence[float]]

# Rows per chunk when label matrices are processed piecewise.
CHUNK_ROWS = 65536

# Rows compared at once against a feasible set (bounds the [rows, k, t] mask).
FEASIBLE_CHUNK_ROWS = 16384

# Tolerance on the row sums of probabilistic labels.
ROW_SUM_TOLERANCE = 1e-4


def _short_repr(value: Any, limit: int = 80) -> str:
    """``repr(value)``, or its type name when the repr is long (big arrays)."""
    text = repr(value)
    return text if len(text) <= limit else f"a {type(value).__name__}"


def _tensor_to_numpy(values: torch.Tensor) -> np.ndarray:
    """A tensor (any device, sparse or dense) as a dense NumPy array."""
    values = values.detach().cpu()
    return (values.to_dense() if values.is_sparse else values).numpy()


def _plain(values: Any) -> Any:
    """Tensors (any device) as NumPy arrays and sparse matrices as dense ones;
    anything else unchanged (for ``np.asarray`` to read)."""
    if isinstance(values, torch.Tensor):
        return _tensor_to_numpy(values)
    if sparse.issparse(values):
        return values.toarray()
    return values


# ================================================================ scalars
def is_int(value: Any) -> bool:
    """Whether ``value`` is an integer (Python or NumPy), booleans excluded."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """Whether ``value`` is a real number (int or float, Python or NumPy),
    booleans excluded; NaN and infinities count as numbers."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _bounds_text(minimum: Optional[float], maximum: Optional[float]) -> str:
    if minimum is not None and maximum is not None:
        return f"in {minimum}..{maximum}"
    if minimum is not None:
        return f">= {minimum}"
    if maximum is not None:
        return f"<= {maximum}"
    return ""


def check_int(
    value: Any,
    name: str,
    minimum: Optional[int] = None,
    maximum: Optional[int] = None,
    allow_none: bool = False,
    expected: Optional[str] = None,
) -> Optional[int]:
    """Validate an integer argument (``minimum <= value <= maximum`` when given).

    Python and NumPy integers are accepted, booleans and integral floats are
    not. ``None`` passes through when ``allow_none``.

    Args:
        expected: what the argument must be, for the messages (e.g. ``"a task
            index in 0..3"``); by default built from the bounds (``"an integer
            >= 1"``).

    Returns:
        the value as a Python ``int`` (or None).

    Raises:
        ValueError: ``"<name> must be <expected>; found <value>."`` (an
            out-of-range value of a plain ``check_int(value, name, minimum=1)``
            reads ``"<name> must be >= 1; found 0."``).
    """
    if value is None and allow_none:
        return None
    bounds = _bounds_text(minimum, maximum)
    none = "None or " if allow_none else ""
    wanted = none + (expected or ("an integer" + (f" {bounds}" if bounds else "")))
    if not is_int(value):
        raise ValueError(f"{name} must be {wanted}; found {value!r}.")
    if (minimum is not None and value < minimum) or (
        maximum is not None and value > maximum
    ):
        if not (expected or allow_none):
            wanted = bounds
        raise ValueError(f"{name} must be {wanted}; found {value}.")
    return int(value)


def check_positive_int(
    value: Any, name: str, allow_none: bool = False
) -> Optional[int]:
    """``check_int(value, name, minimum=1)``, reading ``"<name> must be a
    positive integer; found <value>."`` on failure."""
    return check_int(
        value, name, minimum=1, allow_none=allow_none, expected="a positive integer"
    )


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


# ============================================================ float arrays
def _shape_text(shape: Sequence[Optional[int]]) -> str:
    dims = ["*" if size is None else str(size) for size in shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def check_float_array(
    values: Any,
    name: str,
    expected: str = "numeric (a number or an array of numbers)",
    finite: bool = True,
    minimum: Optional[float] = None,
    maximum: Optional[float] = None,
    allow_empty: bool = True,
    shape: Optional[Sequence[Optional[int]]] = None,
) -> np.ndarray:
    """Convert ``values`` to a float64 NumPy array and validate it.

    Accepts numbers, (nested) sequences, NumPy arrays, torch tensors (any
    device) and scipy.sparse matrices (densified).

    Args:
        expected: what ``values`` must be, for the message when it is None or
            not numeric.
        finite: refuse NaN and infinite entries.
        minimum, maximum: inclusive bounds on every entry.
        allow_empty: accept an array without entries.
        shape: the required shape; ``None`` entries match any size.

    Raises:
        ValueError: naming ``name``, what was expected and what was found.
    """
    if values is None:
        raise ValueError(f"{name} must be {expected}; found None.")
    try:
        arr = np.asarray(_plain(values), dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be {expected}; found {_short_repr(values)}."
        ) from None
    if shape is not None and (
        arr.ndim != len(shape)
        or any(want is not None and want != got for want, got in zip(shape, arr.shape))
    ):
        raise ValueError(
            f"{name} must have shape {_shape_text(shape)}; found shape {arr.shape}."
        )
    if arr.size == 0:
        if not allow_empty:
            raise ValueError(
                f"{name} must not be empty; found an array of shape {arr.shape}."
            )
        return arr
    if finite and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite; found NaN or infinite values.")
    low = minimum is not None and np.any(arr < minimum)
    high = maximum is not None and np.any(arr > maximum)
    if low or high:
        bad = arr[arr < minimum][0] if low else arr[arr > maximum][0]
        if minimum == 0 and maximum is None:
            wanted = "non-negative"
        elif minimum is not None and maximum is not None:
            wanted = f"in [{minimum}, {maximum}]"
        else:
            wanted = f">= {minimum}" if minimum is not None else f"<= {maximum}"
        raise ValueError(f"{name} must be {wanted}; found the value {bad:g}.")
    return arr


def check_class_balance(class_balance: Any, k: int, name: str = "class_balance"):
    """Validate a class balance of length ``k`` summing to 1; return float64."""
    p = check_float_array(
        class_balance,
        name,
        expected=f"a sequence of {k} probabilities",
        finite=False,
    ).reshape(-1)
    if p.shape[0] != k:
        raise ValueError(f"{name} must have length k={k}; found length {p.shape[0]}.")
    p = check_float_array(p, name, minimum=0)
    if abs(p.sum() - 1.0) > 1e-6:
        raise ValueError(f"{name} must sum to 1; found sum {p.sum():.6g}.")
    return p


# ============================================================== index pairs
def check_pairs(
    pairs: Any,
    name: str,
    n: int,
    item: str = "index",
    pair: str = "(i, j)",
    n_name: str = "n",
) -> List[Tuple[int, int]]:
    """Validate a sequence of pairs of distinct indices in ``0..n-1``.

    Args:
        pairs: e.g. ``[(0, 1), (1, 3)]`` (any iterable of length-2 iterables).
        name: the argument's name.
        n: the number of things indexed.
        item: what an index names (``"source"``, ``"task"``), for messages.
        pair: how a pair reads (``"(i, j)"``, ``"(parent, child)"``).
        n_name: how ``n`` is called (``"m"``, ``"t"``).

    Returns:
        the pairs as a list of ``(int, int)`` tuples.

    Raises:
        ValueError: for a non-iterable, a pair of another length, an index
            that is not an integer in ``0..n-1``, or a self-loop.
    """
    try:
        items = [tuple(entry) for entry in pairs]
    except TypeError:
        raise ValueError(
            f"{name} must be a sequence of {pair} pairs of {item} indices; found "
            f"{_short_repr(pairs)}."
        ) from None
    checked = []
    for entry in items:
        if len(entry) != 2:
            raise ValueError(
                f"{name} must contain {pair} pairs of {item} indices; found the "
                f"entry {entry!r}."
            )
        for index in entry:
            if not (is_int(index) and 0 <= index < n):
                raise ValueError(
                    f"{name} must name {item}s 0..{n - 1} ({n_name}={n}); found "
                    f"{item} {index!r} in the pair {entry!r}."
                )
        if entry[0] == entry[1]:
            raise ValueError(
                f"{name} must join two different {item}s; found the self-loop "
                f"{entry!r}."
            )
        checked.append((int(entry[0]), int(entry[1])))
    return checked


# ============================================================ label matrices
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
        L = _tensor_to_numpy(L)
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


# =========================================================== label vectors
def arraylike_to_numpy(array_like: Any) -> np.ndarray:
    """Convert a 1-D array-like of integer labels to an ``int64`` NumPy array.

    Accepts lists, tuples, NumPy arrays, torch tensors (any device) and
    scipy.sparse matrices. ``[n, 1]`` and ``[1, n]`` inputs are flattened.

    Raises:
        ValueError: if the input is not 1-D (strings and matrices included) or
            holds non-integral / non-finite values.
    """
    if isinstance(array_like, torch.Tensor):
        arr = array_like.detach().cpu().numpy()
    elif sparse.issparse(array_like):
        arr = array_like.toarray()
    elif isinstance(array_like, np.ndarray):
        arr = array_like
    else:
        arr = np.array(array_like)

    if arr.ndim > 1 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise ValueError(
            f"Expected a 1-D array of labels; found an input of shape {arr.shape} "
            f"(type {type(array_like).__name__})."
        )
    if arr.dtype.kind in "iub":
        return arr.astype(np.int64)
    if arr.dtype.kind != "f":
        raise ValueError(
            f"Expected numeric integer labels; found dtype {arr.dtype} "
            f"(type {type(array_like).__name__})."
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError("Expected integer labels; found NaN or infinite values.")
    if np.any(arr != np.round(arr)):
        bad = arr[arr != np.round(arr)][0]
        raise ValueError(
            f"Expected integer labels; found the non-integral value {bad}."
        )
    return arr.astype(np.int64)


def check_int_vector(values: Any, name: str, n: Optional[int] = None) -> np.ndarray:
    """Validate a 1-D vector of integers (any sign; see ``arraylike_to_numpy``
    for the accepted forms) of length ``n`` when given; return it as ``int64``.
    """
    if values is None:
        raise ValueError(f"{name} must be a 1-D array of integer labels; found None.")
    try:
        arr = arraylike_to_numpy(values)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} must have {n} labels; found {arr.shape[0]}.")
    return arr


def check_label_vector(
    Y: Any,
    name: str = "Y",
    k: Optional[int] = None,
    allow_abstain: bool = True,
    n: Optional[int] = None,
) -> np.ndarray:
    """Validate a 1-D vector of hard labels; return it as ``int64``.

    Labels must lie in ``1..k`` (or ``0..k`` when ``allow_abstain``); without
    ``k`` only the lower bound is checked.
    """
    arr = check_int_vector(Y, name, n=n)
    if arr.size:
        lo = 0 if allow_abstain else 1
        bad = (arr < lo) | ((arr > k) if k is not None else False)
        if np.any(bad):
            upper = k if k is not None else "k"
            where = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{name} must have values in {lo}..{upper}; found the value "
                f"{arr[where]} at item {where}."
            )
    return arr


def labels_to_tensor(Y: Any, name: str) -> torch.Tensor:
    """Labels of any numeric form (tensor, array, list, sparse matrix) as a
    tensor of their own dtype, detached; shapes are not checked."""
    if Y is None:
        raise ValueError(f"{name} is missing (found None).")
    if isinstance(Y, torch.Tensor):
        return Y.detach()
    if sparse.issparse(Y):
        Y = Y.toarray()
    arr = np.asarray(Y)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric labels; found dtype {arr.dtype}.")
    return torch.from_numpy(np.ascontiguousarray(arr))


def _is_hard(Y: torch.Tensor, k: int) -> bool:
    """``[n]`` vectors, and ``[n, 1]`` columns unless ``k == 1``, are hard labels."""
    return Y.dim() == 1 or (Y.dim() == 2 and Y.shape[1] == 1 and k != 1)


def check_train_labels(
    Y: Any, k: int, name: str, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Validate training labels: hard labels ``[n]`` (or ``[n, 1]``) in
    ``1..k``, or probabilistic labels ``[n, k]`` (finite, non-negative, rows
    summing to 1 within ``ROW_SUM_TOLERANCE``).

    Returns:
        hard labels as a long tensor ``[n]``, or the probabilities as a tensor
        ``[n, k]`` of ``dtype`` (checked in that dtype).
    """
    Y = labels_to_tensor(Y, name)
    if _is_hard(Y, k):
        Y = Y.reshape(-1)
        if Y.is_floating_point() and bool((Y != Y.round()).any()):
            raise ValueError(
                f"{name}: hard labels must be integers in 1..k; found "
                "fractional values (probabilistic labels must be [n, k])."
            )
        if Y.numel() and (int(Y.min()) < 1 or int(Y.max()) > k):
            raise ValueError(
                f"{name}: hard labels must be in 1..{k} (0 means "
                f"abstain and cannot be a training label); found values in "
                f"{int(Y.min())}..{int(Y.max())}."
            )
        return Y.long()
    if Y.dim() != 2:
        raise ValueError(
            f"{name} must be hard labels [n] or probabilistic labels "
            f"[n, k]; found shape {tuple(Y.shape)}."
        )
    if Y.shape[1] != k:
        raise ValueError(
            f"{name}: probabilistic labels must have k={k} columns; "
            f"found {Y.shape[1]}."
        )
    Y = Y.to(dtype)
    if Y.numel():
        if not bool(torch.isfinite(Y).all()) or float(Y.min()) < 0:
            raise ValueError(
                f"{name}: probabilistic labels must be finite and non-negative."
            )
        sums = Y.sum(dim=1)
        bad = (sums - 1).abs() > ROW_SUM_TOLERANCE
        if bool(bad.any()):
            row = int(bad.nonzero()[0, 0])
            raise ValueError(
                f"{name}: each row of probabilistic labels must sum to 1; "
                f"row {row} sums to {float(sums[row]):.6g}."
            )
    return Y


def check_gold_labels(Y: Any, k: int, name: str) -> torch.Tensor:
    """Validate gold labels: hard labels ``[n]`` (or ``[n, 1]``) in ``0..k``
    (0 = no label) or probabilities ``[n, k]``; return them as a tensor of
    their own dtype."""
    Y = labels_to_tensor(Y, name)
    if Y.dim() == 1 or (Y.dim() == 2 and Y.shape[1] == 1):
        if Y.numel() and (int(Y.min()) < 0 or int(Y.max()) > k):
            raise ValueError(
                f"{name}: gold labels must be in 0..{k} (0 = no label); found "
                f"values in {int(Y.min())}..{int(Y.max())}."
            )
    elif Y.dim() != 2 or Y.shape[1] != k:
        raise ValueError(
            f"{name} must be gold labels [n] or probabilities [n, k={k}]; found "
            f"shape {tuple(Y.shape)}."
        )
    return Y


# ======================================================== multi-task labels
def check_task_list(Y: Any, name: str, t: Optional[int] = None) -> list:
    """``Y`` as a list with one entry per task.

    Raises:
        ValueError: if ``Y`` is not a list/tuple, is empty, or (when ``t`` is
            given) has another number of entries than ``t``.
    """
    if not isinstance(Y, (list, tuple)):
        raise ValueError(
            f"{name} must be a list with one entry per task; found "
            f"{type(Y).__name__}."
        )
    if t is not None and len(Y) != t:
        raise ValueError(
            f"{name} must have one entry per task (t={t}); found {len(Y)} entries."
        )
    if len(Y) == 0:
        raise ValueError(f"{name} must have at least one task; found an empty list.")
    return list(Y)


def check_feasible_rows(
    labels: np.ndarray, feasible: np.ndarray, name: str, where: str
) -> None:
    """Raise ``ValueError`` if a row of ``labels [n, t]`` matches no row of
    ``feasible [k, t]``; zeros (no label) match any value.

    The message names the item, its label vector, the task(s) whose labels
    would have to change to reach the closest feasible vector, and ``where``
    the feasible set comes from (e.g. the task graph's repr).
    """
    F = feasible
    for start in range(0, labels.shape[0], FEASIBLE_CHUNK_ROWS):
        chunk = labels[start : start + FEASIBLE_CHUNK_ROWS]
        agree = (chunk[:, None, :] == F[None, :, :]) | (chunk[:, None, :] == 0)
        ok = agree.all(axis=2).any(axis=1)
        if ok.all():
            continue
        row = int(np.flatnonzero(~ok)[0])
        vector = chunk[row]
        mismatches = (~agree[row]).sum(axis=1)
        closest = F[int(mismatches.argmin())]
        tasks = [
            s for s in range(F.shape[1]) if vector[s] != 0 and vector[s] != closest[s]
        ]
        changes = ", ".join(
            f"task {s} has label {vector[s]} where the closest feasible vector has "
            f"{closest[s]}"
            for s in tasks
        )
        raise ValueError(
            f"{name}: the label vector {vector.tolist()} of item {start + row} is not "
            f"feasible under {where} ({changes}); feasible vectors are "
            f"{F.tolist()}."
        )
