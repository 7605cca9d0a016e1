import unittest

from metal.label_model.lm_defaults import lm_default_config


class LmDefaultsTest(unittest.TestCase):
    def test_tree_and_key_order(self):
        self.assertEqual(
            list(lm_default_config),
            ["seed", "verbose", "show_plots", "device", "train_config"],
        )
        tc = lm_default_config["train_config"]
        self.assertEqual(
            list(tc)[:12],
            [
                "data_loader_config",
                "learn_class_balance",
                "prec_init",
                "l2",
                "optimizer_config",
                "lr_scheduler",
                "n_epochs",
                "progress_bar",
                "logger",
                "logger_config",
                "writer",
                "checkpoint",
            ],
        )
        self.assertEqual(tc["prec_init"], 0.7)
        self.assertEqual(tc["n_epochs"], 100)
        self.assertEqual(tc["optimizer_config"]["optimizer"], "sgd")
        self.assertEqual(tc["optimizer_config"]["optimizer_common"]["lr"], 0.01)
        self.assertEqual(tc["optimizer_config"]["sgd_config"]["momentum"], 0.9)
        self.assertEqual(tc["logger_config"]["log_train_metrics"], ["train/loss"])
        self.assertEqual(tc["data_loader_config"]["batch_size"], 1000)


if __name__ == "__main__":
    unittest.main()
