"""Label models: learn source accuracies without ground truth and output
probabilistic labels. Label matrices hold votes 0 (abstain) and 1..k."""

from metal._lazy import lazy_exports
from metal.label_model.baselines import (
    MajorityClassVoter,
    MajorityLabelVoter,
    RandomVoter,
)
from metal.label_model.label_model import LabelModel
from metal.label_model.online_loss import WeakSupervisionLoss
from metal.label_model.structure import (
    dependency_strengths,
    dependency_threshold,
    learn_dependencies,
)

__all__ = [
    "MajorityClassVoter",
    "MajorityLabelVoter",
    "RandomVoter",
    "LabelModel",
    "WeakSupervisionLoss",
    "learn_dependencies",
    "dependency_strengths",
    "dependency_threshold",
]


# The MeTaL README imports the end model from here too
# (``from metal.label_model import LabelModel, EndModel``).
__getattr__, __dir__ = lazy_exports(
    __name__, globals(), {"EndModel": "metal.end_model"}
)
