"""Training-time side effects, as callbacks of the training engine: the
``Logger`` (prints metric lines), the ``Checkpointer`` (best model and
snapshots) and the run-log writers (``LogWriter``; ``TensorBoardWriter``,
whose backend is imported only when one is built).

The Operation API (Snorkel v0.10 vocabulary, served by ``metal.mmtl``) has
explicit faces of the same classes: ``LogManager`` (a ``Logger``),
``TaskMetricCheckpointer`` (a ``Checkpointer``), ``OperationLogWriter`` and
``OperationTensorBoardWriter`` (its folder layout and end of run).
"""

from metal.callbacks import Timer
from metal.logging.checkpointer import Checkpointer, TaskMetricCheckpointer
from metal.logging.config import CheckpointerConfig, LogManagerConfig, LogWriterConfig
from metal.logging.log_manager import LogManager
from metal.logging.logger import Logger
from metal.logging.tensorboard import OperationTensorBoardWriter, TensorBoardWriter
from metal.logging.writer import LogWriter, OperationLogWriter

__all__ = [
    "Checkpointer",
    "CheckpointerConfig",
    "LogManager",
    "LogManagerConfig",
    "LogWriter",
    "LogWriterConfig",
    "Logger",
    "OperationLogWriter",
    "OperationTensorBoardWriter",
    "TaskMetricCheckpointer",
    "TensorBoardWriter",
    "Timer",
]
