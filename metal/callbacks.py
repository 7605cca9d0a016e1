"""What the training engine tells the rest of a run: callbacks and progress.

The engine (``metal.engine``) owns the loop. Everything with a side effect
(printing metric lines, writing run logs, saving checkpoints) is a
``Callback`` the engine calls at fixed points, the pattern PyTorch
Lightning uses:

* ``on_fit_start(engine)``: before the first batch (after a resume, too);
* ``on_log(engine, metrics)``: at every log event, with the metrics of that
  event (the running training loss, the learning rate, and validation
  metrics when validation was due);
* ``on_batch_end(engine, metrics, is_last)``: after every batch (``metrics``
  is the log event's dict when this batch logged, else None; ``is_last``
  says the batch ended an epoch);
* ``on_fit_end(engine, result)``: after the last batch, in callback order;
* ``on_resume(engine, bundle)``: when a run continues from a checkpoint.

``Progress`` counts where training stands, in examples, batches, (fractional)
epochs, seconds and the run's log unit. The engine owns one per run; loggers
read it for their progress headers and writers for their steps.
"""

import math
import time
from typing import Any, Dict, Optional, Union

from metal._checks import check_choice, is_number
from metal._io import plain_number

# The hooks receive ``metal.engine.Engine`` and its ``TrainingResult``; this
# module sits below the engine, so their hints are aliases of Any.
_Engine = Any
_Result = Any

LOG_UNITS = ("seconds", "examples", "batches", "epochs")
# Names of the log units in other vocabularies (the Operation API's "points").
UNIT_ALIASES = {"points": "examples"}

__all__ = [
    "LOG_UNITS",
    "Callback",
    "Progress",
    "Timer",
    "check_log_unit",
    "valid_every_logs",
]


class Callback:
    """Base class of the engine's callbacks; every hook does nothing here."""

    def on_fit_start(self, engine: _Engine) -> None:
        """Called once before the first batch."""

    def on_log(self, engine: _Engine, metrics: Dict[str, Any]) -> None:
        """Called at every log event with its metrics."""

    def on_batch_end(
        self, engine: _Engine, metrics: Optional[Dict[str, Any]], is_last: bool
    ) -> None:
        """Called after every batch (and once for an epoch that ended short)."""

    def on_fit_end(self, engine: _Engine, result: _Result) -> None:
        """Called after the last batch; may fill in ``result``."""

    def on_resume(self, engine: _Engine, bundle: Dict[str, Any]) -> None:
        """Called when training continues from the checkpoint ``bundle``."""


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


def check_log_unit(unit: str) -> str:
    """The canonical name of a log unit (``"points"`` is ``"examples"``).

    Raises:
        ValueError: for anything but the ``LOG_UNITS`` and their aliases.
    """
    return check_choice(UNIT_ALIASES.get(unit, unit), LOG_UNITS, "log_unit")


def valid_every_logs(log_every: Any, valid_every: Any) -> int:
    """Validate every this many logs (0 = never), from the two frequencies in
    log units.

    Raises:
        ValueError: for a non-positive ``log_every``, or a ``valid_every`` that
            is neither falsy nor a positive multiple of ``log_every``.
    """
    if not is_number(log_every) or log_every <= 0:
        raise ValueError(
            f"log_train_every must be a positive number; found {log_every!r}."
        )
    if not valid_every:
        return 0
    ratio = valid_every / log_every if is_number(valid_every) else None
    if ratio is None or ratio < 1 or not math.isclose(ratio, round(ratio)):
        raise ValueError(
            "log_valid_every must be a positive multiple of log_train_every "
            f"(or 0 to never validate); found log_valid_every={valid_every!r} "
            f"and log_train_every={log_every!r}."
        )
    return int(round(ratio))


class Progress:
    """Where training stands, counted in examples, batches, epochs, seconds
    and in the log unit ``log_unit``.

    Args:
        log_unit: one of ``LOG_UNITS`` (or ``"points"``).
        epoch_size: examples per epoch, for fractional epochs when epoch ends
            are not reported.
        batches_per_epoch: batches per epoch, for fractional epochs.

    ``*_total`` counters run from the start; ``*_count`` counters (and
    ``unit_count``) restart at every ``reset`` (the engine resets after each
    log event). ``log_count`` counts log events.
    """

    def __init__(
        self,
        log_unit: str = "epochs",
        epoch_size: Optional[int] = None,
        batches_per_epoch: Optional[int] = None,
    ) -> None:
        self.log_unit = check_log_unit(log_unit)
        self.epoch_size = epoch_size
        self.batches_per_epoch = batches_per_epoch
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
        self.unit_count: Union[int, float] = 0
        self.unit_total: Union[int, float] = 0
        self.log_count = 0
        self._unit_total_at_reset: Union[int, float] = 0

    # ------------------------------------------------------------- counting
    def increment(self, batch_size: int, end_of_epoch: Optional[bool] = None) -> None:
        """Count a batch of ``batch_size`` examples.

        ``end_of_epoch`` tells whether this batch ends an epoch (the engine
        always says); when left None, epochs are counted from
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

    def end_epoch(self) -> None:
        """Count an epoch end that came without a batch (a short final epoch)."""
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

    def _update_units(self) -> None:
        unit = self.log_unit
        if unit == "seconds":
            self.unit_total = int(self.timer.total_elapsed() + self._seconds_offset)
            self.unit_count = int(self.timer.elapsed())
            return
        self.unit_total = self.current_unit_total()
        count = self.unit_total - self._unit_total_at_reset
        if isinstance(count, float):
            # Fractional epochs: 0.6 - 0.3 must count as 0.3 units, not less.
            count = round(count, 9)
        self.unit_count = plain_number(count, tidy=True)

    @property
    def epoch_total(self) -> Union[int, float]:
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
            return plain_number(self._epochs_done + min(partial, 1.0 - 1e-9), tidy=True)
        if self.batches_per_epoch:
            return plain_number(self.batch_total / self.batches_per_epoch, tidy=True)
        if self.epoch_size:
            return plain_number(self.example_total / self.epoch_size, tidy=True)
        return 0

    def current_unit_total(self) -> Union[int, float]:
        """Log units elapsed since the start."""
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

    @property
    def knows_epochs(self) -> bool:
        """Whether fractional epochs can be reported."""
        return bool(self.batches_per_epoch or self.epoch_size or self._explicit_epochs)

    def step(self, unit: str) -> Union[int, float]:
        """The count a run log uses as its step: ``"units"`` (log units since
        the start), ``"examples"`` or ``"batches"``."""
        if unit == "examples":
            return self.example_total
        if unit == "batches":
            return self.batch_total
        return self.unit_total

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
