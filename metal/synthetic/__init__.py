"""Synthetic data generators for tests and tutorials.

Label conventions: classes are ``1..k``; ``0`` means abstain in label matrices.
"""

from metal.synthetic.generate import (
    HierarchicalMultiTaskTreeDepsGenerator,
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
