"""The Operation API's logging classes (Snorkel v0.10 names), for
``from metal.mmtl.loggers import LogManager, Checkpointer, ...``.

All are ``metal.logging`` classes: ``LogManager`` (a ``Logger``),
``Checkpointer`` (``metal.logging.TaskMetricCheckpointer``, a
``metal.logging.Checkpointer`` built from ``CheckpointerConfig`` fields),
``LogWriter`` and ``TensorBoardWriter`` (which accept both vocabularies).
"""

from metal.logging import LogManager, LogWriter
from metal.logging import TaskMetricCheckpointer as Checkpointer
from metal.logging import TensorBoardWriter
from metal.logging.config import CheckpointerConfig, LogManagerConfig, LogWriterConfig

__all__ = [
    "Checkpointer",
    "CheckpointerConfig",
    "LogManager",
    "LogManagerConfig",
    "LogWriter",
    "LogWriterConfig",
    "TensorBoardWriter",
]
