"""General helpers: datasets, label conversions, config merging, splitting, seeding.

Label conventions used throughout ``metal``:

* hard labels are ints in ``1..k``; ``0`` means abstain / no label;
* probabilistic labels are float arrays ``[n, k]`` whose column ``c`` holds
  ``P(Y = c + 1)``.
"""

import argparse
import contextlib
import copy
import difflib
import os
import random
import sys
import warnings
from collections.abc import Mapping
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Union

import numpy as np
import scipy.sparse as sparse
import torch
from torch.utils.data import Dataset

from metal._checks import arraylike_to_numpy, check_choice, check_int, is_int

__all__ = [
    "MetalDataset",
    "rargmax",
    "pred_to_prob",
    "arraylike_to_numpy",
    "convert_labels",
    "plusminus_to_categorical",
    "categorical_to_plusminus",
    "label_matrix_to_one_hot",
    "recursive_transform",
    "add_flags_from_config",
    "recursive_merge_dicts",
    "merge_config",
    "split_data",
    "padded_tensor",
    "warnings_given",
    "warn_once",
    "place_on_gpu",
    "move_to_device",
    "set_seed",
]


class MetalDataset(Dataset):
    """A dataset pairing items ``X[i]`` with labels ``Y[i]``.

    Args:
        X: any indexable of length n (tensor, array, list, ...).
        Y: hard labels ``[n]`` (ints in 1..k) or probabilistic labels ``[n, k]``.
    """

    def __init__(self, X, Y):
        n_x, n_y = _length(X), _length(Y)
        if n_x != n_y:
            raise ValueError(
                f"X and Y must have the same number of items; found len(X)={n_x} "
                f"and len(Y)={n_y}."
            )
        self.X = X
        self.Y = Y

    def __getitem__(self, index):
        return (self.X[index], self.Y[index])

    def __len__(self):
        return _length(self.X)


def _length(data) -> int:
    """Number of items along the first axis (works for sparse matrices too);
    ``TypeError`` for objects without a length."""
    if sparse.issparse(data):
        return data.shape[0]
    return len(data)


def _length_or_none(data) -> Optional[int]:
    """``_length(data)``, or None for objects without a length."""
    try:
        return _length(data)
    except TypeError:
        return None


def rargmax(x, eps: float = 1e-8) -> int:
    """Index of the maximum of a 1-D array; ties (within ``eps``) broken at random.

    Uses NumPy's global RNG, so ``np.random.seed`` makes it reproducible.
    """
    x = np.asarray(x, dtype=float)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"x must be a non-empty 1-D array; found shape {x.shape}.")
    candidates = np.flatnonzero(np.abs(x - x.max()) < eps)
    return int(np.random.choice(candidates))


def pred_to_prob(Y_h: torch.Tensor, k: int) -> torch.Tensor:
    """Convert hard labels ``[n]`` (or ``[n, 1]``) in 1..k to one-hot ``[n, k]``.

    The result keeps the input's dtype and device (call ``.float()`` for floats).
    """
    if not isinstance(Y_h, torch.Tensor):
        Y_h = torch.as_tensor(np.asarray(Y_h))
    if Y_h.dim() == 2 and Y_h.shape[1] == 1:
        Y_h = Y_h.squeeze(-1)
    if Y_h.dim() != 1:
        raise ValueError(
            f"Y_h must be a 1-D tensor of hard labels; found shape {tuple(Y_h.shape)}."
        )
    if Y_h.numel() and (
        bool((Y_h != Y_h.round()).any()) if Y_h.is_floating_point() else False
    ):
        raise ValueError("Y_h must contain integer labels in 1..k.")
    labels = Y_h.long()
    if labels.numel() and (labels.min() < 1 or labels.max() > k):
        raise ValueError(
            f"Y_h must have values in 1..{k}; found values in "
            f"{int(labels.min())}..{int(labels.max())}."
        )
    Y_s = torch.zeros(labels.shape[0], k, dtype=Y_h.dtype, device=Y_h.device)
    Y_s[torch.arange(labels.shape[0], device=Y_h.device), labels - 1] = 1
    return Y_s


