"""Snorkel v0.10's logger tests (``training/loggers/test_checkpointer.py``,
``test_log_manager.py``, ``test_log_writer.py``, ``test_tensorboard_writer.py``)
ported to ``metal.mmtl``."""

import json
import os
import tempfile
import unittest
from typing import NamedTuple

import metal.logging
from metal.mmtl import (
    Checkpointer,
    LogManager,
    LogWriter,
    MultitaskClassifier,
    TensorBoardWriter,
    loggers,
)

LOG_MANAGER_CONFIG = {"counter_unit": "epochs", "evaluation_freq": 1}
F1 = "task/dataset/valid/f1"


class TempConfig(NamedTuple):
    a: int = 8
    b: str = "hello"


class TempDirTestCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.test_dir = self.tmp.name
        self.cwd = os.getcwd()
        os.chdir(self.test_dir)  # a default "checkpoints" folder would land here

    def tearDown(self):
        os.chdir(self.cwd)
        self.tmp.cleanup()


class ExportsTest(unittest.TestCase):
    def test_same_classes_everywhere(self):
        self.assertIs(loggers.LogManager, LogManager)
        self.assertIs(loggers.Checkpointer, Checkpointer)
        self.assertIs(loggers.LogWriter, LogWriter)
        self.assertIs(loggers.TensorBoardWriter, TensorBoardWriter)
        self.assertIs(Checkpointer, metal.logging.TaskMetricCheckpointer)
        self.assertTrue(issubclass(Checkpointer, metal.logging.Checkpointer))
        # The writers are the Operation-API faces of metal.logging's writers.
        self.assertIs(LogWriter, metal.logging.OperationLogWriter)
        self.assertTrue(issubclass(LogWriter, metal.logging.LogWriter))
        self.assertIs(TensorBoardWriter, metal.logging.OperationTensorBoardWriter)
        self.assertTrue(issubclass(TensorBoardWriter, metal.logging.TensorBoardWriter))
        self.assertTrue(issubclass(LogManager, metal.logging.Logger))


class CheckpointerTest(TempDirTestCase):
    def make(self, **kwargs):
        kwargs.setdefault("checkpoint_dir", self.test_dir)
        return Checkpointer(**LOG_MANAGER_CONFIG, **kwargs)

    def test_checkpointer_runway_and_max(self):
        checkpointer = self.make(checkpoint_runway=3, checkpoint_metric=f"{F1}:max")
        model = MultitaskClassifier([])
        checkpointer.checkpoint(2, model, {F1: 0.5})
        self.assertEqual(len(checkpointer.best_metric_dict), 0)
        checkpointer.checkpoint(3, model, {F1: 0.8, "task/dataset/valid/f2": 0.5})
        self.assertEqual(checkpointer.best_metric_dict[F1], 0.8)
        checkpointer.checkpoint(4, model, {F1: 0.9})
        self.assertEqual(checkpointer.best_metric_dict[F1], 0.9)
        checkpointer.checkpoint(5, model, {F1: 0.7})
        self.assertEqual(checkpointer.best_metric_dict, {F1: 0.9})

    def test_checkpointer_min(self):
        checkpointer = self.make(checkpoint_runway=3, checkpoint_metric=f"{F1}:min")
        model = MultitaskClassifier([])
        checkpointer.checkpoint(3, model, {F1: 0.8, "task/dataset/valid/f2": 0.5})
        self.assertEqual(checkpointer.best_metric_dict[F1], 0.8)
        checkpointer.checkpoint(4, model, {F1: 0.7})
        self.assertEqual(checkpointer.best_metric_dict[F1], 0.7)
        checkpointer.checkpoint(5, model, {F1: 0.75})
        self.assertEqual(checkpointer.best_metric_dict[F1], 0.7)

    def test_checkpointer_clear(self):
        checkpoint_dir = os.path.join(self.test_dir, "clear")
        checkpointer = self.make(
            checkpoint_dir=checkpoint_dir,
            checkpoint_metric=f"{F1}:max",
            checkpoint_clear=True,
        )
        model = MultitaskClassifier([])
        checkpointer.checkpoint(1, model, {F1: 0.8})
        self.assertEqual(
            set(os.listdir(checkpoint_dir)),
            {"checkpoint_1.pth", "best_model_task_dataset_valid_f1.pth"},
        )
        checkpointer.clear()
        self.assertEqual(
            os.listdir(checkpoint_dir), ["best_model_task_dataset_valid_f1.pth"]
        )

    def test_checkpointer_load_best(self):
        checkpointer = self.make(
            checkpoint_dir=os.path.join(self.test_dir, "best"),
            checkpoint_metric=f"{F1}:max",
        )
        model = MultitaskClassifier([])
        checkpointer.checkpoint(1, model, {F1: 0.8})
        load_model = checkpointer.load_best_model(model)
        self.assertEqual(model, load_model)

    def test_bad_checkpoint_runway(self):
        with self.assertRaisesRegex(ValueError, "checkpoint_runway"):
            Checkpointer(**LOG_MANAGER_CONFIG, checkpoint_runway=-1)
        self.assertFalse(os.path.exists("checkpoints"))

    def test_no_zero_frequency(self):
        with self.assertRaisesRegex(ValueError, "checkpoint freq"):
            self.make(checkpoint_factor=0)

    def test_bad_metric_name(self):
        with self.assertRaisesRegex(ValueError, "metric_name:mode"):
            self.make(checkpoint_metric="task/dataset/split/f1-min")
        with self.assertRaisesRegex(ValueError, "metric mode"):
            self.make(checkpoint_metric="task/dataset/split/f1:mmax")
        with self.assertRaisesRegex(ValueError, "checkpoint_metric must be formatted"):
            self.make(checkpoint_metric="accuracy:max")

    def test_no_checkpoint_dir(self):
        with self.assertRaises(TypeError):
            Checkpointer(**LOG_MANAGER_CONFIG, checkpoint_dir=None)


