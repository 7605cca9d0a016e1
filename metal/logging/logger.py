"""Counting training progress in log units, and logging metrics when due.

A ``Logger`` is told about every batch (``check`` / ``increment``) and answers
whether a log is due (every ``log_train_every`` units) and, at each log, whether
validation is due (every ``log_valid_every`` units). Logged metrics go to the
writer and, when verbose, to the screen as one line such as
``[2 epo]: TRAIN:[loss=0.477] VALID:[accuracy=0.973]``.

Metric names are ``split/metric`` (single task), ``task/split/metric``
(multitask end models) or ``task/payload/label_set/metric`` (mmtl).
"""

import math
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import numpy as np
from tqdm import tqdm

from metal.metrics import METRICS, metric_score

LOG_UNITS = ("seconds", "examples", "batches", "epochs")

LOGGER_DEFAULTS = {
    "log_unit": "epochs",
    "log_train_every": 1,
    "log_train_metrics": ["loss"],
    "log_train_metrics_func": None,
    "log_valid_every": 1,
    "log_valid_metrics": ["accuracy"],
    "log_valid_metrics_func": None,
}

# Key names of the mmtl trainers' logger_config, mapped onto this Logger's.
_KEY_ALIASES = {"log_every": "log_train_every", "score_every": "log_valid_every"}
_UNIT_ALIASES = {"points": "examples"}