# Label conventions for binary tasks: (abstain, positive, negative)
_CONVENTIONS = {
    "categorical": {"negative": 2},
    "plusminus": {"negative": -1},
    "onezero": {"negative": 0},
}


def convert_labels(Y, source: str, target: str):
    """Convert binary labels between conventions.

    Conventions: ``"categorical"`` (0 abstain, 1 positive, 2 negative),
    ``"plusminus"`` (0 abstain, 1 positive, -1 negative) and ``"onezero"``
    (0 negative, 1 positive). Only the negative value is remapped, so converting
    to ``"onezero"`` merges abstains with negatives. ``None`` passes through.

    Args:
        Y: an int64 NumPy array or a long torch tensor (any shape, any device).
        source, target: convention names.
    """
    for name, value in (("source", source), ("target", target)):
        check_choice(value, sorted(_CONVENTIONS), name)
    if Y is None:
        return Y
    if isinstance(Y, np.ndarray):
        if Y.dtype.kind not in "iu":
            raise ValueError(f"Y must be an integer array; found dtype {Y.dtype}.")
        Y = Y.astype(np.int64, copy=True)
    elif isinstance(Y, torch.Tensor):
        if Y.dtype != torch.long:
            raise ValueError(f"Y must be a long (int64) tensor; found {Y.dtype}.")
        Y = Y.clone()
    else:
        raise ValueError(
            f"Y must be a np.ndarray or torch.Tensor; found {type(Y).__name__}."
        )
    src_neg = _CONVENTIONS[source]["negative"]
    tgt_neg = _CONVENTIONS[target]["negative"]
    Y[Y == src_neg] = tgt_neg
    return Y


def plusminus_to_categorical(Y):
    """Map labels from {0 abstain, 1, -1} to {0 abstain, 1, 2}."""
    return convert_labels(Y, "plusminus", "categorical")


def categorical_to_plusminus(Y):
    """Map labels from {0 abstain, 1, 2} to {0 abstain, 1, -1}."""
    return convert_labels(Y, "categorical", "plusminus")


def label_matrix_to_one_hot(L, k: Optional[int] = None) -> torch.Tensor:
    """One-hot encode a categorical label matrix ``L [n, m]``.

    Returns a float tensor of shape ``[n, m, k+1]`` with ``[i, j, v-1] = 1`` for
    each vote ``v`` in 1..k; abstains (0) stay all zero and the last slice
    ``[..., k]`` is always zero (the shape MeTaL returns).
    """
    if isinstance(L, torch.Tensor):
        L = L.detach().cpu().numpy()
    elif sparse.issparse(L):
        L = L.toarray()
    L = np.asarray(L)
    if L.ndim != 2:
        raise ValueError(f"L must be a 2-D label matrix; found shape {L.shape}.")
    if L.size and (L.min() < 0 or np.any(L != np.round(L))):
        raise ValueError("L must contain integer labels in {0, 1, ..., k}.")
    L = L.astype(np.int64)
    if k is None:
        k = int(L.max()) if L.size else 0
    elif L.size and L.max() > k:
        raise ValueError(f"L has a label {int(L.max())} larger than k={k}.")
    n, m = L.shape
    one_hot = torch.zeros(n, m, k + 1)
    rows, cols = np.nonzero(L)
    one_hot[rows, cols, L[rows, cols] - 1] = 1
    return one_hot


def recursive_transform(x: dict, test_func: Callable, transform: Callable) -> dict:
    """In place: replace every value of the nested dict ``x`` passing ``test_func``
    with ``transform(value)``; recurse into dict values. Returns ``x``."""
    for key, value in x.items():
        if test_func(value):
            x[key] = transform(value)
        if isinstance(value, dict):
            recursive_transform(value, test_func, transform)
    return x


def _str2bool(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "t", "y"):
        return True
    if lowered in ("0", "false", "no", "f", "n"):
        return False
    raise argparse.ArgumentTypeError(f"Expected a boolean value; found {value!r}.")


def _make_converter(default):
    def convert(value: str):
        if value.lower() == "none":
            return None
        if default is None:
            return value
        return type(default)(value)

    return convert


