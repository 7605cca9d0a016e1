"""Multi-task weak supervision: task structure, models and datasets.

Label conventions: task ``s`` with cardinality ``K_s`` has classes ``1..K_s``;
0 means abstain (in label matrices) or no gold label (in gold vectors).
Multi-task label matrices, labels and probabilities are lists with one entry
per task.

The models are imported on first use, so the task structures
(``metal.multitask.task_graph``) can be used without them.
"""

from metal._lazy import lazy_exports
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

__getattr__, __dir__ = lazy_exports(
    __name__,
    globals(),
    {
        "MTClassifier": "metal.multitask.mt_classifier",
        "MTEndModel": "metal.multitask.mt_end_model",
        "MTLabelModel": "metal.multitask.mt_label_model",
    },
)