class Timer:
    """Wall-clock stopwatch: ``elapsed`` since the last click, ``total_elapsed``
    since the last ``reset``."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.start = time.perf_counter()
        self.click = self.start

    def update(self) -> None:
        self.click = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.click

    def total_elapsed(self) -> float:
        return time.perf_counter() - self.start


class Logger:
    """Counts progress in log units and logs metrics when due.

    Args:
        config: a ``logger_config`` dict (keys of ``LOGGER_DEFAULTS``; the mmtl
            names ``log_every``/``score_every`` are accepted as aliases).
        writer: a ``LogWriter`` (or anything with ``add_scalar``) or falsy.
        epoch_size: examples per epoch (used for ``log_unit="epochs"`` when the
            caller does not report epoch ends).
        verbose: print each log line.
        batches_per_epoch: batches per epoch, for fractional epoch counts.

    Raises:
        ValueError: for an unknown ``log_unit``, a non-positive
            ``log_train_every`` or a ``log_valid_every`` that is not a positive
            multiple of it.
    """

    def __init__(
        self,
        config: dict,
        writer={},
        epoch_size: Optional[int] = None,
        verbose: bool = True,
        batches_per_epoch: Optional[int] = None,
    ):
        self.config = _normalise_config(config)
        self.writer = writer
        self.verbose = verbose
        self.log_unit = self.config["log_unit"]
        self.epoch_size = epoch_size
        self.batches_per_epoch = batches_per_epoch
        self.log_train_every = self.config["log_train_every"]
        self.log_train_metrics = [
            add_split_prefix(m, "train") for m in self.config["log_train_metrics"] or []
        ]
        self.log_valid_metrics = [
            add_split_prefix(m, "valid") for m in self.config["log_valid_metrics"] or []
        ]
        self.valid_every_X = self._calculate_valid_frequency()
        self.timer = Timer() if self.log_unit == "seconds" else None
        self._seconds_offset = 0.0
        self._explicit_epochs = False
        self._epochs_done = 0
        self._batches_in_epoch = 0
        self._examples_in_epoch = 0
        self.example_count = 0
        self.example_total = 0
        self.batch_count = 0
        self.batch_total = 0
        self.unit_count = 0
        self.unit_total = 0
        self.log_count = 0
        self._unit_total_at_reset = 0

    # ------------------------------------------------------------ frequency
    def _calculate_valid_frequency(self) -> int:
        """Validate every this many logs (0 = never)."""
        train_every = self.config["log_train_every"]
        valid_every = self.config["log_valid_every"]
        if not _is_number(train_every) or train_every <= 0:
            raise ValueError(
                f"log_train_every must be a positive number; found {train_every!r}."
            )
        if not valid_every:
            return 0
        ratio = valid_every / train_every if _is_number(valid_every) else None
        if ratio is None or ratio < 1 or not math.isclose(ratio, round(ratio)):
            raise ValueError(
                "log_valid_every must be a positive multiple of log_train_every "
                f"(or 0 to never validate); found log_valid_every={valid_every!r} "
                f"and log_train_every={train_every!r}."
            )
        return int(round(ratio))

    # ------------------------------------------------------------- counting
    def check(self, batch_size: int, end_of_epoch: Optional[bool] = None) -> bool:
        """Count a batch (see ``increment``); return whether a log is due."""
        self.increment(batch_size, end_of_epoch=end_of_epoch)
        return self.unit_count >= self.log_train_every

    def increment(self, batch_size: int, end_of_epoch: Optional[bool] = None) -> None:
        """Count a batch of ``batch_size`` examples.

        ``end_of_epoch`` tells whether this batch ends an epoch (the training
        engine always says); when left ``None`` epochs are counted from
        ``batches_per_epoch`` or ``epoch_size``.
        """
        self.example_count += batch_size
        self.example_total += batch_size
        self.batch_count += 1
        self.batch_total += 1
        if end_of_epoch is not None:
            self._explicit_epochs = True
            self._count_epoch_progress(batch_size, end_of_epoch)
        elif self._explicit_epochs:
            self._count_epoch_progress(batch_size, False)
        self._update_units()

    def _update_units(self) -> None:
        unit = self.log_unit
        if unit == "batches":
            self.unit_total = self.batch_total
        elif unit == "examples":
            self.unit_total = self.example_total
        elif unit == "seconds":
            self.unit_total = int(self.timer.total_elapsed() + self._seconds_offset)
            self.unit_count = int(self.timer.elapsed())
            return
        else:
            self.unit_total = self._current_unit_total()
        count = self.unit_total - self._unit_total_at_reset
        if isinstance(count, float):
            # Fractional epochs: 0.6 - 0.3 must count as 0.3 units, not less.
            count = round(count, 9)
        self.unit_count = _tidy(count)

    def end_epoch(self) -> None:
        """Count an epoch end that came without a batch (short final epoch)."""
        self._explicit_epochs = True
        self._count_epoch_progress(0, True)
        self._update_units()

    def _count_epoch_progress(self, batch_size: int, end_of_epoch: bool) -> None:
        if end_of_epoch:
            self._epochs_done += 1
            self._batches_in_epoch = 0
            self._examples_in_epoch = 0
        else:
            self._batches_in_epoch += 1
            self._examples_in_epoch += batch_size

    @property
    def epoch_total(self) -> float:
        """Epochs elapsed so far (fractional within an epoch when measurable)."""
        if self._explicit_epochs:
            if not self._batches_in_epoch:
                return self._epochs_done
            if self.batches_per_epoch:
                partial = self._batches_in_epoch / self.batches_per_epoch
            elif self.epoch_size:
                partial = self._examples_in_epoch / self.epoch_size
            else:
                partial = 0.0
            return _tidy(self._epochs_done + min(partial, 1.0 - 1e-9))
        if self.batches_per_epoch:
            return _tidy(self.batch_total / self.batches_per_epoch)
        if self.epoch_size:
            return _tidy(self.example_total / self.epoch_size)
        return 0

    def _current_unit_total(self):
        if self.log_unit == "seconds":
            return int(self.timer.total_elapsed() + self._seconds_offset)
        if self.log_unit == "examples":
            return self.example_total
        if self.log_unit == "batches":
            return self.batch_total
        if not (self._explicit_epochs or self.batches_per_epoch or self.epoch_size):
            raise ValueError(
                "log_unit='epochs' needs the epoch size: pass epoch_size or "
                "batches_per_epoch to the Logger, or report epoch ends."
            )
        return self.epoch_total

    def validation_due(self) -> bool:
        """Count a log; return whether validation is due at it."""
        self.log_count += 1
        return bool(self.valid_every_X) and self.log_count % self.valid_every_X == 0

    # -------------------------------------------------------------- metrics
    def calculate_metrics(
        self, model, train_loader, valid_loader, metrics_dict=None
    ) -> Dict[str, float]:
        """Compute the configured train (and, when due, valid) metrics.

        Counts a log. Returns a fresh dict with custom train functions' results,
        custom valid functions' results (when validating), standard train
        metrics and standard valid metrics (when validating), in that order.
        The training loss is not included (the training loop provides it).
        """
        validate = valid_loader is not None and self.validation_due()
        metrics = {}
        metrics.update(custom_metrics(model, train_loader, "train", self.train_funcs))
        if validate:
            metrics.update(
                custom_metrics(model, valid_loader, "valid", self.valid_funcs)
            )
        metrics.update(
            standard_metrics(model, train_loader, self.log_train_metrics, "train")
        )
        if validate:
            metrics.update(
                standard_metrics(model, valid_loader, self.log_valid_metrics, "valid")
            )
        return metrics

    @property
    def train_funcs(self) -> List[Callable]:
        return _as_func_list(self.config["log_train_metrics_func"], "train")

    @property
    def valid_funcs(self) -> List[Callable]:
        return _as_func_list(self.config["log_valid_metrics_func"], "valid")

    # ---------------------------------------------------------------- output
    def log(self, metrics_dict: Dict[str, Any]) -> None:
        """Write to the writer (if any), print (if verbose), then ``reset``."""
        if self.writer:
            self.write_to_file(metrics_dict)
        if self.verbose:
            self.print_to_screen(metrics_dict)
        self.reset()

    def print_to_screen(self, metrics_dict: Dict[str, Any]) -> None:
        """Print one line: progress header, then metrics grouped by split."""
        groups: Dict[str, List[str]] = {}
        for full_name, value in metrics_dict.items():
            group, name = _display_name(full_name)
            groups.setdefault(group, []).append(f"{name}={_format_value(value)}")
        body = "".join(f" {g.upper()}:[{', '.join(v)}]" for g, v in groups.items())
        tqdm.write(f"{self._header()}:{body}")

    def _header(self) -> str:
        total = self.unit_total
        text = f"{total:.2f}" if isinstance(total, float) else str(total)
        header = f"[{text} {self.log_unit[:3]}"
        if self.log_unit != "epochs" and (
            self.batches_per_epoch or self.epoch_size or self._explicit_epochs
        ):
            header += f" ({float(self.epoch_total):.2f} epo)"
        return header + "]"

    def write_to_file(self, metrics_dict: Dict[str, Any]) -> None:
        for name, value in metrics_dict.items():
            self.writer.add_scalar(name, value, self.unit_total)

    def reset(self) -> None:
        """Start counting toward the next log."""
        self.unit_count = 0
        self.example_count = 0
        self.batch_count = 0
        self._unit_total_at_reset = self.unit_total
        if self.timer is not None:
            self.timer.update()

    # ----------------------------------------------------------- persistence
    def state_dict(self) -> Dict[str, Any]:
        """Counters as plain Python numbers (for checkpoints)."""
        seconds = self.timer.total_elapsed() + self._seconds_offset if self.timer else 0
        return {
            "example_total": self.example_total,
            "batch_total": self.batch_total,
            "unit_total": self.unit_total,
            "log_count": self.log_count,
            "unit_total_at_reset": self._unit_total_at_reset,
            "explicit_epochs": self._explicit_epochs,
            "epochs_done": self._epochs_done,
            "batches_in_epoch": self._batches_in_epoch,
            "examples_in_epoch": self._examples_in_epoch,
            "seconds_total": float(seconds),
        }

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Continue counting from a ``state_dict``."""
        self.example_total = state["example_total"]
        self.batch_total = state["batch_total"]
        self.unit_total = state["unit_total"]
        self.log_count = state["log_count"]
        self._unit_total_at_reset = state["unit_total_at_reset"]
        self._explicit_epochs = state["explicit_epochs"]
        self._epochs_done = state["epochs_done"]
        self._batches_in_epoch = state["batches_in_epoch"]
        self._examples_in_epoch = state["examples_in_epoch"]
        if self.timer is not None:
            self.timer.reset()
            self._seconds_offset = state["seconds_total"]
            self._unit_total_at_reset = int(self._seconds_offset)
        self.unit_count = 0
        self.example_count = 0
        self.batch_count = 0

    # ---------------------------------------------------------- name helpers
    @staticmethod
    def add_split_prefix(metric: str, split: str) -> str:
        return add_split_prefix(metric, split)

    @staticmethod
    def remove_split_prefix(metric: str) -> str:
        return remove_split_prefix(metric)