def add_flags_from_config(parser, config_dict: dict):
    """Add one ``--<key>`` argparse flag per leaf of a nested config dict.

    The key ``"verbose"`` is skipped. Booleans accept 0/1/true/false; list
    defaults use ``action="append"``; ``"none"`` maps to ``None``.
    """
    for key, value in config_dict.items():
        if isinstance(value, dict):
            add_flags_from_config(parser, value)
            continue
        if key == "verbose":
            continue
        try:
            if isinstance(value, bool):
                parser.add_argument(f"--{key}", type=_str2bool, default=value)
            elif isinstance(value, list) and value:
                parser.add_argument(
                    f"--{key}", action="append", type=type(value[0]), default=value
                )
            elif isinstance(value, list):
                parser.add_argument(f"--{key}", action="append", default=value)
            else:
                parser.add_argument(
                    f"--{key}", type=_make_converter(value), default=value
                )
        except argparse.ArgumentError:
            print(f"Could not add flag for param {key} because it was already present.")
    return parser


def _same_value(a, b) -> bool:
    """Equality check for the merge's chatter that never raises."""
    if a is b:
        return True
    try:
        return bool(np.array_equal(a, b)) if hasattr(a, "__len__") else bool(a == b)
    except Exception:
        return False


def recursive_merge_dicts(x: dict, y: dict, misses: str = "report", verbose=None):
    """Return a deep copy of ``x`` with the entries of ``y`` merged in.

    Keys of ``y`` may be given flat: a key missing at the current level of ``x``
    is looked up depth-first (insertion order) in its nested dicts, and the first
    dict containing it receives the value. Keys found nowhere are handled by
    ``misses``: ``"insert"`` (add at the level being merged, the top level for a
    flat key), ``"exception"`` (raise ``ValueError``), ``"report"`` (print a
    message) or ``"ignore"``.

    Values from ``y`` are inserted by reference. Overwriting a dict with a
    non-dict raises ``ValueError``; an empty dict replaces the existing dict.
    """
    check_choice(misses, ("insert", "exception", "report", "ignore"), "misses")
    verbose = _merge_verbosity(x, y, verbose)

    def missed(level: dict, key: Any, value: Any) -> None:
        message = f"Could not find kwarg '{key}' in destination dict."
        if misses == "insert":
            level[key] = value
            if verbose > 1:
                print(f"Added {key}: {value} to destination dict.")
        elif misses == "exception":
            raise ValueError(
                f"{message} '{key}' is not a config key here; check its spelling."
            )
        elif misses == "report":
            print(message)

    return _merged(x, y, missed, verbose)


# Config keys of earlier MeTaL versions, and the key that does their job now.
RENAMED_CONFIG_KEYS = {
    "batchnorm": "middle_batchnorm",
    "dropout": "middle_dropout",
    "k": "layer_out_dims",
}


