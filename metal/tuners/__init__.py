"""Hyperparameter search over config dicts: ``RandomSearchTuner`` and
``HyperbandTuner`` (both built on ``metal.tuners.tuner.ModelTuner``)."""

from metal.tuners.hyperband_tuner import HyperbandTuner
from metal.tuners.random_tuner import RandomSearchTuner
from metal.tuners.tuner import ModelTuner

__all__ = ["HyperbandTuner", "ModelTuner", "RandomSearchTuner"]
