"""The default config of ``EndModel`` (every key it accepts).

Keys may be passed flat (``lr=0.1``, ``n_epochs=5``) or nested; the first
matching key in this tree (depth-first, in this order) receives a flat value.

Deviations from MeTaL v0.5 (documented): ``num_workers`` defaults to 0 (no
loader worker processes; tensor data is sliced directly); the engine's extra
features are exposed through keys appended at the end of their sections:
``train_config.grad_clip`` and ``lr_scheduler_config.warmup_steps``,
``warmup_unit`` and ``step_config`` (for ``lr_scheduler="step"``).
"""

import copy

from metal.logging.checkpointer import CHECKPOINT_DEFAULTS
from metal.logging.logger import LOGGER_DEFAULTS
from metal.logging.writer import WRITER_CONFIG_DEFAULTS
from metal.run import optimizer_config_defaults

em_default_config = {
    "seed": None,
    "verbose": True,
    "show_plots": True,  # unused
    # Network
    # [d_in, h_1, ..., h_m, k]: the input module's output width, the middle
    # layers' widths and the number of classes.
    "layer_out_dims": [10, 2],
    "input_layer_config": {
        "input_relu": True,
        "input_batchnorm": False,
        "input_dropout": 0.0,
    },
    "middle_layer_config": {
        "middle_relu": True,
        "middle_batchnorm": False,
        "middle_dropout": 0.0,
    },
    "skip_head": False,  # no head: the last layer's outputs are the logits
    # "cpu", "cuda", "cuda:N" or an int device index
    "device": "cpu",
    "train_config": {
        "loss_fn_reduction": "mean",  # "none" | "mean" | "sum"
        "progress_bar": False,
        "data_loader_config": {
            "batch_size": 32,
            "num_workers": 0,
            "shuffle": True,
        },
        "loss_weights": None,  # per-class weights, length k
        "n_epochs": 10,
        "l2": 0.0,
        "validation_metric": "accuracy",  # scored at the end when verbose
        "validation_freq": 1,  # unused
        "validation_scoring_kwargs": {},  # unused
        # "sgd" | "rmsprop" | "adam" | "adamax" | "sparseadam"; lr 0.01, SGD
        # momentum 0.9, Adam betas (0.9, 0.999) (also adamax and sparseadam)
        "optimizer_config": optimizer_config_defaults("adam"),
        # None | "constant" | "exponential" | "reduce_on_plateau" | "linear" |
        # "step"
        "lr_scheduler": "reduce_on_plateau",
        "lr_scheduler_config": {
            "lr_freeze": 0,  # no scheduler steps before this many epochs
            "exponential_config": {"gamma": 0.9},
            "plateau_config": {
                "factor": 0.5,
                "patience": 10,
                "threshold": 0.0001,
                "min_lr": 0.0001,
            },
            "warmup_steps": 0,  # linear warmup from lr 0 (0 = none)
            "warmup_unit": "batches",  # "batches" | "epochs"
            "step_config": {"step_size": 1, "gamma": 0.1},
        },
        "logger": True,  # unused (a Logger is always made)
        # log_unit, log_train_every, log_valid_every, metrics and metric
        # functions (see metal.logging.logger.LOGGER_DEFAULTS)
        "logger_config": copy.deepcopy(LOGGER_DEFAULTS),
        "writer": None,  # None | "json" | "tensorboard"
        "writer_config": dict(WRITER_CONFIG_DEFAULTS),
        "checkpoint": True,
        # the best model by a metric, snapshots every N log units (see
        # metal.logging.checkpointer.CHECKPOINT_DEFAULTS)
        "checkpoint_config": dict(CHECKPOINT_DEFAULTS),
        "grad_clip": None,  # clip the total gradient norm to this (None = off)
    },
}
