"""``LogManager``: the Operation API's (Snorkel v0.10) face of ``Logger``.

It counts points, batches and epochs exactly as ``Logger`` does, and adds the
v0.10 vocabulary on top: ``update(batch_size)``, ``trigger_evaluation()``,
``trigger_checkpointing()`` and ``cleanup(model)``, the ``point_*`` /
``epoch_count`` names, and a reference to the run's ``TaskMetricCheckpointer``.
Being a ``Logger``, it can drive the training engine directly (``Trainer.fit``
does so).
"""

from typing import Any, Dict, Optional

from metal._checks import is_number
from metal.logging.checkpointer import TaskMetricCheckpointer
from metal.logging.config import (
    COUNTER_UNITS,
    LogManagerConfig,
    check_counter_unit,
    config_from_kwargs,
)
from metal.logging.logger import Logger
from metal.logging.writer import LogWriter

__all__ = ["LogManager"]


class LogManager(Logger):
    """Counts training progress and says when to evaluate and checkpoint.

    Args:
        n_batches_per_epoch: batches in one epoch (for fractional epochs).
        log_writer: a ``LogWriter`` / ``TensorBoardWriter`` or None.
        checkpointer: a ``TaskMetricCheckpointer`` or None.
        **kwargs: ``LogManagerConfig`` fields: ``counter_unit`` (``points``,
            ``batches`` or ``epochs``) and ``evaluation_freq`` (evaluate every
            this many units).

    Counters: ``point_count``/``point_total``, ``batch_count``/``batch_total``,
    ``epoch_count``/``epoch_total`` (batches / ``n_batches_per_epoch``),
    ``unit_count``/``unit_total`` (those of ``counter_unit``); the ``*_count``
    ones restart at every evaluation. ``trigger_count`` counts evaluations
    since the last checkpoint. The typed settings are ``log_manager_config``
    (``config`` is the ``Logger`` configuration they translate to).

    Raises:
        ValueError: ``"Unrecognized counter_unit: ..."``, a non-positive
            ``evaluation_freq``, or an unknown setting.
    """

    def __init__(
        self,
        n_batches_per_epoch: int,
        log_writer: Optional[LogWriter] = None,
        checkpointer: Optional[TaskMetricCheckpointer] = None,
        **kwargs: Any,
    ) -> None:
        config = config_from_kwargs(LogManagerConfig, kwargs)
        check_counter_unit(config.counter_unit)
        freq = config.evaluation_freq
        if not is_number(freq) or freq <= 0:
            raise ValueError(
                f"evaluation_freq must be a positive number; found {freq!r}."
            )
        super().__init__(
            {
                "log_unit": COUNTER_UNITS[config.counter_unit],
                "log_train_every": freq,
                "log_valid_every": freq,
            },
            writer=log_writer,
            verbose=False,
            batches_per_epoch=n_batches_per_epoch,
        )
        self.log_manager_config = config
        self.n_batches_per_epoch = n_batches_per_epoch
        self.counter_unit = config.counter_unit
        self.evaluation_freq = freq
        self.checkpointer = checkpointer
        self.trigger_count = 0

    # ---------------------------------------------------------- v0.10 names
    @property
    def log_writer(self) -> Optional[LogWriter]:
        return self.writer

    @log_writer.setter
    def log_writer(self, writer: Optional[LogWriter]) -> None:
        self.writer = writer

    @property
    def point_count(self) -> int:
        """Points since the last evaluation."""
        return self.example_count

    @property
    def point_total(self) -> int:
        """Points since the start."""
        return self.example_total

    @property
    def epoch_count(self) -> float:
        """Epochs (batches / ``n_batches_per_epoch``) since the last evaluation."""
        if not self.n_batches_per_epoch:
            return 0
        return self.batch_count / self.n_batches_per_epoch

    @property
    def checkpoint_factor(self) -> int:
        """Evaluations per checkpoint (the checkpointer's ``checkpoint_factor``)."""
        return getattr(self.checkpointer, "checkpoint_factor", 1)

    # ------------------------------------------------------------- counting
    def update(self, batch_size: int) -> None:
        """Count one batch of ``batch_size`` points."""
        self.increment(batch_size)

    def increment(self, batch_size: int, end_of_epoch=None) -> None:
        """Count a batch; without epoch-end reports, epoch units are counted
        as ``batch_count / n_batches_per_epoch`` (the v0.10 count)."""
        super().increment(batch_size, end_of_epoch)
        if self.counter_unit == "epochs" and not self.progress._explicit_epochs:
            self.unit_count = self.epoch_count

    def trigger_evaluation(self) -> bool:
        """Whether ``evaluation_freq`` units passed since the last evaluation;
        if so, count a trigger and restart the ``*_count`` counters."""
        satisfied = self.unit_count >= self.evaluation_freq
        if satisfied:
            self.trigger_count += 1
            self.reset()
        return satisfied

    def trigger_checkpointing(self) -> bool:
        """Whether ``checkpoint_factor`` evaluations passed since the last
        checkpoint (always False without a checkpointer); if so, restart the
        trigger count."""
        if self.checkpointer is None:
            return False
        satisfied = self.trigger_count >= self.checkpoint_factor
        if satisfied:
            self.trigger_count = 0
        return satisfied

    # --------------------------------------------------------------- output
    def write_to_file(self, metrics_dict: Dict[str, Any]) -> None:
        """Write each metric with step ``point_total`` (the v0.10 step)."""
        for name, value in metrics_dict.items():
            self.writer.add_scalar(name, value, self.point_total)

    def cleanup(self, model: Any) -> Any:
        """End of training: let the writer write/close its files, clear the
        checkpoint snapshots and load the best model. Returns the model."""
        if self.log_writer is not None:
            self.log_writer.cleanup()
        if self.checkpointer is not None:
            self.checkpointer.clear()
            model = self.checkpointer.load_best_model(model)
        return model

    # ----------------------------------------------------------- persistence
    def state_dict(self) -> Dict[str, Any]:
        state = super().state_dict()
        state["trigger_count"] = self.trigger_count
        return state

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.trigger_count = state.get("trigger_count", 0)
