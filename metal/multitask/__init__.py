"""Multi-task weak supervision: task structure, models and datasets.

Label conventions: task ``s`` with cardinality ``K_s`` has classes ``1..K_s``;
0 means abstain (in label matrices) or no gold label (in gold vectors).
Multi-task label matrices, labels and probabilities are lists with one entry
per task.
"""

from metal.multitask.mt_classifier import MTClassifier
from metal.multitask.mt_end_model import MTEndModel
from metal.multitask.mt_label_model import MTLabelModel
from metal.multitask.task_graph import TaskGraph, TaskHierarchy
from metal.multitask.utils import MultiXYDataset, MultiYDataset

__all__ = [
    "MultiXYDataset",
    "MultiYDataset",
    "TaskGraph",
    "TaskHierarchy",
    "MTClassifier",
    "MTEndModel",
    "MTLabelModel",
]
