"""The Operation API's logging classes (Snorkel v0.10 names), for
``from metal.mmtl.loggers import LogManager, Checkpointer, ...``.

All are the Operation-API faces of ``metal.logging`` classes: ``LogManager``
(a ``Logger``), ``Checkpointer`` (``metal.logging.TaskMetricCheckpointer``, a
``metal.logging.Checkpointer`` built from ``CheckpointerConfig`` fields),
``LogWriter`` and ``TensorBoardWriter`` (``metal.logging.OperationLogWriter``
and ``OperationTensorBoardWriter``: files in ``log_dir/run_name``).
"""

from metal.logging import LogManager  # noqa: F401
from metal.logging import OperationLogWriter as LogWriter  # noqa: F401
from metal.logging import OperationTensorBoardWriter as TensorBoardWriter  # noqa: F401
from metal.logging import TaskMetricCheckpointer as Checkpointer  # noqa: F401
from metal.logging.config import (  # noqa: F401
    CheckpointerConfig,
    LogManagerConfig,
    LogWriterConfig,
)
