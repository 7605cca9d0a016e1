"""Baseline models (also importable as ``metal.end_model.SparseLogisticRegression``)."""

from metal.contrib.baselines.sparse_logreg import SparseLogisticRegression

__all__ = ["SparseLogisticRegression"]
