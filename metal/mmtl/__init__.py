"""Multi-task learning: many tasks, datasets and metrics on one shared network.

One structure behind two front doors:

* the Operation API (the seed tutorial): ``Task`` (module pool + op sequence),
  ``Operation``, ``MultitaskClassifier``, ``DictDataset`` / ``DictDataLoader``,
  ``Trainer``, ``Scorer``, ``cross_entropy_with_probs``; labels ``0..k-1`` with
  ``-1`` = no label; metric names ``task/dataset/split/metric``;
* MeTaL v0.5: ``ClassificationTask`` / ``RegressionTask`` /
  ``TokenClassificationTask`` (three-op tasks), ``MetalModel`` (a
  ``MultitaskClassifier``), ``Payload``, ``MmtlDataset`` / ``MmtlDataLoader``,
  ``MultitaskTrainer``; labels ``1..k`` with ``0`` = no label; metric names
  ``task/payload/label_set/metric``.

Both trainers run on ``metal.engine`` (the one training loop) with
``metal.logging`` for logs, checkpoints and run files; the Operation API's
``LogManager``, ``Checkpointer``, ``LogWriter`` and ``TensorBoardWriter`` are
those classes (see ``metal.mmtl.loggers``).
"""

from metal.mmtl.classifier import MultitaskClassifier
from metal.mmtl.data import DictDataLoader, DictDataset, MmtlDataLoader, MmtlDataset
from metal.mmtl.loggers import Checkpointer, LogManager, LogWriter, TensorBoardWriter
from metal.mmtl.loss import cross_entropy_with_probs
from metal.mmtl.metal_model import MetalModel
from metal.mmtl.payload import Payload
from metal.mmtl.scorer import Scorer
from metal.mmtl.task import ClassificationTask, Operation, RegressionTask, Task
from metal.mmtl.token_task import TokenClassificationTask
from metal.mmtl.trainer import MultitaskTrainer, Trainer

__all__ = [
    "Checkpointer",
    "ClassificationTask",
    "DictDataLoader",
    "DictDataset",
    "LogManager",
    "LogWriter",
    "MetalModel",
    "MmtlDataLoader",
    "MmtlDataset",
    "MultitaskClassifier",
    "MultitaskTrainer",
    "Operation",
    "Payload",
    "RegressionTask",
    "Scorer",
    "Task",
    "TensorBoardWriter",
    "TokenClassificationTask",
    "Trainer",
    "cross_entropy_with_probs",
]
