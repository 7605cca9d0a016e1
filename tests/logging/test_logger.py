import contextlib
import io
import tempfile
import unittest

import numpy as np
import torch

from metal.end_model import EndModel
from metal.logging import Logger, Timer


class FakeWriter:
    def __init__(self):
        self.scalars = []

    def add_scalar(self, name, value, i):
        self.scalars.append((name, value, i))


class FakeTimer:
    """A Timer whose clock is set by the test (through ``now``)."""

    def __init__(self, now=0.0):
        self.now = now
        self.reset()

    def reset(self):
        self.start = self.click = self.now

    def update(self):
        self.click = self.now

    def elapsed(self):
        return self.now - self.click

    def total_elapsed(self):
        return self.now - self.start


def count_logs(logger, batch_sizes, epoch_ends=None):
    """Feed batches to ``logger``; return the unit_total at each due log."""
    logged = []
    for i, size in enumerate(batch_sizes):
        end = None if epoch_ends is None else i in epoch_ends
        if logger.check(size, end_of_epoch=end):
            logged.append(logger.unit_total)
            logger.log({})
    return logged


class LoggerUnitTestCase(unittest.TestCase):
    def make(self, **config):
        config.setdefault("log_valid_every", 0)
        return Logger(config, writer=None, verbose=False, **self.extra)

    def setUp(self):
        self.extra = {}

    def test_batches(self):
        logger = self.make(log_unit="batches", log_train_every=3)
        self.assertEqual(count_logs(logger, [10] * 10), [3, 6, 9])
        self.assertEqual(logger.batch_total, 10)
        self.assertEqual(logger.unit_count, 1)

    def test_examples(self):
        logger = self.make(log_unit="examples", log_train_every=25)
        self.assertEqual(count_logs(logger, [10] * 10), [30, 60, 90])
        self.assertEqual(logger.example_total, 100)

    def test_points_alias(self):
        logger = self.make(log_unit="points", log_every=20)
        self.assertEqual(logger.log_unit, "examples")
        self.assertEqual(count_logs(logger, [10] * 4), [20, 40])

    def test_epochs_with_reported_epoch_ends(self):
        # 4 batches per epoch (the last smaller); log every 2 epochs
        sizes = [3, 3, 3, 1] * 5
        ends = {3, 7, 11, 15, 19}
        logger = self.make(log_unit="epochs", log_train_every=2)
        self.assertEqual(count_logs(logger, sizes, ends), [2, 4])
        self.assertEqual(logger.unit_total, 5)

    def test_epochs_every_epoch(self):
        logger = self.make(log_unit="epochs", log_train_every=1)
        logged = count_logs(logger, [5] * 9, {2, 5, 8})
        self.assertEqual(logged, [1, 2, 3])

    def test_epochs_from_epoch_size(self):
        """Without epoch-end reports, epochs come from example counts (the
        original counted one epoch per batch after the first boundary when
        log_train_every > 1)."""
        self.extra = {"epoch_size": 10}
        logger = self.make(log_unit="epochs", log_train_every=2)
        self.assertEqual(count_logs(logger, [5] * 20), [2, 4, 6, 8, 10])

    def test_fractional_epochs(self):
        self.extra = {"batches_per_epoch": 4}
        logger = self.make(log_unit="epochs", log_train_every=0.5)
        logged = count_logs(logger, [1] * 8, {3, 7})
        self.assertEqual(logged, [0.5, 1, 1.5, 2])

    def test_fractional_epochs_without_float_noise(self):
        """0.6 - 0.3 epochs is 0.3 units: every third of ten batches logs."""
        self.extra = {"batches_per_epoch": 10}
        logger = self.make(log_unit="epochs", log_train_every=0.3)
        logged = count_logs(logger, [1] * 10, {9})
        self.assertEqual(logged, [0.3, 0.6, 0.9])

    def test_seconds(self):
        logger = self.make(log_unit="seconds", log_train_every=2)
        logger.timer = FakeTimer()
        logged = []
        for now in [0.5, 1.2, 2.1, 2.5, 3.9, 4.2, 7.0]:
            logger.timer.now = now
            if logger.check(1):
                logged.append(logger.unit_total)
                logger.log({})
        self.assertEqual(logged, [2, 4, 7])

    def test_bad_settings(self):
        with self.assertRaisesRegex(ValueError, "log_unit"):
            self.make(log_unit="minutes")
        with self.assertRaisesRegex(ValueError, "log_train_every"):
            self.make(log_train_every=0)
        with self.assertRaisesRegex(ValueError, "multiple"):
            self.make(log_train_every=2, log_valid_every=3)
        with self.assertRaisesRegex(ValueError, "multiple"):
            self.make(log_train_every=2, log_valid_every=1)
        with self.assertRaisesRegex(ValueError, "epoch_size"):
            self.make(log_unit="epochs").check(1)

    def test_validation_frequency(self):
        logger = self.make(log_train_every=2, log_valid_every=6)
        self.assertEqual(logger.valid_every_X, 3)
        due = [logger.validation_due() for _ in range(7)]
        self.assertEqual(due, [False, False, True, False, False, True, False])
        never = self.make(log_valid_every=0)
        self.assertEqual(never.valid_every_X, 0)
        self.assertFalse(any(never.validation_due() for _ in range(3)))

    def test_state_dict_round_trip(self):
        self.extra = {"batches_per_epoch": 3}
        logger = self.make(log_unit="epochs")
        count_logs(logger, [4] * 5, {2})
        logger.validation_due()
        copy = self.make(log_unit="epochs")
        copy.load_state_dict(logger.state_dict())
        for size, end in [(4, True), (4, False)]:
            self.assertEqual(logger.check(size, end), copy.check(size, end))
        self.assertEqual(logger.unit_total, copy.unit_total)
        self.assertEqual(logger.log_count, copy.log_count)


