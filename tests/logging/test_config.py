import unittest

from metal.logging import CheckpointerConfig, LogManagerConfig, LogWriterConfig
from metal.logging.config import check_counter_unit, config_from_kwargs
from metal.mmtl import config as mmtl_config


class LoggingConfigTestCase(unittest.TestCase):
    def test_defaults(self):
        self.assertEqual(LogManagerConfig(), ("epochs", 1.0))
        self.assertEqual(
            CheckpointerConfig(),
            ("checkpoints", 1, "model/all/train/loss:min", None, 0, True),
        )
        self.assertEqual(LogWriterConfig(), ("logs", None))

    def test_trainer_config_uses_the_same_classes(self):
        self.assertIs(mmtl_config.LogManagerConfig, LogManagerConfig)
        self.assertIs(mmtl_config.CheckpointerConfig, CheckpointerConfig)
        self.assertIs(mmtl_config.LogWriterConfig, LogWriterConfig)

    def test_config_from_kwargs(self):
        config = config_from_kwargs(LogManagerConfig, {"evaluation_freq": 2})
        self.assertEqual(config, LogManagerConfig(evaluation_freq=2))
        with self.assertRaisesRegex(ValueError, "'freq'.*counter_unit"):
            config_from_kwargs(LogManagerConfig, {"freq": 2})

    def test_counter_units(self):
        for unit in ("points", "batches", "epochs"):
            self.assertEqual(check_counter_unit(unit), unit)
        with self.assertRaisesRegex(ValueError, "Unrecognized counter_unit: 'x'"):
            check_counter_unit("x")


if __name__ == "__main__":
    unittest.main()
