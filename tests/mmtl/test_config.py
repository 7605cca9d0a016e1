import unittest

from metal.mmtl.config import (
    CheckpointerConfig,
    LogManagerConfig,
    TrainerConfig,
    config_to_dict,
    merge_config,
)


class ConfigTest(unittest.TestCase):
    def test_defaults_and_field_order(self):
        config = TrainerConfig()
        self.assertEqual(config.lr, 0.01)
        self.assertEqual(config.log_writer, "tensorboard")
        self.assertEqual(TrainerConfig._fields[:3], ("seed", "n_epochs", "lr"))
        self.assertEqual(TrainerConfig._fields[-1], "batch_scheduler")
        self.assertEqual(
            CheckpointerConfig().checkpoint_metric, "model/all/train/loss:min"
        )

    def test_merge_nested(self):
        updates = {"lr": 0.02, "log_manager_config": {"evaluation_freq": 0.5}}
        config = merge_config(TrainerConfig(), updates)
        self.assertEqual(config.lr, 0.02)
        self.assertEqual(
            config.log_manager_config, LogManagerConfig(evaluation_freq=0.5)
        )
        self.assertIsInstance(updates["log_manager_config"], LogManagerConfig)

    def test_unknown_keys(self):
        with self.assertRaisesRegex(ValueError, "lrr"):
            merge_config(TrainerConfig(), {"lrr": 1})
        with self.assertRaisesRegex(ValueError, "evaluation_frequency"):
            merge_config(
                TrainerConfig(), {"log_manager_config": {"evaluation_frequency": 1}}
            )

    def test_config_to_dict_is_plain(self):
        plain = config_to_dict(TrainerConfig())
        self.assertEqual(
            plain["optimizer_config"]["adam_config"]["betas"], (0.9, 0.999)
        )
        self.assertEqual(merge_config(TrainerConfig(), plain), TrainerConfig())


if __name__ == "__main__":
    unittest.main()
