"""Multi-task weak supervision: task structure, models and datasets.

Label conventions: task ``s`` with cardinality ``K_s`` has classes ``1..K_s``;
0 means abstain (in label matrices) or no gold label (in gold vectors).
"""

from metal.multitask.task_graph import TaskGraph, TaskHierarchy

__all__ = ["TaskGraph", "TaskHierarchy"]