def merge_config(
    config: dict, updates: Mapping, owner: str, insert: bool = False
) -> dict:
    """``config`` with ``updates`` merged in as MeTaL merges configs (flat leaf
    names reach their key at any depth; see ``recursive_merge_dicts``): the one
    config merge of the MeTaL-vocabulary models, trainers and tuners.

    A key found nowhere in ``config`` is accepted, as MeTaL accepted it: kept
    in the config (``insert=True``, where MeTaL inserted unknown keys) or
    dropped. Either way one ``UserWarning`` per key names it, says it has no
    effect and suggests the nearest real key, if there is one (``batchnorm``
    -> ``middle_batchnorm``). Checking the values of known keys is the
    caller's job.

    Args:
        config: the complete config (its defaults, or the current config).
        updates: the keys to merge, flat or nested.
        owner: who merges, for the warning (e.g. ``"EndModel"``).
        insert: keep unknown keys in the config.

    Returns:
        a new config (``config`` is not modified).
    """
    if not isinstance(updates, Mapping):
        raise ValueError(
            f"{owner}: config updates must be a dict; found {type(updates).__name__}."
        )
    known = _all_config_keys(config)

    def missed(level: dict, key: Any, value: Any) -> None:
        if insert:
            level[key] = value
        nearest = _nearest_key(key, known)
        hint = f" (did you mean {nearest!r}?)" if nearest is not None else ""
        warnings.warn(
            f"{owner} got the unknown config key {key!r}, which has no effect"
            f"{hint}.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )

    return _merged(config, updates, missed, _merge_verbosity(config, updates, None))


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def user_stacklevel() -> int:
    """The ``stacklevel`` at which a warning issued by the caller of this
    function points at the first frame outside the ``metal`` package (the user
    code that passed the config), so the warning shows the user's line."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(
        _PACKAGE_DIR + os.sep
    ):
        frame = frame.f_back
        level += 1
    return level


def _merge_verbosity(x: Mapping, y: Mapping, verbose) -> int:
    if not isinstance(x, Mapping) or not isinstance(y, Mapping):
        raise ValueError(
            f"recursive_merge_dicts expects two dicts; found {type(x).__name__} "
            f"and {type(y).__name__}."
        )
    if verbose is None:
        verbose = y.get("verbose", x.get("verbose", 1))
    return 1 if verbose is None else verbose


def _merged(x: dict, y: Mapping, missed, verbose) -> dict:
    z = copy.deepcopy(x)
    _merge_into(z, y, missed, verbose)
    return z


def _all_config_keys(config: Mapping) -> List[str]:
    """Every key of a nested config, depth-first."""
    keys = []
    for key, value in config.items():
        keys.append(key)
        if isinstance(value, Mapping):
            keys.extend(_all_config_keys(value))
    return keys


def _nearest_key(key: Any, known: Sequence[str]) -> Optional[str]:
    """The real key a misspelled or outdated one most likely meant: a renamed
    key's successor, else the closest spelling (None if nothing is close)."""
    if not isinstance(key, str):
        return None
    renamed = RENAMED_CONFIG_KEYS.get(key)
    if renamed in known:
        return renamed
    close = difflib.get_close_matches(
        key, [k for k in known if isinstance(k, str)], n=1, cutoff=0.7
    )
    return close[0] if close else None


def _merge_into(x: dict, y: Mapping, missed, verbose) -> None:
    for key, value in y.items():
        if _update_key(x, key, value, missed, verbose):
            continue
        if _update_nested(x, key, value, missed, verbose):
            continue
        missed(x, key, value)


def _update_key(x: dict, key, value, missed, verbose) -> bool:
    """Update ``x[key]`` if ``key`` is at this level; return whether it was."""
    if key not in x:
        return False
    if isinstance(x[key], dict):
        if not isinstance(value, Mapping):
            raise ValueError(
                f"Attempted to overwrite the dict at key '{key}' with the non-dict "
                f"value {value!r}."
            )
        if len(value) == 0:
            x[key] = {}
        else:
            _merge_into(x[key], value, missed, verbose)
        return True
    if verbose > 1 and key != "verbose":
        verb = "Reaffirming" if _same_value(x[key], value) else "Overwriting"
        print(f"{verb} {key}: {x[key]!r} -> {value!r}")
    x[key] = value
    return True


def _update_nested(x: dict, key, value, missed, verbose) -> bool:
    """Depth-first search of ``x``'s sub-dicts for ``key``; update the first hit."""
    for sub in x.values():
        if not isinstance(sub, dict):
            continue
        if _update_key(sub, key, value, missed, verbose):
            return True
        if _update_nested(sub, key, value, missed, verbose):
            return True
    return False


def split_data(
    *inputs,
    splits=[0.5, 0.5],
    shuffle=True,
    stratify_by=None,
    index_only=False,
    seed=None,
):
    """Split aligned inputs into ``len(splits)`` parts.

    Args:
        *inputs: lists, tuples, NumPy arrays, scipy.sparse matrices or torch
            tensors, all with the same number of items n.
        splits: all ints summing to n, or all floats summing to 1.
        shuffle: shuffle the items before splitting.
        stratify_by: optional labels (length n); each label's items are split
            separately so the proportions are kept.
        index_only: return the list of index lists instead of the data.
        seed: seed for the shuffling RNG (a private ``random.Random``; the global
            ``random`` state is not touched when a seed is given).

    Returns:
        for one input, a list of its splits; for several, a list (one per input)
        of lists of splits; with ``index_only``, a list of index lists.
    """
    if not inputs:
        raise ValueError("split_data needs at least one input to split.")
    n = _length(inputs[0])
    for i, data in enumerate(inputs[1:], start=1):
        if _length(data) != n:
            raise ValueError(
                f"All inputs must have the same length; input 0 has {n} items and "
                f"input {i} has {_length(data)}."
            )
    splits = list(splits)
    if not splits:
        raise ValueError("splits must be a non-empty list of ints or floats.")
    if all(is_int(s) for s in splits):
        if any(s < 0 for s in splits) or sum(splits) != n:
            raise ValueError(
                f"Integer splits must be non-negative and sum to the number of items "
                f"({n}); found {splits} (sum {sum(splits)})."
            )
        fractions = [s / n if n else 0.0 for s in splits]
        exact_counts = [int(s) for s in splits]
    elif all(isinstance(s, (float, np.floating)) for s in splits):
        if any(s < 0 for s in splits) or abs(sum(splits) - 1.0) > 1e-8:
            raise ValueError(
                f"Float splits must be non-negative and sum to 1; found {splits} "
                f"(sum {sum(splits)})."
            )
        fractions = [float(s) for s in splits]
        exact_counts = None
    else:
        raise ValueError(
            f"splits must be all ints or all floats; found {splits} with types "
            f"{[type(s).__name__ for s in splits]}."
        )

    rng = random.Random(seed) if seed is not None else random
    if stratify_by is None:
        pools = [list(range(n))]
    else:
        labels = stratify_by
        if isinstance(labels, torch.Tensor):
            labels = labels.detach().cpu().numpy()
        if _length(labels) != n:
            raise ValueError(
                f"stratify_by must have one label per item ({n}); found "
                f"{_length(labels)}."
            )
        pool_map: Dict[Any, List[int]] = {}
        for i, label in enumerate(np.asarray(labels).tolist()):
            pool_map.setdefault(label, []).append(i)
        pools = list(pool_map.values())

    assignments: List[List[int]] = [[] for _ in splits]
    for pool in pools:
        if shuffle or stratify_by is not None:
            rng.shuffle(pool)
        if exact_counts is not None and stratify_by is None:
            counts = exact_counts[:-1]
        else:
            counts = [int(round(len(pool) * f)) for f in fractions[:-1]]
        start = 0
        for j, count in enumerate(counts):
            count = max(0, min(count, len(pool) - start))
            assignments[j].extend(pool[start : start + count])
            start += count
        assignments[-1].extend(pool[start:])

    if index_only:
        return assignments
    outputs = [[_take(data, idx) for idx in assignments] for data in inputs]
    return outputs[0] if len(outputs) == 1 else outputs


def _take(data, indices: List[int]):
    """Select items of ``data`` by an index list, keeping the index order."""
    if isinstance(data, (list, tuple)):
        return [data[i] for i in indices]
    if isinstance(data, np.ndarray):
        return data[np.asarray(indices, dtype=np.int64)]
    if sparse.issparse(data):
        return sparse.csr_matrix(data)[np.asarray(indices, dtype=np.int64)]
    if isinstance(data, torch.Tensor):
        return data[torch.as_tensor(indices, dtype=torch.long, device=data.device)]
    raise ValueError(
        "split_data inputs must be lists, tuples, np.ndarrays, scipy.sparse "
        f"matrices or torch.Tensors; found {type(data).__name__}."
    )


def padded_tensor(
    items: Sequence[torch.Tensor],
    pad_idx: int = 0,
    left_padded: bool = False,
    max_len: Optional[int] = None,
) -> torch.Tensor:
    """Stack variable-length 1-D tensors into ``[n, L]``, padded with ``pad_idx``.

    ``L`` is the longest item's length, or ``max_len`` when given (longer items
    are truncated: the first ``max_len`` entries are kept, or the last ones when
    ``left_padded``). Items are placed at the start of each row, or at the end
    when ``left_padded``. The result has the first item's dtype and device.
    """
    if len(items) == 0:
        raise ValueError("padded_tensor needs at least one item.")
    for i, item in enumerate(items):
        if not isinstance(item, torch.Tensor) or item.dim() != 1:
            raise ValueError(
                f"padded_tensor expects 1-D tensors; item {i} is "
                f"{type(item).__name__} with shape {getattr(item, 'shape', None)}."
            )
    lengths = [len(item) for item in items]
    width = max(lengths) if max_len is None else int(max_len)
    first = items[0]
    out = torch.full(
        (len(items), width), pad_idx, dtype=first.dtype, device=first.device
    )
    for i, item in enumerate(items):
        if len(item) > width:
            item = item[-width:] if left_padded else item[:width]
        length = len(item)
        if length == 0:
            continue
        if left_padded:
            out[i, width - length :] = item
        else:
            out[i, :length] = item
    return out


warnings_given = set()


def warn_once(self, msg: str, msg_name: Optional[str] = None) -> None:
    """Issue ``warnings.warn(msg)`` only the first time ``msg_name`` is seen.

    The leading ``self`` argument is ignored (kept for MeTaL compatibility).
    """
    name = msg_name or msg
    if name not in warnings_given:
        warnings.warn(msg)
        warnings_given.add(name)


def place_on_gpu(data):
    """Deprecated: move tensors (inside lists/tuples) to the current CUDA device."""
    if isinstance(data, (list, tuple)):
        return type(data)(place_on_gpu(item) for item in data)
    if isinstance(data, torch.Tensor):
        return data.cuda()
    raise ValueError(
        f"place_on_gpu expects tensors or lists/tuples of them; found "
        f"{type(data).__name__}."
    )


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Run torch's intra-op work on one thread inside the block; the calling
    thread's previous count is restored on exit.

    Used around passes that bring their own parallelism (worker threads over
    row chunks, Dask blocks run one per core) or that run many small kernels
    (the label model's optimizer steps): torch's parallel regions on top would
    oversubscribe the cores, and on a machine whose cores are busy each region
    waits for a time slice. Torch's count is a setting of the calling thread
    (a thread started later begins with the last count set), so each thread
    that runs torch work wraps it in this itself, and concurrent users never
    undo each other's setting.
    """
    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _resolve_device(device) -> torch.device:
    """Normalise ``"cpu"``, ``"cuda"``, ``"cuda:N"``, an int or a torch.device."""
    if isinstance(device, torch.device):
        return device
    if is_int(device):
        return torch.device("cpu") if device < 0 else torch.device(f"cuda:{device}")
    if isinstance(device, str):
        try:
            return torch.device(device)
        except RuntimeError:
            pass
    raise ValueError(
        f"device must be 'cpu', 'cuda', 'cuda:N', an int or a torch.device; "
        f"found {device!r}."
    )


def _is_negative_int(device) -> bool:
    return is_int(device) and device < 0


def move_to_device(obj, device=-1):
    """Recursively move tensors in dicts/lists/tuples to ``device``.

    ``device`` may be an int (N means ``cuda:N``), a string or a
    ``torch.device``. A negative int means "do not move": the object is returned
    unchanged, as it is when a CUDA device is requested but CUDA is not available.
    """
    if _is_negative_int(device):
        return obj
    target = _resolve_device(device)
    if target.type == "cuda" and not torch.cuda.is_available():
        return obj
    return _move(obj, target)


def _move(obj, device: torch.device):
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {key: _move(value, device) for key, value in obj.items()}
    if isinstance(obj, list):
        return [_move(item, device) for item in obj]
    if isinstance(obj, tuple):
        moved = [_move(item, device) for item in obj]
        return type(obj)(*moved) if hasattr(obj, "_fields") else tuple(moved)
    return obj


# The seeds every RNG accepts (torch's range; NumPy gets ``seed % 2**32``).
SEED_RANGE = (-(2**63), 2**64 - 1)


def check_seed(seed: Any, name: str = "seed") -> int:
    """``seed`` as a Python int, or ``ValueError`` naming ``name`` unless it is
    an integer (Python or NumPy, not a bool or float) in ``SEED_RANGE``."""
    lo, hi = SEED_RANGE
    return check_int(
        seed, name, minimum=lo, maximum=hi, expected="an integer in -2**63..2**64-1"
    )


def set_seed(seed: Union[int, np.integer]) -> None:
    """Seed Python's ``random``, NumPy's global RNG and torch (CUDA included).

    Raises:
        ValueError: unless ``seed`` is an integer in ``-2**63..2**64-1``.
    """
    seed = check_seed(seed)
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