# ---------------------------------------------------------------- name helpers
def add_split_prefix(metric: str, split: str) -> str:
    """``"m"`` -> ``"<split>/m"``; ``"task/m"`` -> ``"task/<split>/m"``; names
    already containing ``"<split>/"`` are returned unchanged."""
    if f"{split}/" in metric:
        return metric
    if "/" in metric:
        task, name = metric.rsplit("/", 1)
        return f"{task}/{split}/{name}"
    return f"{split}/{metric}"


def remove_split_prefix(metric: str) -> str:
    """The metric's own name: the last ``/``-separated component."""
    return metric.split("/")[-1]


def _display_name(full_name: str):
    """(group, short name) for the screen: group by split, or by task in mmtl."""
    parts = full_name.split("/")
    if len(parts) == 2:
        return parts[0], parts[1]
    if len(parts) == 3:
        return parts[1], f"{parts[0]}/{parts[2]}"
    if len(parts) > 3:
        return parts[0], "/".join(parts[1:])
    return "metrics", full_name


def _format_value(value) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.3f}"
    return str(value)


# -------------------------------------------------------------- metric helpers
def standard_metrics(
    model, data, metric_names: Sequence[str], split: str
) -> Dict[str, float]:
    """Score ``model`` on ``data`` with the names in ``metric_names`` whose last
    component is in ``METRICS`` (others, such as ``loss``, are skipped).

    Single-task models are scored in one prediction pass, ignoring gold label 0
    (as ``score`` does); soft gold labels ``[n, k]`` are scored by their argmax.
    Multitask models report the mean over tasks via ``model.score``.

    Returns:
        ``{full name with split prefix: value}``.
    """
    wanted = [
        (add_split_prefix(m, split), remove_split_prefix(m))
        for m in metric_names
        if remove_split_prefix(m) in METRICS
    ]
    if not wanted or data is None:
        return {}
    if getattr(model, "multitask", False):
        return {
            full: float(model.score(data, metric=name, verbose=False))
            for full, name in wanted
        }
    Y_p, Y, Y_s = model._get_predictions(data, return_probs=True)
    Y = hard_gold_labels(Y)
    return {
        full: float(metric_score(Y, Y_p, name, probs=Y_s, ignore_in_gold=[0]))
        for full, name in wanted
    }


