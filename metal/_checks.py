"""Input validation shared by the public entry points of ``metal``.

Every function raises ``ValueError`` naming the argument, what was expected and
what was found; the ``is_*`` predicates only answer. Label matrices are returned
in a compact canonical form: a dense NumPy array of a narrow integer dtype, or a
CSR matrix with the same data dtype and no stored zeros. Neither form is ever
expanded to a float one-hot; a wide input is checked and narrowed in blocks, and
a sparse one is never densified.

The checks, by kind:

* scalars: ``is_int``, ``is_number``, ``check_int``, ``check_positive_int``,
  ``check_choice``;
* float arrays: ``check_float_array``, ``check_class_balance``;
* index pairs (dependencies, task-graph edges): ``check_pairs``;
* label matrices: ``check_label_matrix`` (and ``iter_dense_chunks``);
* label vectors: ``arraylike_to_numpy``, ``check_int_vector``,
  ``check_label_vector``, ``labels_to_tensor``, ``check_train_labels``,
  ``check_gold_labels``;
* multi-task labels: ``check_task_list``, ``check_feasible_rows``;
* features: ``check_features``.

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

# Bytes of a dense label matrix (or of a sparse one's entries) read per block
# while it is validated and narrowed: a block and its temporaries stay in the
# core's cache, and a wide input (int64, float64) is never copied whole.
_BLOCK_BYTES = 1 << 20

# Rows per block when a CSC label matrix is transposed to CSR.
CSC_BLOCK_ROWS = 8192

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


def _from_pandas(values: Any, name: str) -> Any:
    """A pandas DataFrame or Series as a NumPy array of its columns' common
    NumPy dtype (nullable ``Int64``/``boolean``/``Float64`` columns included);
    anything else unchanged. Missing values (NA, NaN, None) raise."""
    if not type(values).__module__.startswith("pandas") or not callable(
        getattr(values, "isna", None)
    ):
        return values
    missing = np.asarray(values.isna())
    if missing.any():
        first = np.argwhere(missing)[0]
        where = (
            f"row {first[0]}, column {first[1]}"
            if missing.ndim == 2
            else f"item {first[0]}"
        )
        raise ValueError(
            f"{name} must not have missing values; found {int(missing.sum())} "
            f"(NA/NaN), the first at {where}. Use 0 for an abstain or an "
            "unlabeled item."
        )
    dtypes = list(values.dtypes) if missing.ndim == 2 else [values.dtype]
    numpy_dtypes = [getattr(d, "numpy_dtype", d) for d in dtypes]
    try:
        dtype = np.result_type(*numpy_dtypes)
    except TypeError:  # categorical, string, ... columns: let the checks judge
        return values.to_numpy()
    return values.to_numpy(dtype=dtype)


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


def _blocks(values: np.ndarray) -> Iterator[slice]:
    """Consecutive slices of the first axis of ``values``, each of about
    ``_BLOCK_BYTES`` (at least one row)."""
    row_bytes = values.itemsize * int(np.prod(values.shape[1:], dtype=np.int64))
    step = max(1, _BLOCK_BYTES // max(row_bytes, 1))
    for start in range(0, values.shape[0], step):
        yield slice(start, start + step)


def _numeric(values: np.ndarray, name: str) -> np.ndarray:
    """``values`` (booleans viewed as ``uint8``) if it is numeric."""
    if values.dtype.kind == "b":
        return values.view(np.uint8)
    if values.dtype.kind not in "iuf":
        raise ValueError(
            f"{name} must hold numeric labels in {{0, 1, ..., k}}; found dtype "
            f"{values.dtype}."
        )
    return values


def _check_values(values: np.ndarray, name: str, k: Optional[int]) -> int:
    """Check that ``values`` are finite non-negative integers (<= k); return the
    largest.

    Read block by block (no temporaries of the whole array). Of several
    problems the first in the order non-finite, fractional, negative, larger
    than k is reported; a fractional value is the first one in row-major order.
    """
    if values.size == 0:
        return 0
    values = _numeric(values, name)
    lo = hi = fractional = None
    for block in _blocks(values):
        part = values[block]
        if part.dtype.kind == "f":
            if not np.isfinite(part).all():
                raise ValueError(
                    f"{name} must hold integer labels in {{0, 1, ..., k}}; found "
                    "NaN or infinite entries."
                )
            if fractional is None:
                bad = part != np.floor(part)
                if bad.any():
                    fractional = part[bad][0]
        part_lo, part_hi = part.min(), part.max()
        lo = part_lo if lo is None else min(lo, part_lo)
        hi = part_hi if hi is None else max(hi, part_hi)
    if fractional is not None:
        raise ValueError(
            f"{name} must hold integer labels in {{0, 1, ..., k}}; found the "
            f"fractional value {fractional}."
        )
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


def _copy_labels(part: np.ndarray, out: np.ndarray, limit: int) -> Optional[Any]:
    """Copy the block ``part`` into ``out`` (a narrow integer dtype) if it holds
    only integers in ``0..limit``; return its minimum, or None if it does not
    (NaN fails both bounds, a fractional value fails the round trip)."""
    lo, hi = part.min(), part.max()
    if not (lo >= 0 and hi <= limit):
        return None
    np.copyto(out, part, casting="unsafe")
    if part.dtype.kind == "f" and not np.array_equal(out, part):
        return None
    return lo


def _narrow_labels(
    values: np.ndarray, name: str, k: Optional[int]
) -> Tuple[np.ndarray, bool]:
    """Validate labels (a dense label matrix, or the stored entries of a sparse
    one) and return them in the narrowest integer dtype holding ``0..k`` (or
    their maximum when ``k`` is None), with whether any of them is 0.

    An array already of that dtype is returned as is. Any other is validated
    and cast block by block into a new array, so a wide input (int64, float64)
    is read once and never copied whole; a block that fails (a bad value, or
    without ``k`` labels too large for int8) sends the whole array through
    ``_check_values``, which raises the error or gives the largest label.
    """
    if values.size == 0:
        dtype = _narrow_int_dtype(k or 0)
        return (values if values.dtype == dtype else values.astype(dtype)), False
    values = _numeric(values, name)
    dtype = _narrow_int_dtype(k or 0)
    limit = k if k is not None else np.iinfo(dtype).max
    if values.dtype == dtype:
        lo, hi = values.min(), values.max()
        if lo >= 0 and hi <= limit:
            return values, bool(lo == 0)
    else:
        out = np.empty(values.shape, dtype)
        lows = []
        for block in _blocks(values):
            lo = _copy_labels(values[block], out[block], limit)
            if lo is None:
                break
            lows.append(lo)
        else:
            return out, bool(min(lows) == 0)
    hi = _check_values(values, name, k)
    dtype = _narrow_int_dtype(max(hi, k or 0))
    out = values
    if values.dtype != dtype:
        out = np.empty(values.shape, dtype)
        for block in _blocks(values):
            np.copyto(out[block], values[block], casting="unsafe")
    return out, bool(np.count_nonzero(out) < out.size)


def _tensor_label_matrix(
    L: torch.Tensor, name: str
) -> Union[np.ndarray, sparse.spmatrix]:
    """A tensor (any device) as a NumPy array (a view of a dense CPU tensor) or,
    for a sparse layout, a scipy.sparse matrix (never densified)."""
    L = L.detach().cpu()
    if L.layout == torch.strided:
        return _tensor_array(L)
    if L.dim() != 2:
        raise ValueError(f"{name} must be 2-D [n, m]; found shape {tuple(L.shape)}.")
    shape = tuple(L.shape)
    if L.layout == torch.sparse_csr:
        parts = (L.values(), L.col_indices(), L.crow_indices())
        parts = tuple(_tensor_array(part, for_scipy=True) for part in parts)
        return sparse.csr_matrix(parts, shape=shape)
    if L.layout == torch.sparse_csc:
        parts = (L.values(), L.row_indices(), L.ccol_indices())
        parts = tuple(_tensor_array(part, for_scipy=True) for part in parts)
        return sparse.csc_matrix(parts, shape=shape)
    L = L.to_sparse_coo().coalesce()
    rows, cols = L.indices().numpy()
    values = _tensor_array(L.values(), for_scipy=True)
    out = sparse.coo_matrix((values, (rows, cols)), shape=shape)
    out.has_canonical_format = True  # coalesced: row-major, no duplicates
    return out


def _tensor_array(values: torch.Tensor, for_scipy: bool = False) -> np.ndarray:
    """A dense CPU tensor as NumPy (a view); bfloat16 (which NumPy lacks) and,
    ``for_scipy``, float16 (which scipy.sparse lacks) as float32, exact for
    labels."""
    if values.dtype == torch.bfloat16 or (for_scipy and values.dtype == torch.float16):
        values = values.float()
    return values.numpy()


def check_label_matrix(
    L, name: str = "L", k: Optional[int] = None, allow_empty: bool = False
) -> LabelMatrix:
    """Validate a label matrix ``[n, m]`` with entries in ``{0, 1, ..., k}``.

    Accepts dense NumPy arrays (any integer dtype or integral floats), any
    scipy.sparse format, torch tensors (dense or sparse), pandas DataFrames
    (nullable ``Int64`` columns included; missing values raise) and nested
    lists.

    Returns:
        a dense array of the narrowest integer dtype that holds the labels, or a
        CSR matrix with such data, sorted indices and no explicitly stored zeros
        (duplicate entries of the input summed). A dense array already of that
        dtype is returned as is, and a sparse result may share its index arrays
        with the input. Wide inputs are validated and narrowed block by block;
        a sparse input is never densified.
    """
    if L is None:
        raise ValueError(f"{name} must be a label matrix of shape [n, m]; found None.")
    if isinstance(L, torch.Tensor):
        L = _tensor_label_matrix(L, name)
    L = _from_pandas(L, name)
    if sparse.issparse(L):
        if L.ndim != 2:
            raise ValueError(f"{name} must be 2-D [n, m]; found shape {L.shape}.")
        _check_shape(L.shape, name, allow_empty)
        return _sparse_label_matrix(L, name, k)
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
    return _narrow_labels(arr, name, k)[0]


def _check_shape(shape, name: str, allow_empty: bool) -> None:
    if not allow_empty and (shape[0] == 0 or shape[1] == 0):
        raise ValueError(
            f"{name} must have at least one row and one column; found shape "
            f"{tuple(shape)}."
        )


def _sparse_label_matrix(
    L: sparse.spmatrix, name: str, k: Optional[int]
) -> sparse.csr_matrix:
    """The canonical CSR form of a sparse label matrix of any format.

    The stored entries are validated and narrowed first (before any index is
    moved) when the format has no duplicate entries; a CSC matrix is then
    transposed to CSR in row blocks (see ``_csc_to_csr``). Other formats, and
    inputs with duplicates, go through scipy's own conversion, which sums the
    duplicates.
    """
    if L.format == "csc" and L.has_canonical_format:
        data, zeros = _narrow_labels(L.data, name, k)
        if zeros:
            L = sparse.csc_matrix((data, L.indices, L.indptr), shape=L.shape)
            L = _without_zeros(L)
            data = L.data
        return _csc_to_csr(L.indptr, L.indices, data, L.shape)
    if L.format == "coo" and L.has_canonical_format:
        # canonical COO: entries in row-major order, so already CSR's order
        data, zeros = _narrow_labels(L.data, name, k)
        rows, cols = L.row, L.col
        if zeros:
            keep = data != 0
            data, rows, cols = data[keep], rows[keep], cols[keep]
        index_dtype = np.int32 if max(L.shape + (len(data),)) < 2**31 else np.int64
        indptr = np.zeros(L.shape[0] + 1, dtype=index_dtype)
        np.cumsum(np.bincount(rows, minlength=L.shape[0]), out=indptr[1:])
        indices = cols.astype(index_dtype, copy=False)
        out = sparse.csr_matrix((data, indices, indptr), shape=L.shape, copy=False)
        out.has_canonical_format = True
        return out
    if L.format != "csr":
        L = L.tocsr()
    if not L.has_canonical_format:
        L = L.copy()
        L.sum_duplicates()
    data, zeros = _narrow_labels(L.data, name, k)
    out = sparse.csr_matrix((data, L.indices, L.indptr), shape=L.shape, copy=False)
    if zeros:
        out = _without_zeros(out)
    out.has_canonical_format = True
    return out


def _without_zeros(L: sparse.spmatrix) -> sparse.spmatrix:
    """A copy of a CSR/CSC matrix without its explicitly stored zeros."""
    L = L.copy()
    L.eliminate_zeros()
    return L


def _csc_to_csr(
    indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, shape: Tuple[int, int]
) -> sparse.csr_matrix:
    """The CSR form of a canonical CSC matrix (sorted row indices, no
    duplicates), transposed in blocks of ``CSC_BLOCK_ROWS`` rows.

    scipy's ``tocsr`` scatters the entries of each column across the whole
    output (a cache miss per entry); here each block gathers its run of every
    column (the runs found once by binary search) and is transposed by scipy
    within the cache, about twice as fast.
    """
    n, m = shape
    edges = np.append(np.arange(0, n, CSC_BLOCK_ROWS), n)
    # bounds[j, b]: index of the first entry of column j in a row >= edges[b].
    bounds = np.empty((m, len(edges)), dtype=np.int64)
    for j in range(m):
        start, stop = indptr[j], indptr[j + 1]
        bounds[j] = start + np.searchsorted(indices[start:stop], edges)
    index_dtype = indices.dtype
    out_indptr = np.empty(n + 1, dtype=index_dtype)
    out_indptr[0] = 0
    out_indices = np.empty(len(data), dtype=index_dtype)
    out_data = np.empty(len(data), dtype=data.dtype)
    column_ptr = np.zeros(m + 1, dtype=index_dtype)
    done = 0
    for b in range(len(edges) - 1):
        lo, hi = edges[b], edges[b + 1]
        first, last = bounds[:, b], bounds[:, b + 1]
        np.cumsum(last - first, out=column_ptr[1:])
        rows = _runs(indices, first, last, column_ptr)
        rows -= lo
        values = _runs(data, first, last, column_ptr)
        block = sparse.csc_matrix((values, rows, column_ptr), shape=(hi - lo, m))
        block = block.tocsr()
        total = block.nnz
        out_indices[done : done + total] = block.indices
        out_data[done : done + total] = block.data
        out_indptr[lo + 1 : hi + 1] = block.indptr[1:] + done
        done += total
    out = sparse.csr_matrix((out_data, out_indices, out_indptr), shape=shape)
    out.has_canonical_format = True
    return out


def _runs(
    values: np.ndarray, first: np.ndarray, last: np.ndarray, offsets: np.ndarray
) -> np.ndarray:
    """``values[first[j]:last[j]]`` for every j, concatenated (a new array);
    ``offsets`` is the cumulative sum of the run lengths, starting at 0."""
    if len(first) <= 256:  # few runs: copy the slices
        return np.concatenate(
            [values[a:b] for a, b in zip(first.tolist(), last.tolist())]
        )
    where = np.repeat(first - offsets[:-1], last - first)
    where += np.arange(int(offsets[-1]))
    return values[where]


def iter_dense_chunks(
    L: LabelMatrix, chunk_rows: int = CHUNK_ROWS
) -> Iterator[np.ndarray]:
    """Yield consecutive row blocks of a canonical label matrix as dense arrays
    (views of a dense matrix; new arrays filled from a CSR matrix's rows, so
    only one block is ever dense)."""
    n = L.shape[0]
    if not sparse.issparse(L):
        for start in range(0, n, chunk_rows):
            yield np.asarray(L[start : start + chunk_rows])
        return
    if L.format != "csr":
        L = L.tocsr()
    indptr, indices, data = L.indptr, L.indices, L.data
    m = L.shape[1]
    for start in range(0, n, chunk_rows):
        stop = min(start + chunk_rows, n)
        lo, hi = indptr[start], indptr[stop]
        block = sparse.csr_matrix(
            (data[lo:hi], indices[lo:hi], indptr[start : stop + 1] - lo),
            shape=(stop - start, m),
            copy=False,
        )
        yield block.toarray(out=np.zeros((stop - start, m), dtype=data.dtype))


# =========================================================== label vectors
def arraylike_to_numpy(array_like: Any) -> np.ndarray:
    """Convert a 1-D array-like of integer labels to an ``int64`` NumPy array.

    Accepts lists, tuples, NumPy arrays, torch tensors (any device), pandas
    Series (nullable ``Int64`` included; missing values raise) and
    scipy.sparse matrices. ``[n, 1]`` and ``[1, n]`` inputs are flattened.

    Raises:
        ValueError: if the input is not 1-D (strings and matrices included) or
            holds non-integral / non-finite values.
    """
    array_like = _from_pandas(array_like, "The labels")
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
    first_item: int = 0,
) -> np.ndarray:
    """Validate a 1-D vector of hard labels; return it as ``int64``.

    Labels must lie in ``1..k`` (or ``0..k`` when ``allow_abstain``); without
    ``k`` only the lower bound is checked. ``first_item`` is the index of the
    first label, for the message about a bad one (a block of a longer vector).
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
                f"{arr[where]} at item {first_item + where}."
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


