"""Default configuration of the LabelModel (key order is the search order used
when flat keyword arguments are merged into it)."""

from metal.logging.writer import WRITER_CONFIG_DEFAULTS
from metal.run import optimizer_config_defaults

lm_default_config = {
    "seed": None,
    "verbose": True,
    "show_plots": True,
    "device": "cpu",
    "train_config": {
        "data_loader_config": {"batch_size": 1000, "num_workers": 0},
        "learn_class_balance": False,
        # Guess of each source's precision P(Y = y | lambda_i = y); a float or a
        # length-m array. Used to initialise mu and to break label symmetry.
        "prec_init": 0.7,
        # Strength of the l2 penalty pulling mu towards its initial value; a
        # float, or an array of length m (per source) or m*k (per row of mu).
        "l2": 0.0,
        # "sgd" | "adam" | "adamax" | "rmsprop" | "lbfgs" (needs no settings).
        # MeTaL's tree had no adam/rmsprop sub-configs (a KeyError for those
        # optimizers); this one is the EndModel's.
        "optimizer_config": optimizer_config_defaults("sgd"),
        "lr_scheduler": None,
        # Number of full-batch optimisation steps (the cap for "lbfgs").
        "n_epochs": 100,
        "progress_bar": False,
        "logger": True,
        "logger_config": {
            "log_unit": "epochs",
            "log_train_every": 1,
            "log_train_metrics": ["train/loss"],
            "log_train_metrics_func": None,
            "log_valid_every": 0,
            "log_valid_metrics": [],
            "log_valid_metrics_func": None,
        },
        # None | "json" | "tensorboard": the fit loss (train/loss at every
        # logged epoch) and the config, written as the EndModel writes its run.
        "writer": None,
        # Must stay False: the fit has no validation data to pick a best model
        # by (a ValueError otherwise).
        "checkpoint": False,
        # Added to MeTaL's tree (after its keys): the writer's settings, as in
        # the EndModel's config.
        "writer_config": dict(WRITER_CONFIG_DEFAULTS),
    },
}
