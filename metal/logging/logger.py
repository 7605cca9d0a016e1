"""Counting training progress in log units, and logging metrics when due.

A ``Logger`` is told about every batch (``check`` / ``increment``) and answers
whether a log is due (every ``log_train_every`` units) and, at each log, whether
validation is due (every ``log_valid_every`` units). Logged metrics go to the
writer and, when verbose, to the screen as one line such as
``[2 epo]: TRAIN:[loss=0.477] VALID:[accuracy=0.973]``.

Metric names are ``split/metric`` (single task), ``task/split/metric``
(multitask end models) or ``task/payload/label_set/metric`` (mmtl).
"""

from typing import Any, Callable, Dict, List, Optional

import numpy as np
from tqdm import tqdm

from metal.callbacks import (
    LOG_UNITS,
    Callback,
    Progress,
    Timer,
    check_log_unit,
    valid_every_logs,
)
from metal.metrics import (
    add_split_prefix,
    custom_metrics,
    remove_split_prefix,
    standard_metrics,
)

LOGGER_DEFAULTS = {
    "log_unit": "epochs",  # "seconds" | "examples" | "batches" | "epochs"
    "log_train_every": 1,
    "log_train_metrics": ["loss"],
    "log_train_metrics_func": None,  # f(model, loader) -> {name: value}
    "log_valid_every": 1,  # a multiple of log_train_every; 0 = never
    "log_valid_metrics": ["accuracy"],
    "log_valid_metrics_func": None,  # f(model, loader) -> {name: value}
}

# Key names of the mmtl trainers' logger_config, mapped onto this Logger's.
_KEY_ALIASES = {"log_every": "log_train_every", "score_every": "log_valid_every"}

__all__ = ["LOGGER_DEFAULTS", "LOG_UNITS", "Logger", "Timer"]


def _progress_attribute(name: str, doc: str) -> property:
    """A property reading and writing ``self.progress.<name>``."""

    def get(self):
        return getattr(self.progress, name)

    def set(self, value):
        setattr(self.progress, name, value)

    return property(get, set, doc=doc)


class Logger(Callback):
    """Records the metrics of a training run: prints them (when verbose) as one
    line per log event, such as ``[2 epo]: TRAIN:[loss=0.477]
    VALID:[accuracy=0.973]``.

    In a training run the engine decides when to log and validate, computes
    the metrics and hands them to ``on_log``; the Logger reads the engine's
    ``Progress`` for its header. Used on its own, MeTaL's counting API works
    as before: ``check(batch_size)`` counts a batch and says whether a log is
    due, ``validation_due()`` whether to validate at it, ``log(metrics)``
    writes to the writer, prints and restarts the count.

    Args:
        config: a ``logger_config`` dict (keys of ``LOGGER_DEFAULTS``; the mmtl
            names ``log_every``/``score_every`` are accepted as aliases).
        writer: a ``LogWriter`` (or anything with ``add_scalar``) or falsy;
            used by ``log`` (in a training run the writer is its own callback).
        epoch_size: examples per epoch (for ``log_unit="epochs"`` when epoch
            ends are not reported).
        verbose: print each log line.
        batches_per_epoch: batches per epoch, for fractional epoch counts.

    Raises:
        ValueError: for an unknown ``log_unit``, a non-positive
            ``log_train_every`` or a ``log_valid_every`` that is not a positive
            multiple of it.
    """

    def __init__(
        self,
        config: Optional[dict],
        writer: Any = {},
        epoch_size: Optional[int] = None,
        verbose: bool = True,
        batches_per_epoch: Optional[int] = None,
    ) -> None:
        self.config = _normalise_config(config)
        self.writer = writer
        self.verbose = verbose
        self.progress = Progress(self.config["log_unit"], epoch_size, batches_per_epoch)
        self.log_train_every = self.config["log_train_every"]
        self.log_train_metrics = [
            add_split_prefix(m, "train") for m in self.config["log_train_metrics"] or []
        ]
        self.log_valid_metrics = [
            add_split_prefix(m, "valid") for m in self.config["log_valid_metrics"] or []
        ]
        self.valid_every_X = valid_every_logs(
            self.config["log_train_every"], self.config["log_valid_every"]
        )

    # Counters live in ``progress`` (the engine's, during a training run).
    log_unit = _progress_attribute("log_unit", "The log unit.")
    epoch_size = _progress_attribute("epoch_size", "Examples per epoch.")
    batches_per_epoch = _progress_attribute("batches_per_epoch", "Batches per epoch.")
    timer = _progress_attribute("timer", "The Timer of log_unit='seconds'.")
    example_count = _progress_attribute("example_count", "Examples since the log.")
    example_total = _progress_attribute("example_total", "Examples in all.")
    batch_count = _progress_attribute("batch_count", "Batches since the log.")
    batch_total = _progress_attribute("batch_total", "Batches in all.")
    unit_count = _progress_attribute("unit_count", "Log units since the log.")
    unit_total = _progress_attribute("unit_total", "Log units in all.")
    log_count = _progress_attribute("log_count", "Log events so far.")

    @property
    def epoch_total(self):
        """Epochs elapsed so far (fractional within an epoch when measurable)."""
        return self.progress.epoch_total

    # ------------------------------------------------------------- callback
    def on_fit_start(self, engine) -> None:
        """Read the engine's progress from now on."""
        self.progress = engine.progress

    def on_log(self, engine, metrics: Dict[str, Any]) -> None:
        """Print the log event's metrics (when verbose)."""
        if self.verbose:
            self.print_to_screen(metrics)

    # ---------------------------------------------------------- counting API
    def check(self, batch_size: int, end_of_epoch: Optional[bool] = None) -> bool:
        """Count a batch (see ``increment``); return whether a log is due."""
        self.increment(batch_size, end_of_epoch=end_of_epoch)
        return self.unit_count >= self.log_train_every

    def increment(self, batch_size: int, end_of_epoch: Optional[bool] = None) -> None:
        """Count a batch of ``batch_size`` examples (``end_of_epoch``: whether
        it ends an epoch; when None, epochs are counted from
        ``batches_per_epoch`` or ``epoch_size``)."""
        self.progress.increment(batch_size, end_of_epoch)

    def end_epoch(self) -> None:
        """Count an epoch end that came without a batch (short final epoch)."""
        self.progress.end_epoch()

    def validation_due(self) -> bool:
        """Count a log; return whether validation is due at it."""
        self.progress.log_count += 1
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
        if self.log_unit != "epochs" and self.progress.knows_epochs:
            header += f" ({float(self.epoch_total):.2f} epo)"
        return header + "]"

    def write_to_file(self, metrics_dict: Dict[str, Any]) -> None:
        for name, value in metrics_dict.items():
            self.writer.add_scalar(name, value, self.unit_total)

    def reset(self) -> None:
        """Start counting toward the next log."""
        self.progress.reset()

    # ----------------------------------------------------------- persistence
    def state_dict(self) -> Dict[str, Any]:
        """Counters as plain Python numbers (for checkpoints)."""
        return self.progress.state_dict()

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Continue counting from a ``state_dict``."""
        self.progress.load_state_dict(state)

    # ---------------------------------------------------------- name helpers
    @staticmethod
    def add_split_prefix(metric: str, split: str) -> str:
        return add_split_prefix(metric, split)

    @staticmethod
    def remove_split_prefix(metric: str) -> str:
        return remove_split_prefix(metric)


# ---------------------------------------------------------------- name helpers
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
    merged["log_unit"] = check_log_unit(merged["log_unit"])
    return merged
