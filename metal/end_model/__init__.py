"""Discriminative end models trained on (probabilistic) labels.

``SparseLogisticRegression`` (in ``metal.contrib``) is also importable from
here; it is loaded on first access.
"""

from metal._lazy import lazy_exports
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


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY_EXPORTS)
