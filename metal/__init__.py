"""Snorkel MeTaL: weak supervision with many noisy label sources.

Label conventions: a task with cardinality k has classes 1..k; 0 means abstain
(in label matrices) or "no gold label" (in gold vectors). Probabilistic labels
are ``[n, k]`` arrays whose column c holds P(Y = c + 1).

The top-level names are imported lazily, so ``import metal`` is cheap and never
fails because an optional dependency is missing.
"""

from metal._lazy import lazy_exports
from metal._version import __version__

__all__ = [
    "EndModel",
    "LabelModel",
    "MajorityClassVoter",
    "MajorityLabelVoter",
    "RandomVoter",
    "RandomSearchTuner",
]

_EXPORTS = {
    "EndModel": "metal.end_model",
    "LabelModel": "metal.label_model",
    "MajorityClassVoter": "metal.label_model",
    "MajorityLabelVoter": "metal.label_model",
    "RandomVoter": "metal.label_model",
    "RandomSearchTuner": "metal.tuners",
}


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
