import unittest

from metal.end_model.em_defaults import em_default_config


def keys_in_order(tree, prefix=""):
    """Every key of a nested dict as a dotted path, depth-first in order."""
    out = []
    for key, value in tree.items():
        out.append(prefix + key)
        if isinstance(value, dict):
            out.extend(keys_in_order(value, prefix + key + "."))
    return out


class EmDefaultsTestCase(unittest.TestCase):
    def test_spec_keys_in_spec_order(self):
        """The keys of the spec's tree appear in its order (the engine's extra
        keys are appended at the end of their sections)."""
        spec_order = [
            "seed",
            "verbose",
            "show_plots",
            "layer_out_dims",
            "input_layer_config",
            "input_layer_config.input_relu",
            "input_layer_config.input_batchnorm",
            "input_layer_config.input_dropout",
            "middle_layer_config",
            "middle_layer_config.middle_relu",
            "middle_layer_config.middle_batchnorm",
            "middle_layer_config.middle_dropout",
            "skip_head",
            "device",
            "train_config",
            "train_config.loss_fn_reduction",
            "train_config.progress_bar",
            "train_config.data_loader_config",
            "train_config.data_loader_config.batch_size",
            "train_config.data_loader_config.num_workers",
            "train_config.data_loader_config.shuffle",
            "train_config.loss_weights",
            "train_config.n_epochs",
            "train_config.l2",
            "train_config.validation_metric",
            "train_config.validation_freq",
            "train_config.validation_scoring_kwargs",
            "train_config.optimizer_config",
            "train_config.optimizer_config.optimizer",
            "train_config.optimizer_config.optimizer_common",
            "train_config.optimizer_config.optimizer_common.lr",
            "train_config.optimizer_config.sgd_config",
            "train_config.optimizer_config.sgd_config.momentum",
            "train_config.optimizer_config.adam_config",
            "train_config.optimizer_config.adam_config.betas",
            "train_config.optimizer_config.rmsprop_config",
            "train_config.lr_scheduler",
            "train_config.lr_scheduler_config",
            "train_config.lr_scheduler_config.lr_freeze",
            "train_config.lr_scheduler_config.exponential_config",
            "train_config.lr_scheduler_config.exponential_config.gamma",
            "train_config.lr_scheduler_config.plateau_config",
            "train_config.lr_scheduler_config.plateau_config.factor",
            "train_config.lr_scheduler_config.plateau_config.patience",
            "train_config.lr_scheduler_config.plateau_config.threshold",
            "train_config.lr_scheduler_config.plateau_config.min_lr",
            "train_config.logger",
            "train_config.logger_config",
            "train_config.logger_config.log_unit",
            "train_config.logger_config.log_train_every",
            "train_config.logger_config.log_train_metrics",
            "train_config.logger_config.log_train_metrics_func",
            "train_config.logger_config.log_valid_every",
            "train_config.logger_config.log_valid_metrics",
            "train_config.logger_config.log_valid_metrics_func",
            "train_config.writer",
            "train_config.writer_config",
            "train_config.writer_config.log_dir",
            "train_config.writer_config.run_dir",
            "train_config.writer_config.run_name",
            "train_config.writer_config.writer_metrics",
            "train_config.writer_config.include_config",
            "train_config.checkpoint",
            "train_config.checkpoint_config",
            "train_config.checkpoint_config.checkpoint_best",
            "train_config.checkpoint_config.checkpoint_every",
            "train_config.checkpoint_config.checkpoint_metric",
            "train_config.checkpoint_config.checkpoint_metric_mode",
            "train_config.checkpoint_config.checkpoint_dir",
            "train_config.checkpoint_config.checkpoint_runway",
        ]
        actual = [key for key in keys_in_order(em_default_config) if key in spec_order]
        self.assertEqual(actual, spec_order)
        self.assertEqual(list(em_default_config)[:3], ["seed", "verbose", "show_plots"])

    def test_values(self):
        tc = em_default_config["train_config"]
        self.assertEqual(em_default_config["layer_out_dims"], [10, 2])
        self.assertEqual(tc["optimizer_config"]["adam_config"]["betas"], (0.9, 0.999))
        self.assertEqual(tc["lr_scheduler"], "reduce_on_plateau")
        self.assertEqual(tc["lr_scheduler_config"]["plateau_config"]["min_lr"], 0.0001)
        self.assertEqual(tc["checkpoint_config"]["checkpoint_dir"], "checkpoints")
        self.assertEqual(tc["data_loader_config"]["num_workers"], 0)  # deviation
        self.assertIsNone(tc["grad_clip"])
        self.assertEqual(tc["lr_scheduler_config"]["warmup_steps"], 0)


if __name__ == "__main__":
    unittest.main()
