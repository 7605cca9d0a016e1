"""Data conversion: every input form a model accepts becomes what it computes on.

* ``to_numpy`` / ``to_torch``: one array or tensor from a NumPy array, torch
  tensor (any device), list or scipy.sparse matrix;
* ``as_model_tensor``: features in the model's float dtype (a CSR matrix stays
  sparse until a batch is sliced from it);
* ``hard_labels``: gold labels as a 1-D int array (``[n, 1]`` flattened,
  probabilistic ``[n, k]`` rows as their most likely class);
* ``TensorBatches``: mini-batches sliced straight from in-memory data;
* ``make_data_loader``: a DataLoader for an ``(X, Y)`` pair or Dataset;
* ``first_dim_size`` / ``leading_dim`` / ``n_examples``: how many items a
  batch or a batch source holds.

A new input form is added here, once, for every model.
"""

from typing import Any, Callable, Iterator, Optional, Sequence, Tuple

import numpy as np
import scipy.sparse as sparse
import torch
from torch.utils.data import DataLoader, Dataset

from metal._checks import check_positive_int
from metal.utils import _length_or_none

__all__ = [
    "TensorBatches",
    "take_rows",
    "as_model_tensor",
    "first_dim_size",
    "hard_labels",
    "is_array_like",
    "leading_dim",
    "make_data_loader",
    "n_examples",
    "row_chunks",
    "stack_batches",
    "to_numpy",
    "to_torch",
    "unpack_pair",
]


# ------------------------------------------------------------------ pairs
def unpack_pair(data: Any, name: str) -> Tuple[Any, Any]:
    """``(X, Y)`` from a 2-element tuple/list, else ``ValueError`` naming ``name``."""
    if not isinstance(data, (tuple, list)):
        raise ValueError(
            f"{name} must be an (X, Y) tuple, a Dataset or a DataLoader; found "
            f"{type(data).__name__}."
        )
    if len(data) != 2:
        raise ValueError(
            f"{name} must be an (X, Y) pair; found a {type(data).__name__} of "
            f"length {len(data)}."
        )
    return data[0], data[1]


def is_pair(data: Any) -> bool:
    """Whether ``data`` is an in-memory ``(X, Y)`` tuple/list (not a loader)."""
    return isinstance(data, (tuple, list)) and not isinstance(data, DataLoader)


def is_array_like(value: Any) -> bool:
    return isinstance(value, (torch.Tensor, np.ndarray)) or sparse.issparse(value)


# ------------------------------------------------------------- conversion
def to_numpy(Z: Any) -> Optional[np.ndarray]:
    """A NumPy array from a sparse matrix (densified), list, array or tensor
    (any device); None stays None.

    Raises:
        ValueError: for any other type.
    """
    if Z is None:
        return None
    if isinstance(Z, np.ndarray):
        return Z
    if isinstance(Z, torch.Tensor):
        return Z.detach().cpu().numpy()
    if sparse.issparse(Z):
        return Z.toarray()
    if isinstance(Z, list):
        return np.array(Z)
    raise ValueError(
        "Expected a np.ndarray, torch.Tensor, list or scipy.sparse matrix; "
        f"found {type(Z).__name__}."
    )


def to_torch(Z: Any, dtype: Optional[torch.dtype] = None) -> Optional[torch.Tensor]:
    """A torch tensor (of ``dtype`` when given) from a sparse matrix
    (densified), list, array or tensor; None stays None.

    Raises:
        ValueError: for any other type.
    """
    if Z is None:
        return None
    if sparse.issparse(Z):
        Z = torch.from_numpy(Z.toarray())
    elif isinstance(Z, (np.ndarray, list)):
        Z = torch.from_numpy(np.ascontiguousarray(Z))
    elif not isinstance(Z, torch.Tensor):
        raise ValueError(
            "Expected a np.ndarray, torch.Tensor, list or scipy.sparse matrix; "
            f"found {type(Z).__name__}."
        )
    return Z.to(dtype) if dtype is not None else Z