# =============================================================== features
def check_features(
    X: Union[torch.Tensor, sparse.spmatrix],
    name: str,
    width: Optional[int] = None,
    allow_empty: bool = True,
) -> None:
    """Check a batch of model inputs ``[n, ...]`` (a tensor or a scipy.sparse
    matrix): at least one row unless ``allow_empty``, ``width`` features per
    row (the size of the last axis) when given, and (for floats) only finite
    values.

    Raises:
        ValueError: naming ``name``, e.g. ``"X must have 2 features per item
            (the model's input width); found shape (5, 3)."`` or ``"X has NaN
            or infinite values (first in row 4)."``
    """
    shape = tuple(X.shape)
    if not allow_empty and (len(shape) == 0 or shape[0] == 0):
        raise ValueError(
            f"{name} must have at least one item; found shape {shape} (there is "
            "nothing to train on)."
        )
    if width is not None and (len(shape) < 2 or shape[-1] != width):
        raise ValueError(
            f"{name} must have {width} features per item (the model's input "
            f"width), shape [n, {width}]; found shape {shape}."
        )
    row = _first_non_finite_row(X)
    if row is not None:
        raise ValueError(
            f"{name} has NaN or infinite values (first in row {row}); features "
            "must be finite."
        )


def _first_non_finite_row(X: Any) -> Optional[int]:
    """The first row of ``X`` holding NaN or an infinity (None if none; integer
    inputs have none)."""
    if sparse.issparse(X):
        X = sparse.csr_matrix(X)
        if X.dtype.kind != "f" or np.isfinite(X.data).all():
            return None
        first = int(np.flatnonzero(~np.isfinite(X.data))[0])
        return int(np.searchsorted(X.indptr, first, side="right") - 1)
    if not isinstance(X, torch.Tensor) or not X.is_floating_point() or X.dim() == 0:
        return None
    finite = torch.isfinite(X)
    if bool(finite.all()):
        return None
    rows_ok = finite.reshape(X.shape[0], -1).all(dim=1)
    return int(torch.nonzero(~rows_ok)[0, 0])
