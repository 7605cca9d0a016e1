"""Training-time logging: progress counting (``Logger``, ``Timer``),
checkpointing (``Checkpointer``) and run logs (``LogWriter``, and
``TensorBoardWriter`` whose backend is imported only when one is built)."""

from metal.logging.checkpointer import Checkpointer
from metal.logging.logger import Logger, Timer
from metal.logging.tensorboard import TensorBoardWriter
from metal.logging.writer import LogWriter

__all__ = ["Checkpointer", "Logger", "LogWriter", "TensorBoardWriter", "Timer"]