def as_model_tensor(Z: Any, float_dtype: torch.dtype) -> Any:
    """Features as a tensor (floats in ``float_dtype``, integers kept) or a
    float32 CSR matrix; None when ``Z`` is not array-like (the model then
    gets it unchanged)."""
    if isinstance(Z, torch.Tensor):
        if Z.dtype == torch.bool or (Z.is_floating_point() and Z.dtype != float_dtype):
            return Z.to(float_dtype)
        return Z
    if sparse.issparse(Z):
        return sparse.csr_matrix(Z, dtype=np.float32)
    if isinstance(Z, (list, tuple)):
        if Z and all(isinstance(z, torch.Tensor) for z in Z):
            try:
                return as_model_tensor(torch.stack(list(Z)), float_dtype)
            except RuntimeError:
                return None
        try:
            Z = np.asarray(Z)
        except (ValueError, TypeError):
            return None
    if isinstance(Z, np.ndarray) and Z.dtype.kind in "fbiu":
        if Z.dtype.kind in "fb":
            np_dtype = torch.empty(0, dtype=float_dtype).numpy().dtype
            return torch.from_numpy(np.ascontiguousarray(Z, dtype=np_dtype))
        return torch.from_numpy(np.ascontiguousarray(Z))
    return None


def hard_labels(Y: Any, first_class: int = 1) -> np.ndarray:
    """Gold labels as a 1-D array: ``[n, 1]`` is flattened and probabilistic
    rows ``[n, k]`` become their most likely class (``argmax + first_class``)."""
    Y = np.asarray(to_numpy(Y) if not isinstance(Y, np.ndarray) else Y)
    if Y.ndim == 2 and Y.shape[1] > 1:
        return Y.argmax(axis=1) + first_class
    return Y.reshape(-1) if Y.ndim == 2 else Y


def stack_batches(batches: Sequence[Any]) -> np.ndarray:
    """Concatenate per-batch arrays: 1-D end to end, 2-D by rows."""
    if len(batches) == 0:
        return np.zeros(0)
    first = np.asarray(batches[0])
    if first.ndim == 1:
        return np.hstack([np.asarray(b).reshape(-1) for b in batches])
    if first.ndim == 2:
        return np.vstack([np.asarray(b) for b in batches])
    raise ValueError(f"Can't stack batches of {first.ndim}-dimensional arrays.")


def row_chunks(X: Any, size: int) -> Iterator[Any]:
    """Consecutive row blocks of a tensor/CSR matrix; other inputs whole."""
    if isinstance(X, torch.Tensor) or sparse.issparse(X):
        for start in range(0, X.shape[0], size):
            yield X[start : start + size]
    else:
        yield X


# ---------------------------------------------------------------- counting
def leading_dim(obj: Any) -> Optional[int]:
    """Rows of the first tensor with at least one dimension found depth-first
    in ``obj`` (tuples, lists and dict values); None if there is none."""
    if isinstance(obj, torch.Tensor):
        return int(obj.shape[0]) if obj.dim() else None
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, (tuple, list)):
        for item in obj:
            rows = leading_dim(item)
            if rows is not None:
                return rows
    return None


def first_dim_size(batch: Any) -> int:
    """Examples in a batch: the rows of its first tensor (see
    ``leading_dim``), else its length, else 1."""
    if type(batch) in (tuple, list) and batch and type(batch[0]) is torch.Tensor:
        shape = batch[0].shape
        if shape:
            return shape[0]
    rows = leading_dim(batch)
    if rows is not None:
        return rows
    try:
        return len(batch)
    except TypeError:
        return 1


