"""Discriminative end models trained on (probabilistic) labels.

``SparseLogisticRegression`` (in ``metal.contrib``) is also importable from
here; it is loaded on first access.
"""

import importlib

from metal.end_model.em_defaults import em_default_config
from metal.end_model.end_model import EndModel
from metal.end_model.identity_module import IdentityModule
from metal.end_model.logreg import LogisticRegression
from metal.end_model.loss import SoftCrossEntropyLoss

__all__ = [
    "EndModel",
    "IdentityModule",
    "LogisticRegression",
    "SoftCrossEntropyLoss",
    "em_default_config",
]

_LAZY_EXPORTS = {
    "SparseLogisticRegression": "metal.contrib.baselines.sparse_logreg",
}


def __getattr__(name):
    if name in _LAZY_EXPORTS:
        value = getattr(importlib.import_module(_LAZY_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'metal.end_model' has no attribute {name!r}")
