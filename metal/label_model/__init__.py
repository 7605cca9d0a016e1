"""Label models: learn source accuracies without ground truth and output
probabilistic labels. Label matrices hold votes 0 (abstain) and 1..k."""

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


def __getattr__(name):
    # The MeTaL README imports the end model from here too
    # (``from metal.label_model import LabelModel, EndModel``).
    if name == "EndModel":
        from metal.end_model import EndModel

        return EndModel
    raise AttributeError(f"module 'metal.label_model' has no attribute {name!r}")