def n_examples(batches: Any) -> Optional[int]:
    """Examples per epoch of a DataLoader or ``TensorBatches`` (None if
    unknown)."""
    if isinstance(batches, TensorBatches):
        if batches.drop_last:
            return len(batches) * batches.batch_size
        return batches.n
    dataset = getattr(batches, "dataset", None)
    n = _length_or_none(dataset) if dataset is not None else None
    if n is not None and getattr(batches, "drop_last", False) and batches.batch_size:
        return (n // batches.batch_size) * batches.batch_size
    return n


# ----------------------------------------------------------------- loaders
def make_data_loader(
    data: Any,
    loader_config: dict,
    dataset_factory: Callable[..., Dataset],
    pin_memory: bool = False,
    **overrides: Any,
) -> Optional[DataLoader]:
    """A DataLoader for ``data``: None stays None, a DataLoader is returned
    unchanged, a Dataset or an ``(X, Y)`` tuple/list (through
    ``dataset_factory(*data)``) is wrapped with ``loader_config`` updated by
    ``overrides``.

    Raises:
        ValueError: for any other type of ``data``.
    """
    if data is None:
        return None
    if isinstance(data, DataLoader):
        return data
    config = dict(loader_config or {})
    config.update(overrides)
    config.setdefault("pin_memory", pin_memory)
    if isinstance(data, Dataset):
        return DataLoader(data, **config)
    if isinstance(data, (tuple, list)):
        return DataLoader(dataset_factory(*data), **config)
    raise ValueError(
        "data must be an (X, Y) tuple, a torch Dataset or a DataLoader; found "
        f"{type(data).__name__}."
    )


# ----------------------------------------------------------- tensor batches
class TensorBatches:
    """Mini-batches sliced straight from in-memory data (no per-item collation).

    Args:
        data: a tuple/list (possibly nested) of torch tensors and scipy.sparse
            matrices sharing the first dimension ``n``; each batch has the same
            nesting, sparse rows densified to float32 tensors.
        batch_size: examples per batch.
        shuffle: draw a new order each epoch (``torch.randperm``, torch's global
            RNG, so seeding torch makes it reproducible).
        drop_last: drop a final incomplete batch.
    """

    def __init__(
        self, data: Any, batch_size: int = 32, shuffle: bool = True, drop_last=False
    ) -> None:
        leaves = list(_leaves(data))
        if not leaves:
            raise ValueError("TensorBatches needs at least one tensor.")
        sizes = {leaf.shape[0] for leaf in leaves}
        if len(sizes) != 1:
            raise ValueError(
                "All tensors must have the same number of items; found "
                f"{sorted(sizes)}."
            )
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.data = _as_csr(data)
        self.n = sizes.pop()
        self.shuffle = shuffle
        self.drop_last = drop_last

    def __len__(self) -> int:
        if self.drop_last:
            return self.n // self.batch_size
        return -(-self.n // self.batch_size)

    def __iter__(self) -> Iterator:
        order = torch.randperm(self.n) if self.shuffle else None
        stop = len(self) * self.batch_size
        for start in range(0, min(stop, self.n), self.batch_size):
            if order is None:
                index = slice(start, start + self.batch_size)
            else:
                index = order[start : start + self.batch_size]
            yield take_rows(self.data, index)


def _leaves(data: Any) -> Iterator[Any]:
    if isinstance(data, (tuple, list)):
        for item in data:
            yield from _leaves(item)
    elif isinstance(data, torch.Tensor) or sparse.issparse(data):
        yield data
    else:
        raise ValueError(
            "TensorBatches takes tensors and scipy.sparse matrices (in tuples or "
            f"lists); found {type(data).__name__}."
        )


def _as_csr(data: Any) -> Any:
    if isinstance(data, (tuple, list)):
        return type(data)(_as_csr(item) for item in data)
    if sparse.issparse(data):
        return sparse.csr_matrix(data)
    return data


def take_rows(data: Any, index: Any) -> Any:
    """Rows ``index`` (a tensor or array of positions) of ``data``: a tensor, a
    scipy.sparse matrix (densified to float32) or a tuple/list of them."""
    if isinstance(data, (tuple, list)):
        return type(data)(take_rows(item, index) for item in data)
    if isinstance(data, torch.Tensor):
        return data[index]
    rows = data[index.numpy() if isinstance(index, torch.Tensor) else index]
    return torch.from_numpy(rows.toarray()).to(torch.float32)
