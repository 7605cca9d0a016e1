"""Synthetic data generators for tests and tutorials.

Label conventions: classes are ``1..k``; ``0`` means abstain in label matrices.
"""

from metal._lazy import lazy_exports
from metal.synthetic.generate import (
    SingleTaskTreeDepsGenerator,
    bags_to_counts,
    gaussian_bags_of_words,
    singletask_synthetic,
)
from metal.synthetic.words1k import vocab1k

__all__ = [
    "SingleTaskTreeDepsGenerator",
    "HierarchicalMultiTaskTreeDepsGenerator",
    "gaussian_bags_of_words",
    "bags_to_counts",
    "singletask_synthetic",
    "vocab1k",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    globals(),
    {"HierarchicalMultiTaskTreeDepsGenerator": "metal.synthetic.multitask"},
)
