"""Dask arrays as input: the one seam between ``metal`` and Dask.

A label matrix ``L [n, m]`` (votes 0 = abstain, 1..k = classes) or a label
vector ``Y [n]`` may be a ``dask.array.Array`` kept in row blocks (shards read
with ``da.from_zarr``, ``da.from_npy_stack``, ``da.map_blocks`` over files,
...). Everything ``metal`` needs of such an array is one of two shapes:

* a **reduction over row blocks** (``reduce_row_blocks``): a function turns
  each block (a NumPy array) into a small result (counts ``[d, d]``, per-source
  sums, sets of vote patterns) and the results are combined in a tree, on
  whichever scheduler is active (a ``distributed.Client`` when the user made
  one, otherwise Dask's default). The array is never gathered into one
  process; only the per-block results travel.
* a **lazy map over row blocks** (``map_row_blocks``): a function of each block
  (and its first row) gives that block's rows of the output, so the result
  keeps the input's row chunks and nothing is computed until the user asks.

Blocks are validated inside those functions (``check_label_matrix`` on each
block), so a bad value raises the same ``ValueError`` as for an in-memory
matrix, when the block is computed. Shape, dtype and chunking are checked up
front (``dask_label_matrix``, ``dask_label_vector``).

Nothing here imports Dask at module level: ``is_dask_array`` looks Dask up in
``sys.modules`` (an array of it can only exist once it is imported), and the
functions that handle a Dask input import it themselves.
"""

import sys
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from metal._checks import check_label_vector
from metal.labels import LabelConvention, break_ties, check_tie_policy
from metal.utils import _one_torch_thread

__all__ = [
    "is_dask_array",
    "dask_label_matrix",
    "dask_label_vector",
    "reduce_row_blocks",
    "map_row_blocks",
    "sum_parts",
    "label_counts",
    "lazy_break_ties",
    "compute",
]

# Block results combined at once in the tree reduction.
SPLIT_EVERY = 8


def is_dask_array(value: Any) -> bool:
    """Whether ``value`` is a ``dask.array.Array`` (without importing Dask)."""
    module = sys.modules.get("dask.array")
    array_type = getattr(module, "Array", None)
    return array_type is not None and isinstance(value, array_type)


# ============================================================== validation
def _known_chunks(X: Any) -> Any:
    """``X`` with known chunk sizes (computed when some are NaN: each block's
    shape, not its values, travels back)."""
    if any(np.isnan(size) for sizes in X.chunks for size in sizes):
        X = X.copy()
        X.compute_chunk_sizes()
    return X


def _check_dtype(X: Any, name: str) -> None:
    if X.dtype.kind not in "biuf":
        raise ValueError(
            f"{name} must hold numeric labels in {{0, 1, ..., k}}; found a dask "
            f"array of dtype {X.dtype}."
        )


def dask_label_matrix(L: Any, name: str = "L", allow_empty: bool = False) -> Any:
    """Check the shape and dtype of a dask label matrix ``[n, m]`` and return it
    with known chunk sizes and one block across its columns (row blocks of
    whole rows). Its values (integers in 0..k) are checked block by block by
    the passes that read it (``check_label_matrix`` on each block)."""
    if L.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D label matrix of shape [n, m]; found a dask "
            f"array of shape {L.shape}. For a single source use L.reshape(-1, 1)."
        )
    _check_dtype(L, name)
    L = _known_chunks(L)
    n, m = L.shape
    if not allow_empty and (n == 0 or m == 0):
        raise ValueError(
            f"{name} must have at least one row and one column; found shape "
            f"({n}, {m})."
        )
    if len(L.chunks[1]) > 1:
        L = L.rechunk({1: -1})
    return L


