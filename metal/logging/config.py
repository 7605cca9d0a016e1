"""Typed settings of the Operation API's logging classes (Snorkel v0.10
vocabulary): ``LogManagerConfig``, ``CheckpointerConfig``, ``LogWriterConfig``.

They live here, next to the classes that read them, so that ``metal.logging``
does not depend on ``metal.mmtl``; ``metal.mmtl.config`` re-exports them as
fields of ``TrainerConfig``. Each is an immutable ``NamedTuple``.
"""

from typing import Any, Dict, List, NamedTuple, Optional, Type, TypeVar

__all__ = [
    "COUNTER_UNITS",
    "CheckpointerConfig",
    "LogManagerConfig",
    "LogWriterConfig",
    "check_counter_unit",
    "config_from_kwargs",
]

# The Operation API's counter units, mapped onto ``Logger``'s log units.
COUNTER_UNITS = {"points": "examples", "batches": "batches", "epochs": "epochs"}


class LogManagerConfig(NamedTuple):
    """``counter_unit``: ``points`` | ``batches`` | ``epochs``;
    ``evaluation_freq``: log (and score the valid split) every this many units."""

    counter_unit: str = "epochs"
    evaluation_freq: float = 1.0


class CheckpointerConfig(NamedTuple):
    """``checkpoint_metric``: ``"task/dataset/split/metric:mode"`` (mode ``min``
    or ``max``), the metric whose best model ``load_best_model`` restores;
    ``checkpoint_task_metrics``: more such metrics to keep a best model for;
    ``checkpoint_factor``: checkpoint every this many evaluations;
    ``checkpoint_runway``: no checkpoints before this many counter units;
    ``checkpoint_clear``: delete the ``checkpoint_*.pth`` snapshots at cleanup."""

    checkpoint_dir: str = "checkpoints"
    checkpoint_factor: int = 1
    checkpoint_metric: str = "model/all/train/loss:min"
    checkpoint_task_metrics: Optional[List[str]] = None
    checkpoint_runway: int = 0
    checkpoint_clear: bool = True


class LogWriterConfig(NamedTuple):
    """Run files go to ``log_dir/run_name``; ``run_name`` defaults to
    ``"<YYYY_MM_DD>/<HH_MM_SS>/"`` (the start of the run)."""

    log_dir: str = "logs"
    run_name: Optional[str] = None


ConfigT = TypeVar("ConfigT")


def config_from_kwargs(config_class: Type[ConfigT], kwargs: Dict[str, Any]) -> ConfigT:
    """``config_class(**kwargs)``, naming any key that is not one of its fields.

    Raises:
        ValueError: for unknown keys.
    """
    fields = config_class._fields  # type: ignore[attr-defined]
    unknown = [key for key in kwargs if key not in fields]
    if unknown:
        raise ValueError(
            f"Unknown {config_class.__name__} key(s) {unknown}; valid keys are "
            f"{list(fields)}."
        )
    return config_class(**kwargs)


def check_counter_unit(counter_unit: str) -> str:
    """Return ``counter_unit`` if it is one of ``COUNTER_UNITS``.

    Raises:
        ValueError: ``"Unrecognized counter_unit: ..."`` otherwise.
    """
    if counter_unit not in COUNTER_UNITS:
        raise ValueError(
            f"Unrecognized counter_unit: {counter_unit!r}; use one of "
            f"{list(COUNTER_UNITS)}."
        )
    return counter_unit
