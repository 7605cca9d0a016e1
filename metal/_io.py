"""Every file ``metal`` writes or reads goes through this module.

Writes are atomic: the content goes to a temporary file in the destination's
folder (created if needed), which is then renamed over the destination, so a
crash never leaves a truncated model, checkpoint or log behind.

Reads of torch files use ``torch.load(..., weights_only=True)``: a file holds
tensors and plain data only, so loading one can never run code. Any failure
to read (a truncated, empty or foreign file) becomes a ``ValueError`` that
names the file.

Files hold plain data: ``to_plain`` turns configs and attributes into values
``torch.load(weights_only=True)`` and JSON accept.
"""

import importlib
import json
import os
import shutil
import stat
import tempfile
from typing import IO, Any, Callable, Dict, List, Optional, Union

import numpy as np
import torch

PathLike = Union[str, "os.PathLike[str]"]

__all__ = [
    "atomic_copy",
    "atomic_torch_save",
    "atomic_write",
    "atomic_write_json",
    "atomic_write_text",
    "check_entries",
    "find_class",
    "is_plain",
    "is_state_dict",
    "json_default",
    "plain_number",
    "read_state_dict",
    "reshaped_entries",
    "safe_torch_load",
    "state_mismatch",
    "to_plain",
]


# ------------------------------------------------------------------- writing
def atomic_write(
    destination: PathLike, write: Callable[[IO], None], binary: bool = True
) -> str:
    """Call ``write(file)`` on a temporary file beside ``destination``, then
    rename it to ``destination``; return the destination path.

    The destination's folder is created if needed. On any failure the
    temporary file is removed and ``destination`` is left as it was.
    """
    destination = os.fspath(destination)
    folder = os.path.dirname(os.path.abspath(destination))
    os.makedirs(folder, exist_ok=True)
    suffix = os.path.splitext(destination)[1] or ".tmp"
    fd, tmp_path = tempfile.mkstemp(dir=folder, prefix=".tmp_", suffix=suffix)
    try:
        mode = {"mode": "wb"} if binary else {"mode": "w", "encoding": "utf-8"}
        with os.fdopen(fd, **mode) as f:
            write(f)
        os.replace(tmp_path, destination)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise
    return destination


def atomic_torch_save(obj: Any, destination: PathLike, **kwargs: Any) -> str:
    """``torch.save(obj)`` to ``destination``, atomically."""
    return atomic_write(destination, lambda f: torch.save(obj, f, **kwargs))


def atomic_write_json(obj: Any, destination: PathLike, indent: int = 1) -> str:
    """Write ``obj`` as JSON (non-JSON values through ``json_default``)."""
    return atomic_write(
        destination,
        lambda f: json.dump(obj, f, indent=indent, default=json_default),
        binary=False,
    )


def atomic_write_text(text: str, destination: PathLike) -> str:
    """Write the string ``text`` to ``destination``, atomically."""
    return atomic_write(destination, lambda f: f.write(text), binary=False)


def atomic_copy(source: PathLike, destination: PathLike) -> str:
    """Copy the file ``source`` to ``destination``, atomically."""

    def copy(f: IO) -> None:
        with open(source, "rb") as src:
            shutil.copyfileobj(src, f)

    return atomic_write(destination, copy)


def json_default(obj: Any) -> Any:
    """JSON for the values a config, metric or report may hold beyond JSON's
    own types: arrays and tensors become lists, sets sorted lists, anything
    else its string form."""
    if isinstance(obj, (np.ndarray, np.generic)):
        return obj.tolist()
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().tolist()
    if isinstance(obj, (set, frozenset)):
        return _sorted(obj)
    return str(obj)


def _sorted(values: Any) -> list:
    """The values in order: by value when they compare, else by their text."""
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=str)