def _dask_vector(Y: Any, name: str) -> Any:
    """The dask label vector ``Y`` as 1-D (a ``[n, 1]`` or ``[1, n]`` column is
    flattened) with known chunk sizes and an integer-like dtype."""
    if Y.ndim == 2 and 1 in Y.shape:
        Y = Y.reshape(-1)
    if Y.ndim != 1:
        raise ValueError(
            f"{name} must be a 1-D array of labels; found a dask array of shape "
            f"{Y.shape}."
        )
    _check_dtype(Y, name)
    return _known_chunks(Y)


def dask_label_vector(Y: Any, name: str, rows: Any) -> Any:
    """A label vector ``Y [n]`` (dask or in memory; ``[n, 1]`` flattened) as a
    dask array with the row chunks of ``rows`` (a dask array of n rows); its
    length is checked here, its values block by block."""
    import dask.array as da

    n = rows.shape[0]
    if not is_dask_array(Y):
        Y = check_label_vector(Y, name=name, n=n)
        return da.from_array(Y, chunks=(rows.chunks[0],))
    Y = _dask_vector(Y, name)
    if Y.shape[0] != n:
        raise ValueError(f"{name} must have {n} labels; found {Y.shape[0]}.")
    if Y.chunks[0] != rows.chunks[0]:
        Y = Y.rechunk((rows.chunks[0],))
    return Y