def hard_gold_labels(Y) -> np.ndarray:
    """Gold labels as ``[n]`` ints: soft ``[n, k]`` rows become ``argmax + 1``."""
    Y = np.asarray(Y)
    if Y.ndim == 2 and Y.shape[1] > 1:
        return Y.argmax(axis=1) + 1
    return Y.reshape(-1)


def custom_metrics(
    model, data, split: str, funcs: Sequence[Callable]
) -> Dict[str, float]:
    """Call each ``f(model, data) -> {name: value}`` and prefix names by split."""
    metrics = {}
    if data is None:
        return metrics
    for func in funcs:
        result = func(model, data)
        if not isinstance(result, dict):
            raise ValueError(
                f"A log_{split}_metrics_func must return a dict of metric values; "
                f"{getattr(func, '__name__', func)!r} returned "
                f"{type(result).__name__}."
            )
        for name, value in result.items():
            metrics[add_split_prefix(name, split)] = value
    return metrics


def _as_func_list(funcs, split: str) -> List[Callable]:
    if funcs is None:
        return []
    funcs = list(funcs) if isinstance(funcs, (list, tuple)) else [funcs]
    for func in funcs:
        if not callable(func):
            raise ValueError(
                f"log_{split}_metrics_func must be a callable f(model, loader) -> "
                f"dict or a list of them; found {func!r}."
            )
    return funcs


# ------------------------------------------------------------------- config
def _normalise_config(config: Optional[dict]) -> dict:
    """Fill defaults, map mmtl key names, and check the log unit."""
    merged = dict(LOGGER_DEFAULTS)
    for key, value in (config or {}).items():
        merged[_KEY_ALIASES.get(key, key)] = value
    unit = _UNIT_ALIASES.get(merged["log_unit"], merged["log_unit"])
    if unit not in LOG_UNITS:
        raise ValueError(
            f"log_unit must be one of {list(LOG_UNITS)}; found {merged['log_unit']!r}."
        )
    merged["log_unit"] = unit
    return merged


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, bool
    )


def _tidy(value: Union[int, float]):
    """Integral floats become ints (so ``[2 epo]`` and ``checkpoint_2.pth``)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