# ------------------------------------------------------------------- reading
def safe_torch_load(
    source: PathLike, what: str = "file written by metal", map_location: Any = "cpu"
) -> Any:
    """Read a torch file with ``weights_only=True`` (no code can run).

    Every model, checkpoint and trainer file ``metal`` reads goes through this
    function; the caller then checks the structure of what it returns (see
    ``check_entries``).

    Args:
        source: the file's path.
        what: what the file should be, for the error message (e.g. ``"model
            file"``, ``"checkpoint"``).
        map_location: where tensors are loaded (default: the CPU).

    Raises:
        FileNotFoundError: if there is no such file.
        ValueError: naming the file, when it cannot be read: it is a folder,
            or it is damaged (truncated, empty) or is not a ``what`` (random
            bytes, a pickle of arbitrary objects, which is refused rather than
            run). The message never embeds torch's own, which suggests the
            unsafe way of loading.
    """
    path = os.fspath(source)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"No such file: {path!r}.") from None
    if stat.S_ISDIR(info.st_mode):
        raise ValueError(f"{path!r} is a folder, not a {what}.")
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{path!r} is not a regular file, so not a {what}.")
    if info.st_size == 0:
        raise ValueError(
            f"Could not read {path!r}: the file is empty, so it is damaged or is "
            f"not a {what}."
        )
    with open(path, "rb") as f:
        try:
            return torch.load(f, map_location=map_location, weights_only=True)
        except Exception as exc:
            reason = _read_failure(exc)
    raise ValueError(
        f"Could not read {path!r}: the file is damaged or is not a {what} "
        f"({reason}). It must hold tensors and plain data, as metal writes them."
    )


def _read_failure(exc: Exception) -> str:
    """Why ``torch.load`` failed, in words that never point to unsafe loading
    (torch's message for a refused pickle does)."""
    if "GLOBAL" in str(exc) or "Unsupported global" in str(exc):
        return (
            "it holds objects other than tensors and plain data; they were "
            "refused, not run"
        )
    return type(exc).__name__


def check_entries(
    data: Any, source: PathLike, types: Dict[str, Any], what: str = "file"
) -> None:
    """Check that ``data`` read from ``source`` is a dict holding every entry of
    ``types`` (entry -> type or tuple of types) with a value of that type.

    Raises:
        ValueError: naming the file and the missing entries or the first entry
            of the wrong type.
    """
    path = os.fspath(source)
    if not isinstance(data, dict):
        raise ValueError(
            f"{path!r} is not a {what}: it holds {type(data).__name__} data, not "
            "a dict."
        )
    missing = [key for key in types if key not in data]
    if missing:
        raise ValueError(
            f"{path!r} is damaged: the {what} lacks its "
            f"{', '.join(map(repr, missing))} "
            f"entr{'y' if len(missing) == 1 else 'ies'}."
        )
    for key, expected in types.items():
        if not isinstance(data[key], expected):
            raise ValueError(
                f"{path!r} is damaged: the {what}'s {key!r} entry is of type "
                f"{type(data[key]).__name__}, not {_type_names(expected)}."
            )


def _type_names(expected: Any) -> str:
    kinds = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join(
        "None" if kind is type(None) else kind.__name__ for kind in kinds
    )


def is_state_dict(value: Any) -> bool:
    """Whether ``value`` looks like a module's state dict: a dict of tensors
    under string keys (empty for a module without parameters)."""
    return isinstance(value, dict) and all(
        isinstance(key, str) and isinstance(tensor, torch.Tensor)
        for key, tensor in value.items()
    )


def read_state_dict(source: PathLike, what: str = "model file") -> Dict[str, Any]:
    """The model state dict held by a file: a bare state dict, a training
    checkpoint's ``"model"`` entry or a saved model bundle's ``"state_dict"``.

    Raises:
        FileNotFoundError: if there is no such file.
        ValueError: naming the file, when it cannot be read, holds no state
            dict, or its ``"model"``/``"state_dict"`` entry is not one.
    """
    path = os.fspath(source)
    state = safe_torch_load(source, what)
    if is_state_dict(state):
        return state
    if isinstance(state, dict):
        for key in ("model", "state_dict"):
            if key in state:
                if not is_state_dict(state[key]):
                    raise ValueError(
                        f"{path!r} is damaged: its {key!r} entry is not a state "
                        "dict (tensors under string keys)."
                    )
                return state[key]
    raise ValueError(f"{path!r} holds no model state dict, so it is not a {what}.")


# ---------------------------------------------------------------- plain data
_PLAIN_SCALARS = (str, int, float, bool, type(None))


