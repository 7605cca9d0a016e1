import json
import os
import tempfile
import unittest

import torch.nn as nn

from metal.logging import (
    Logger,
    LogManager,
    OperationLogWriter,
    TaskMetricCheckpointer,
)


class LogManagerTestCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def make(self, n_batches_per_epoch=10, factor=None, **config):
        checkpointer = None
        if factor is not None:
            checkpointer = TaskMetricCheckpointer(
                config.get("counter_unit", "epochs"),
                config.get("evaluation_freq", 1.0),
                checkpoint_dir=os.path.join(self.tmp.name, "ckpt"),
                checkpoint_factor=factor,
            )
        return LogManager(n_batches_per_epoch, checkpointer=checkpointer, **config)

    def triggers(self, manager, batch_sizes):
        return [
            (manager.update(size), manager.trigger_evaluation())[1]
            for size in batch_sizes
        ]

    def test_is_a_logger_with_defaults(self):
        manager = self.make()
        self.assertIsInstance(manager, Logger)
        self.assertEqual(manager.counter_unit, "epochs")
        self.assertEqual(manager.evaluation_freq, 1.0)
        self.assertEqual(manager.log_unit, "epochs")
        self.assertIsNone(manager.log_writer)
        self.assertFalse(manager.trigger_checkpointing())  # no checkpointer

    def test_points_units_map_to_examples(self):
        manager = self.make(counter_unit="points", evaluation_freq=4)
        self.assertEqual(manager.log_unit, "examples")
        self.assertEqual(
            self.triggers(manager, [3, 3, 2, 2]), [False, True, False, True]
        )
        self.assertEqual((manager.point_count, manager.point_total), (0, 10))
        self.assertEqual(manager.trigger_count, 2)

    def test_fractional_epochs(self):
        manager = self.make(n_batches_per_epoch=3, evaluation_freq=1 / 3)
        self.assertEqual(self.triggers(manager, [1] * 4), [True] * 4)
        manager = self.make(n_batches_per_epoch=10, evaluation_freq=0.3)
        fired = self.triggers(manager, [1] * 9)
        self.assertEqual([i + 1 for i, hit in enumerate(fired) if hit], [3, 6, 9])
        manager.update(1)
        self.assertEqual(manager.epoch_count, 0.1)
        self.assertEqual(manager.unit_count, 0.1)
        self.assertEqual(manager.epoch_total, 1)

    def test_checkpoint_factor_comes_from_the_checkpointer(self):
        manager = self.make(factor=3, counter_unit="batches", evaluation_freq=1)
        self.assertEqual(manager.checkpoint_factor, 3)
        checkpoints = []
        for _ in range(7):
            manager.update(2)
            if manager.trigger_evaluation():
                checkpoints.append(manager.trigger_checkpointing())
        self.assertEqual(checkpoints, [False, False, True] * 2 + [False])

    def test_reset_and_state_dict(self):
        manager = self.make(counter_unit="batches", evaluation_freq=3)
        self.triggers(manager, [2, 2, 2, 2])
        self.assertEqual((manager.batch_count, manager.trigger_count), (1, 1))
        manager.reset()
        self.assertEqual(
            (manager.point_count, manager.batch_count, manager.epoch_count), (0, 0, 0)
        )
        copy = self.make(counter_unit="batches", evaluation_freq=3)
        copy.load_state_dict(manager.state_dict())
        self.assertEqual((copy.point_total, copy.trigger_count), (8, 1))

    def test_writes_with_point_steps_and_cleans_up(self):
        writer = OperationLogWriter(log_dir=self.tmp.name, run_name="run")
        manager = LogManager(2, log_writer=writer, counter_unit="batches")
        manager.update(5)
        manager.log({"model/all/train/loss": 0.25})
        model = nn.Linear(2, 2)
        self.assertIs(manager.cleanup(model), model)
        with open(os.path.join(self.tmp.name, "run", "log.json")) as f:
            self.assertEqual(json.load(f), {"model/all/train/loss": [[5, 0.25]]})

    def test_bad_settings(self):
        with self.assertRaisesRegex(ValueError, "Unrecognized counter_unit"):
            self.make(counter_unit="seconds")
        with self.assertRaisesRegex(ValueError, "evaluation_freq"):
            self.make(evaluation_freq=0)
        with self.assertRaisesRegex(ValueError, "checkpoint_factor"):
            self.make(checkpoint_factor=2)


if __name__ == "__main__":
    unittest.main()