class LoggerOutputTestCase(unittest.TestCase):
    def test_print_to_screen(self):
        logger = Logger({"log_unit": "epochs"}, verbose=True, epoch_size=10)
        logger.check(10)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            logger.print_to_screen({"train/loss": 0.4771, "valid/accuracy": 0.9731})
        self.assertEqual(
            out.getvalue().strip(), "[1 epo]: TRAIN:[loss=0.477] VALID:[accuracy=0.973]"
        )

    def test_print_other_units_and_task_names(self):
        logger = Logger(
            {"log_unit": "batches"}, verbose=True, epoch_size=8, batches_per_epoch=4
        )
        for _ in range(2):
            logger.check(2)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            logger.print_to_screen({"task0/train/loss": 1.0, "task0/valid/f1": 0.5})
        self.assertEqual(
            out.getvalue().strip(),
            "[2 bat (0.50 epo)]: TRAIN:[task0/loss=1.000] VALID:[task0/f1=0.500]",
        )

    def test_log_writes_and_resets(self):
        writer = FakeWriter()
        logger = Logger({"log_unit": "batches"}, writer=writer, verbose=False)
        logger.check(5)
        logger.check(5)
        logger.log({"train/loss": 0.5})
        self.assertEqual(writer.scalars, [("train/loss", 0.5, 2)])
        self.assertEqual((logger.unit_count, logger.example_count), (0, 0))

    def test_quiet_when_not_verbose(self):
        logger = Logger({}, verbose=False, epoch_size=1)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            logger.check(1)
            logger.log({"train/loss": 1.0})
        self.assertEqual(out.getvalue(), "")

    def test_split_prefixes(self):
        self.assertEqual(Logger.add_split_prefix("accuracy", "valid"), "valid/accuracy")
        self.assertEqual(Logger.add_split_prefix("t0/f1", "train"), "t0/train/f1")
        self.assertEqual(Logger.add_split_prefix("valid/f1", "valid"), "valid/f1")
        self.assertEqual(Logger.remove_split_prefix("t0/valid/f1"), "f1")

    def test_timer(self):
        timer = Timer()
        self.assertGreaterEqual(timer.elapsed(), 0)
        timer.update()
        self.assertGreaterEqual(timer.total_elapsed(), timer.elapsed())