def is_plain(value: Any) -> bool:
    """Whether ``value`` can be stored as is: scalars, arrays, tensors and
    lists/tuples/dicts (string keys) of them."""
    if isinstance(value, _PLAIN_SCALARS) or isinstance(value, (np.generic, np.ndarray)):
        return True
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, (list, tuple)):
        return all(map(is_plain, value))
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_plain(v) for k, v in value.items())
    return False


def to_plain(value: Any, callables: Optional[str] = None) -> Any:
    """Convert to data that ``torch.load(weights_only=True)`` accepts.

    NumPy arrays become lists, NumPy scalars Python scalars, tensors CPU
    tensors and sets sorted lists. Callables become None (code cannot be
    stored safely; a loaded model gets the default and the caller passes the
    function again), or their string form when ``callables="str"``. Other
    objects become their string form.
    """
    if isinstance(value, _PLAIN_SCALARS):
        return value
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: to_plain(v, callables) for k, v in value.items()}
    if isinstance(value, list):
        return [to_plain(v, callables) for v in value]
    if isinstance(value, tuple):
        return tuple(to_plain(v, callables) for v in value)
    if isinstance(value, (set, frozenset)):
        return _sorted([to_plain(v, callables) for v in value])
    if callable(value):
        return str(value) if callables == "str" else None
    return str(value)


def plain_number(value: Any, tidy: bool = False) -> Any:
    """A Python number from NumPy and one-element torch scalars (other values
    unchanged); with ``tidy``, integral floats become ints (so ``2.0`` epochs
    print and name files as ``2``)."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    elif isinstance(value, np.generic):
        value = value.item()
    if tidy and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# ------------------------------------------------------------------ classes
def _subclasses(cls: type):
    yield cls
    for sub in cls.__subclasses__():
        yield from _subclasses(sub)


def find_class(qualified: str, base: type, what: str = "class") -> type:
    """The class named ``"module:QualName"`` in a file, among ``base`` and its
    subclasses: nothing is unpickled, and only modules of the ``metal``
    package itself may be imported to find it.

    Raises:
        ValueError: naming the class when it is not available.
    """
    module_name, _, qualname = str(qualified).partition(":")

    def find() -> Optional[type]:
        for cls in _subclasses(base):
            if cls.__module__ == module_name and cls.__qualname__ == qualname:
                return cls
        return None

    found = find()
    if found is None and (module_name == "metal" or module_name.startswith("metal.")):
        try:
            importlib.import_module(module_name)
        except ImportError:
            pass
        found = find()
    if found is None:
        raise ValueError(
            f"{what} {qualified!r} is not available; import the module that "
            "defines it, or pass a constructed model as load(source, model=...)."
        )
    return found


def reshaped_entries(
    state: Dict[str, torch.Tensor], own: Dict[str, torch.Tensor]
) -> List[str]:
    """``"name (saved shape) instead of (own shape)"`` for every tensor of
    ``state`` whose name the model's ``own`` state dict has with another
    shape, in ``own``'s order."""
    return [
        f"{name} {tuple(state[name].shape)} instead of {tuple(own[name].shape)}"
        for name in own
        if name in state
        and isinstance(own[name], torch.Tensor)
        and isinstance(state[name], torch.Tensor)
        and state[name].shape != own[name].shape
    ]


def state_mismatch(
    state: Dict[str, torch.Tensor], own: Dict[str, torch.Tensor], shown: int = 3
) -> str:
    """How ``state`` differs from the model's ``own`` state dict (missing and
    unexpected names, different shapes; at most ``shown`` of each), or ""."""

    def listed(names: List[str]) -> str:
        more = f" and {len(names) - shown} more" if len(names) > shown else ""
        return ", ".join(names[:shown]) + more

    problems = []
    missing = [name for name in own if name not in state]
    unexpected = [name for name in state if name not in own]
    reshaped = reshaped_entries(state, own)
    if missing:
        problems.append(f"it lacks {listed(missing)}")
    if unexpected:
        problems.append(f"it has unknown weights {listed(unexpected)}")
    if reshaped:
        problems.append(f"it has {listed(reshaped)}")
    return "; ".join(problems)
