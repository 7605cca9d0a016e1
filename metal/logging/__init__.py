"""Training-time logging: progress counting (``Logger``, ``Timer``),
checkpointing (``Checkpointer``) and run logs (``LogWriter``, and
``TensorBoardWriter`` whose backend is imported only when one is built).

The Operation API (Snorkel v0.10 vocabulary, served by ``metal.mmtl``) uses the
same classes: ``LogManager`` is a ``Logger``, ``TaskMetricCheckpointer`` (its
``Checkpointer``) is a ``Checkpointer``, and ``LogWriter`` /
``TensorBoardWriter`` accept both vocabularies.
"""

from metal.logging.checkpointer import Checkpointer, TaskMetricCheckpointer
from metal.logging.config import CheckpointerConfig, LogManagerConfig, LogWriterConfig
from metal.logging.log_manager import LogManager
from metal.logging.logger import Logger, Timer
from metal.logging.tensorboard import TensorBoardWriter
from metal.logging.writer import LogWriter

__all__ = [
    "Checkpointer",
    "CheckpointerConfig",
    "LogManager",
    "LogManagerConfig",
    "LogWriter",
    "LogWriterConfig",
    "Logger",
    "TaskMetricCheckpointer",
    "TensorBoardWriter",
    "Timer",
]