class LoggerTrainingTestCase(unittest.TestCase):
    """Metrics logged during EndModel training."""

    @classmethod
    def setUpClass(cls):
        cls.threads = torch.get_num_threads()
        torch.set_num_threads(1)
        np.random.seed(1)
        X = np.random.random((1500, 2)) * 2 - 1
        Y = (X[:, 0] > X[:, 1] + 0.25).astype(int) + 1
        X, Y = torch.tensor(X, dtype=torch.float), torch.tensor(Y)
        cls.train_data = (X[:1000], Y[:1000])
        cls.valid_data = (X[1000:], Y[1000:])

    @classmethod
    def tearDownClass(cls):
        torch.set_num_threads(cls.threads)

    def train(self, **kwargs):
        writer = FakeWriter()
        em = EndModel([2, 10, 2], seed=1, verbose=False, checkpoint=False)
        em.train_model(
            self.train_data, valid_data=self.valid_data, log_writer=writer, **kwargs
        )
        return em, writer

    def logged(self, writer, name):
        return [(i, v) for n, v, i in writer.scalars if n == name]

    def test_train_and_valid_every_epoch(self):
        _, writer = self.train(n_epochs=3)
        self.assertEqual([i for i, _ in self.logged(writer, "train/loss")], [1, 2, 3])
        self.assertEqual(
            [i for i, _ in self.logged(writer, "valid/accuracy")], [1, 2, 3]
        )

    def test_log_train_every_and_valid_every(self):
        _, writer = self.train(n_epochs=6, log_train_every=2, log_valid_every=4)
        self.assertEqual([i for i, _ in self.logged(writer, "train/loss")], [2, 4, 6])
        with self.assertRaisesRegex(ValueError, "multiple"):
            self.train(n_epochs=1, log_train_every=2)
        self.assertEqual([i for i, _ in self.logged(writer, "train/loss")], [2, 4, 6])
        self.assertEqual([i for i, _ in self.logged(writer, "valid/accuracy")], [4])

    def test_batch_units(self):
        _, writer = self.train(
            n_epochs=1,
            log_unit="batches",
            log_train_every=10,
            log_valid_every=20,
            batch_size=100,
        )
        self.assertEqual([i for i, _ in self.logged(writer, "train/loss")], [10])
        self.assertEqual([i for i, _ in self.logged(writer, "valid/accuracy")], [])
        _, writer = self.train(
            n_epochs=2,
            log_unit="batches",
            log_train_every=5,
            log_valid_every=10,
            batch_size=100,
        )
        self.assertEqual(
            [i for i, _ in self.logged(writer, "train/loss")], [5, 10, 15, 20]
        )
        self.assertEqual(
            [i for i, _ in self.logged(writer, "valid/accuracy")], [10, 20]
        )

    def test_custom_metric_functions(self):
        calls = []

        def train_func(model, loader):
            calls.append("train")
            n = sum(len(batch[0]) for batch in loader)
            return {"examples": n}

        def valid_func(model, loader):
            calls.append("valid")
            Y_p, Y = model._get_predictions(loader)
            return {"errors": float((Y_p != Y).sum()), "valid/extra": 1.0}

        _, writer = self.train(
            n_epochs=2,
            log_train_metrics_func=train_func,
            log_valid_metrics_func=[valid_func],
        )
        self.assertEqual(calls, ["train", "valid", "train", "valid"])
        self.assertEqual(self.logged(writer, "train/examples"), [(1, 1000), (2, 1000)])
        self.assertEqual(len(self.logged(writer, "valid/errors")), 2)
        self.assertEqual(len(self.logged(writer, "valid/extra")), 2)

    def test_standard_train_metrics_on_soft_labels(self):
        X, Y = self.train_data
        soft = torch.nn.functional.one_hot(Y - 1, 2).float() * 0.8 + 0.1
        writer = FakeWriter()
        em = EndModel([2, 10, 2], seed=1, verbose=False, checkpoint=False)
        em.train_model(
            (X, soft),
            valid_data=self.valid_data,
            log_writer=writer,
            n_epochs=3,
            log_train_metrics=["loss", "accuracy"],
            log_valid_metrics=["accuracy", "f1"],
        )
        train_acc = self.logged(writer, "train/accuracy")
        self.assertEqual(len(train_acc), 3)
        self.assertGreater(train_acc[-1][1], 0.9)
        self.assertEqual(len(self.logged(writer, "valid/f1")), 3)

    def test_valid_metrics_ignore_gold_zero(self):
        X, Y = self.valid_data
        Y = Y.clone()
        Y[:250] = 0
        writer = FakeWriter()
        em = EndModel([2, 10, 2], seed=1, verbose=False, checkpoint=False)
        em.train_model(
            self.train_data, valid_data=(X, Y), log_writer=writer, n_epochs=2
        )
        logged = self.logged(writer, "valid/accuracy")[-1][1]
        np.random.seed(0)
        self.assertAlmostEqual(logged, em.score((X, Y), verbose=False), places=6)

    def test_calculate_metrics_api(self):
        em = EndModel([2, 10, 2], seed=1, verbose=False, checkpoint=False)
        logger = Logger(
            {"log_train_metrics": ["loss", "accuracy"], "log_valid_every": 2},
            verbose=False,
            epoch_size=1000,
        )
        first = logger.calculate_metrics(em, self.train_data, self.valid_data, {})
        second = logger.calculate_metrics(em, self.train_data, self.valid_data, {})
        self.assertEqual(sorted(first), ["train/accuracy"])
        self.assertEqual(sorted(second), ["train/accuracy", "valid/accuracy"])

    def test_progress_bar_only_when_verbose(self):
        err = io.StringIO()
        with (
            tempfile.TemporaryDirectory() as folder,
            contextlib.redirect_stderr(err),
            contextlib.redirect_stdout(io.StringIO()),
        ):
            em = EndModel([2, 10, 2], verbose=True, checkpoint_dir=folder)
            em.train_model(self.train_data, n_epochs=1, progress_bar=True)
            shown = err.getvalue()
            em.update_config({"verbose": False})
            err.truncate(0)
            em.train_model(self.train_data, n_epochs=1, progress_bar=True)
        self.assertIn("Epoch 1/1", shown)
        self.assertEqual(err.getvalue().strip("\x00"), "")


if __name__ == "__main__":
    unittest.main()