class LogManagerTest(TempDirTestCase):
    def manager(self, counter_unit, evaluation_freq, n_batches_per_epoch):
        config = {"counter_unit": counter_unit, "evaluation_freq": evaluation_freq}
        checkpointer = Checkpointer(
            **config, checkpoint_dir=self.test_dir, checkpoint_factor=2
        )
        return LogManager(
            n_batches_per_epoch=n_batches_per_epoch, checkpointer=checkpointer, **config
        )

    def run_triggers(self, log_manager, batch_sizes):
        sequence = []
        for batch_size in batch_sizes:
            log_manager.update(batch_size)
            sequence.append(
                (log_manager.trigger_evaluation(), log_manager.trigger_checkpointing())
            )
        return sequence

    def test_log_manager_points(self):
        log_manager = self.manager("points", 10, n_batches_per_epoch=10)
        self.assertEqual(
            self.run_triggers(log_manager, [5, 5, 10, 5]),
            [(False, False), (True, False), (True, True), (False, False)],
        )
        self.assertEqual(log_manager.point_count, 5)
        self.assertEqual(log_manager.point_total, 25)
        self.assertEqual(log_manager.batch_total, 4)
        self.assertEqual(log_manager.epoch_total, 0.4)

    def test_log_manager_batch(self):
        log_manager = self.manager("batches", 2, n_batches_per_epoch=5)
        self.assertEqual(
            self.run_triggers(log_manager, [5, 5, 10, 5]),
            [(False, False), (True, False), (False, False), (True, True)],
        )
        self.assertEqual(log_manager.batch_count, 0)
        self.assertEqual(log_manager.point_total, 25)
        self.assertEqual(log_manager.batch_total, 4)
        self.assertEqual(log_manager.epoch_total, 0.8)

    def test_log_manager_epoch(self):
        log_manager = self.manager("epochs", 1, n_batches_per_epoch=2)
        self.assertEqual(
            self.run_triggers(log_manager, [5, 5, 10, 5]),
            [(False, False), (True, False), (False, False), (True, True)],
        )
        self.assertEqual(log_manager.batch_count, 0)
        self.assertEqual(log_manager.epoch_count, 0)
        self.assertEqual(log_manager.point_total, 25)
        self.assertEqual(log_manager.batch_total, 4)
        self.assertEqual(log_manager.epoch_total, 2)
        self.assertEqual(log_manager.unit_total, 2)

    def test_load_on_cleanup(self):
        log_manager = self.manager("epochs", 1, n_batches_per_epoch=2)
        classifier = MultitaskClassifier([])
        best_classifier = log_manager.cleanup(classifier)
        self.assertEqual(best_classifier, classifier)

    def test_bad_unit(self):
        with self.assertRaisesRegex(ValueError, "Unrecognized counter_unit"):
            LogManager(n_batches_per_epoch=2, counter_unit="macaroni")


class LogWriterTest(TempDirTestCase):
    writer_class = LogWriter

    def test_log_writer(self):
        run_name = "my_run"
        log_writer = self.writer_class(run_name=run_name, log_dir=self.test_dir)
        log_writer.add_scalar("my_value", value=0.5, step=2)
        log_filename = "my_log.json"
        log_writer.write_log(log_filename)
        with open(os.path.join(self.test_dir, run_name, log_filename)) as f:
            log = json.load(f)
        self.assertEqual(log, {"my_value": [[2, 0.5]]})

    def test_write_text(self):
        run_name = "my_run"
        log_writer = self.writer_class(run_name=run_name, log_dir=self.test_dir)
        log_writer.write_text("my log text", "my_text.txt")
        with open(os.path.join(self.test_dir, run_name, "my_text.txt")) as f:
            self.assertEqual(f.read(), "my log text")

    def test_write_config(self):
        run_name = "my_run"
        config = TempConfig(b="bar")
        log_writer = self.writer_class(run_name=run_name, log_dir=self.test_dir)
        log_writer.write_config(config)
        with open(os.path.join(self.test_dir, run_name, "config.json")) as f:
            self.assertEqual(json.load(f), config._asdict())

    def test_cleanup(self):
        log_writer = self.writer_class(run_name="done", log_dir=self.test_dir)
        log_writer.add_scalar("model/all/train/loss", 0.5, 10)
        log_writer.cleanup()
        log_path = os.path.join(self.test_dir, "done", "log.json")
        self.assertEqual(os.path.exists(log_path), self.writer_class is LogWriter)


class TensorBoardWriterTest(LogWriterTest):
    writer_class = TensorBoardWriter

    def test_tensorboard_writer(self):
        run_name = "my_run"
        writer = TensorBoardWriter(run_name=run_name, log_dir=self.test_dir)
        self.assertIsInstance(writer, LogWriter)
        writer.add_scalar("my_value", value=0.5, step=2)
        writer.cleanup()
        files = os.listdir(os.path.join(self.test_dir, run_name))
        self.assertTrue(any(f.startswith("events.out.tfevents") for f in files))


if __name__ == "__main__":
    unittest.main()
