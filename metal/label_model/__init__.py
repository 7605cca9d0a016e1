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

__all__ = [
    "MajorityClassVoter",
    "MajorityLabelVoter",
    "RandomVoter",
    "LabelModel",
    "WeakSupervisionLoss",
]


# The MeTaL README imports the end model from here too
# (``from metal.label_model import LabelModel, EndModel``).
__getattr__, __dir__ = lazy_exports(
    __name__, globals(), {"EndModel": "metal.end_model"}
)