# ================================================== torch inside the blocks
def _run_block(fn: Callable[..., Any], block: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(block, *args, **kwargs)`` with torch on one thread and no autograd.
    A read-only block (a memory-mapped or cached shard) is copied, one block
    at a time, as torch refuses to wrap read-only memory."""
    block = np.asarray(block)
    if not block.flags.writeable:
        block = block.copy()
    with _one_torch_thread(), torch.no_grad():
        return fn(block, *args, **kwargs)


# ============================================================== reductions
def sum_parts(parts: Sequence[Any]) -> Any:
    """The elementwise sum of block results: arrays, tensors and numbers, or
    tuples/lists of them (summed position by position)."""
    first = parts[0]
    if isinstance(first, (tuple, list)):
        return type(first)(sum_parts([p[i] for p in parts]) for i in range(len(first)))
    total = first
    for part in parts[1:]:
        total = total + part
    return total


def _combine(combine: Callable[[List[Any]], Any], parts: Tuple[Any, ...]) -> Any:
    return combine(list(parts))


def reduce_row_blocks(
    L: Any,
    block_fn: Callable[..., Any],
    *args: Any,
    aligned: Sequence[Any] = (),
    combine: Callable[[List[Any]], Any] = sum_parts,
    split_every: int = SPLIT_EVERY,
) -> Any:
    """Reduce the row blocks of the dask array ``L`` without gathering it.

    ``block_fn(block, *aligned_blocks, *args, start=first_row)`` runs once per
    row block of ``L`` (a NumPy array; ``aligned`` are dask arrays with L's row
    chunks, whose matching blocks follow it) and returns a small result; the
    results are combined ``split_every`` at a time with ``combine(list)``
    (default: elementwise sums) up to one, which is computed on the active
    scheduler and returned. ``args`` (model weights, sizes) are put in the
    graph once and shipped once to each worker that needs them.
    """
    import dask

    blocks = L.to_delayed().reshape(-1)
    aligned_blocks = [A.to_delayed().reshape(-1) for A in aligned]
    shared = [dask.delayed(arg, traverse=False) for arg in args]
    starts = np.concatenate([[0], np.cumsum(L.chunks[0])[:-1]]).tolist()
    run = dask.delayed(_run_block, pure=True)
    parts = [
        run(block_fn, block, *[a[i] for a in aligned_blocks], *shared, start=start)
        for i, (block, start) in enumerate(zip(blocks, starts))
    ]
    if not parts:
        raise ValueError("reduce_row_blocks needs an array with at least one block.")
    merge = dask.delayed(_combine, pure=True)
    while len(parts) > 1:
        parts = [
            merge(combine, tuple(parts[i : i + split_every]))
            for i in range(0, len(parts), split_every)
        ]
    (result,) = dask.compute(parts[0])
    return result


# ================================================================== maps
def _map_block(
    block: np.ndarray,
    *args: Any,
    block_fn: Callable[..., Any],
    block_info: Optional[dict] = None,
) -> np.ndarray:
    start = block_info[0]["array-location"][0][0] if block_info else 0
    return _run_block(block_fn, block, *args, start=start)


def map_row_blocks(
    X: Any,
    block_fn: Callable[..., np.ndarray],
    *args: Any,
    dtype: Any,
    width: Optional[int] = None,
) -> Any:
    """A lazy dask array made block by block from the row blocks of ``X``.

    ``block_fn(block, *args, start=first_row)`` returns the block's rows of the
    output: ``[rows, width]`` when ``width`` is given, else ``[rows]`` (X's
    trailing axis dropped, or kept absent for a 1-D X). The output has X's
    row chunks and ``dtype``; nothing is computed here. ``args`` are put in
    the graph once.
    """
    import dask

    shared = [dask.delayed(arg, traverse=False) for arg in args]
    kwargs: dict = dict(block_fn=block_fn, dtype=dtype)
    if width is not None:
        kwargs.update(chunks=(X.chunks[0], (width,)))
        kwargs.update(meta=np.empty((0, 0), dtype=dtype))
        if X.ndim == 1:
            kwargs.update(new_axis=1)
    else:
        kwargs.update(chunks=(X.chunks[0],), meta=np.empty((0,), dtype=dtype))
        if X.ndim == 2:
            kwargs.update(drop_axis=1)
    return X.map_blocks(_map_block, *shared, **kwargs)


# ============================================================= label vectors
def _block_label_counts(
    Y: np.ndarray, name: str, k: Optional[int], start: int = 0
) -> np.ndarray:
    Y = check_label_vector(Y, name=name, k=k, allow_abstain=True, first_item=start)
    return np.bincount(Y, minlength=(k or 0) + 1)


def label_counts(Y: Any, name: str, k: int) -> Tuple[np.ndarray, int]:
    """``(counts [k+1], n)``: how many items of the dask vector ``Y [n]`` carry
    each label 0..k (0 = no gold label), validated and counted block by block."""
    Y = _dask_vector(Y, name)
    if Y.shape[0] == 0:
        return np.zeros(k + 1, dtype=np.int64), 0
    counts = reduce_row_blocks(Y, _block_label_counts, name, k)
    return counts, int(Y.shape[0])


# ========================================================= tie-breaking
def _block_ties(
    probs: np.ndarray,
    policy: Union[str, int],
    convention: LabelConvention,
    seed: Optional[int],
    start: int = 0,
) -> np.ndarray:
    rng = None
    if seed is not None:
        rng = np.random.RandomState([seed, start % 2**32, start // 2**32])
    return break_ties(probs, policy, convention, rng=rng, first_row=start)


def lazy_break_ties(
    probs: Any, policy: Union[str, int], convention: LabelConvention
) -> Any:
    """Lazy int64 labels ``[n]`` of the dask probabilities ``probs [n, k]``:
    ``metal.labels.break_ties`` on each row block.

    Every policy gives exactly the labels of the in-memory path ("hash" hashes
    the global row index), except ``"random"``: its draws cannot follow the
    global RNG's order across lazily computed blocks, so one seed is drawn
    from NumPy's global RNG when this is called and each block draws from a
    ``RandomState`` seeded by ``(seed, first row of the block)``. The labels
    are thus uniform among the tied classes as before, the same every time
    the array is computed, and reproducible after ``np.random.seed``.
    """
    check_tie_policy(policy)
    seed = int(np.random.randint(2**31)) if policy == "random" else None
    return map_row_blocks(probs, _block_ties, policy, convention, seed, dtype=np.int64)


def compute(*arrays: Any) -> Tuple[Any, ...]:
    """Compute dask arrays together (one pass over their shared inputs);
    anything else is returned as it is."""
    import dask

    return dask.compute(*arrays)
