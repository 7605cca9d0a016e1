"""Typed, immutable configs of the Operation-based API (``Trainer``,
``MultitaskClassifier``), and ``merge_config`` to update them from dicts.

Configs are ``NamedTuple`` classes: ``config._asdict()`` gives the fields and
``config._replace(...)`` a modified copy. Nested settings are passed nested,
e.g. ``Trainer(log_manager_config={"evaluation_freq": 0.5})``.

``LogManagerConfig``, ``CheckpointerConfig`` and ``LogWriterConfig`` are
defined in ``metal.logging.config`` (beside the classes that read them) and
re-exported here.
"""

from typing import Any, Dict, NamedTuple, Optional, Tuple

from metal.logging.config import CheckpointerConfig, LogManagerConfig, LogWriterConfig

__all__ = [
    "AdamOptimizerConfig",
    "AdamaxOptimizerConfig",
    "CheckpointerConfig",
    "ClassifierConfig",
    "Config",
    "ExponentialLRSchedulerConfig",
    "LRSchedulerConfig",
    "LogManagerConfig",
    "LogWriterConfig",
    "OptimizerConfig",
    "SGDOptimizerConfig",
    "StepLRSchedulerConfig",
    "TrainerConfig",
    "config_to_dict",
    "merge_config",
]

Config = NamedTuple


class SGDOptimizerConfig(Config):
    momentum: float = 0.9


class AdamOptimizerConfig(Config):
    amsgrad: bool = False
    betas: Tuple[float, float] = (0.9, 0.999)


class AdamaxOptimizerConfig(Config):
    betas: Tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8


class OptimizerConfig(Config):
    sgd_config: SGDOptimizerConfig = SGDOptimizerConfig()
    adam_config: AdamOptimizerConfig = AdamOptimizerConfig()
    adamax_config: AdamaxOptimizerConfig = AdamaxOptimizerConfig()


class ExponentialLRSchedulerConfig(Config):
    gamma: float = 0.9


class StepLRSchedulerConfig(Config):
    gamma: float = 0.9
    step_size: int = 5


class LRSchedulerConfig(Config):
    warmup_steps: float = 0
    warmup_unit: str = "batches"
    warmup_percentage: float = 0.0
    min_lr: float = 0.0
    exponential_config: ExponentialLRSchedulerConfig = ExponentialLRSchedulerConfig()
    step_config: StepLRSchedulerConfig = StepLRSchedulerConfig()


class ClassifierConfig(Config):
    """``device``: GPU id (-1 or no CUDA: CPU); ``dataparallel``: wrap pooled
    modules in ``nn.DataParallel``."""

    device: int = 0
    dataparallel: bool = True


class TrainerConfig(Config):
    seed: Optional[int] = None
    n_epochs: int = 1
    lr: float = 0.01
    l2: float = 0.0
    grad_clip: float = 1.0
    train_split: str = "train"
    valid_split: str = "valid"
    test_split: str = "test"
    progress_bar: bool = True
    model_config: ClassifierConfig = ClassifierConfig()
    log_manager_config: LogManagerConfig = LogManagerConfig()
    checkpointing: bool = False
    checkpointer_config: CheckpointerConfig = CheckpointerConfig()
    logging: bool = False
    log_writer: str = "tensorboard"
    log_writer_config: LogWriterConfig = LogWriterConfig()
    optimizer: str = "adam"
    optimizer_config: OptimizerConfig = OptimizerConfig()
    lr_scheduler: str = "constant"
    lr_scheduler_config: LRSchedulerConfig = LRSchedulerConfig()
    batch_scheduler: str = "shuffled"


def merge_config(config: Any, config_updates: Dict[str, Any]) -> Any:
    """``config`` with ``config_updates`` applied; dict values update the
    nested config of the same name recursively. ``config_updates`` is modified
    in place (nested dicts are replaced by the merged configs).

    Raises:
        ValueError: naming a key that is not a field of the config.
    """
    fields = type(config)._fields
    unknown = [key for key in config_updates if key not in fields]
    if unknown:
        raise ValueError(
            f"Unknown {type(config).__name__} key(s) {unknown}; valid keys are "
            f"{list(fields)}."
        )
    for key, value in config_updates.items():
        nested = getattr(config, key)
        if isinstance(value, dict) and hasattr(nested, "_fields"):
            config_updates[key] = merge_config(nested, value)
    return config._replace(**config_updates)


def config_to_dict(config: Any) -> Any:
    """Nested plain dicts (and lists/tuples) from a config, for JSON or
    ``torch.save`` files loadable with ``weights_only=True``."""
    if hasattr(config, "_fields"):
        return {key: config_to_dict(value) for key, value in config._asdict().items()}
    if isinstance(config, (list, tuple)):
        return type(config)(config_to_dict(value) for value in config)
    if isinstance(config, dict):
        return {key: config_to_dict(value) for key, value in config.items()}
    return config
