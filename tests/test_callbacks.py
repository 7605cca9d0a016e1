import os
import tempfile
import time
import unittest
from unittest import mock

import numpy as np

from metal._io import atomic_torch_save, safe_torch_load
from metal.callbacks import (
    LOG_UNITS,
    Callback,
    Progress,
    Timer,
    check_log_unit,
    valid_every_logs,
)
from tests.logging.test_logger import FakeTimer


class TestCheckLogUnit(unittest.TestCase):
    def test_units(self):
        self.assertEqual(LOG_UNITS, ("seconds", "examples", "batches", "epochs"))
        for unit in LOG_UNITS:
            with self.subTest(unit=unit):
                self.assertEqual(check_log_unit(unit), unit)

    def test_points_is_examples(self):
        self.assertEqual(check_log_unit("points"), "examples")

    def test_unknown(self):
        for unit in ["epoch", "Epochs", "steps", "", None, 3]:
            with self.subTest(unit=unit):
                with self.assertRaises(ValueError) as ctx:
                    check_log_unit(unit)
                self.assertIn("log_unit", str(ctx.exception))
                self.assertIn(repr(unit), str(ctx.exception))


class TestValidEveryLogs(unittest.TestCase):
    def test_ratio(self):
        self.assertEqual(valid_every_logs(2, 4), 2)
        self.assertEqual(valid_every_logs(2, 2), 1)
        self.assertEqual(valid_every_logs(1, 7), 7)
        self.assertEqual(valid_every_logs(0.5, 1.5), 3)
        self.assertEqual(valid_every_logs(np.int64(3), np.float64(9.0)), 3)
        self.assertIs(type(valid_every_logs(2, 4.0)), int)

    def test_float_noise_is_tolerated(self):
        self.assertEqual(valid_every_logs(0.1, 0.3), 3)
        self.assertEqual(valid_every_logs(0.1, 0.7), 7)

    def test_never(self):
        for valid_every in [0, 0.0, None, False]:
            with self.subTest(valid_every=valid_every):
                self.assertEqual(valid_every_logs(5, valid_every), 0)

    def test_not_a_multiple(self):
        for log_every, valid_every in [(2, 3), (2, 5), (0.5, 0.75), (3, 10)]:
            with self.subTest(log_every=log_every, valid_every=valid_every):
                with self.assertRaisesRegex(ValueError, "log_valid_every"):
                    valid_every_logs(log_every, valid_every)

    def test_smaller_or_negative_or_not_a_number(self):
        for valid_every in [1, 0.5, -4, "4", [4], True]:
            with self.subTest(valid_every=valid_every):
                with self.assertRaisesRegex(ValueError, "log_valid_every"):
                    valid_every_logs(2, valid_every)

    def test_non_positive_log_every(self):
        for log_every in [0, -1, 0.0, None, "2", True]:
            with self.subTest(log_every=log_every):
                with self.assertRaisesRegex(ValueError, "log_train_every"):
                    valid_every_logs(log_every, 4)


class TestTimer(unittest.TestCase):
    def test_elapsed_and_total(self):
        clock = [100.0]
        with mock.patch.object(time, "perf_counter", lambda: clock[0]):
            timer = Timer()
            clock[0] = 103.0
            self.assertEqual(timer.elapsed(), 3.0)
            self.assertEqual(timer.total_elapsed(), 3.0)
            timer.update()
            clock[0] = 104.5
            self.assertEqual(timer.elapsed(), 1.5)
            self.assertEqual(timer.total_elapsed(), 4.5)
            timer.reset()
            clock[0] = 105.0
            self.assertEqual(timer.elapsed(), 0.5)
            self.assertEqual(timer.total_elapsed(), 0.5)

    def test_real_clock(self):
        timer = Timer()
        elapsed = timer.elapsed()
        self.assertGreaterEqual(elapsed, 0.0)
        self.assertGreaterEqual(timer.total_elapsed(), elapsed)


class TestCallback(unittest.TestCase):
    def test_hooks_do_nothing(self):
        callback = Callback()
        self.assertIsNone(callback.on_fit_start(object()))
        self.assertIsNone(callback.on_log(object(), {"loss": 1.0}))
        self.assertIsNone(callback.on_batch_end(object(), None, False))
        self.assertIsNone(callback.on_batch_end(object(), {"loss": 1.0}, True))
        self.assertIsNone(callback.on_fit_end(object(), object()))
        self.assertIsNone(callback.on_resume(object(), {"model": {}}))
        self.assertEqual(vars(callback), {})

    def test_subclass_overrides_one_hook(self):
        class Counter(Callback):
            def __init__(self):
                self.logs = []

            def on_log(self, engine, metrics):
                self.logs.append(metrics)

        counter = Counter()
        counter.on_fit_start(None)
        counter.on_log(None, {"a": 1})
        counter.on_batch_end(None, None, True)
        counter.on_fit_end(None, None)
        self.assertEqual(counter.logs, [{"a": 1}])


class TestProgressCounting(unittest.TestCase):
    def test_examples(self):
        progress = Progress("examples")
        self.assertEqual(progress.log_unit, "examples")
        self.assertIsNone(progress.timer)
        progress.increment(3)
        progress.increment(4)
        self.assertEqual(progress.unit_count, 7)
        self.assertEqual(progress.unit_total, 7)
        self.assertEqual(progress.example_count, 7)
        self.assertEqual(progress.batch_count, 2)
        progress.reset()
        self.assertEqual(
            (progress.unit_count, progress.example_count, progress.batch_count),
            (0, 0, 0),
        )
        self.assertEqual((progress.example_total, progress.batch_total), (7, 2))
        progress.increment(5)
        self.assertEqual(progress.unit_count, 5)
        self.assertEqual(progress.unit_total, 12)
        self.assertEqual(progress.example_total, 12)
        self.assertEqual(progress.batch_total, 3)

    def test_points_alias(self):
        progress = Progress("points")
        self.assertEqual(progress.log_unit, "examples")
        progress.increment(9)
        self.assertEqual(progress.unit_total, 9)

    def test_unknown_unit(self):
        with self.assertRaises(ValueError):
            Progress("steps")

    def test_batches(self):
        progress = Progress("batches")
        for _ in range(3):
            progress.increment(10)
        self.assertEqual(progress.unit_count, 3)
        self.assertEqual(progress.unit_total, 3)
        self.assertEqual(progress.example_total, 30)
        progress.reset()
        progress.increment(10)
        self.assertEqual(progress.unit_count, 1)
        self.assertEqual(progress.unit_total, 4)

    def test_epochs_from_batches_per_epoch(self):
        progress = Progress("epochs", batches_per_epoch=4)
        progress.increment(8)
        progress.increment(8)
        self.assertEqual(progress.epoch_total, 0.5)
        self.assertEqual(progress.unit_count, 0.5)
        progress.increment(8)
        progress.increment(8)
        self.assertEqual(progress.unit_total, 1)
        self.assertIs(type(progress.unit_total), int)
        self.assertIs(type(progress.unit_count), int)
        progress.reset()
        progress.increment(8)
        self.assertEqual(progress.unit_count, 0.25)
        self.assertEqual(progress.unit_total, 1.25)

    def test_epochs_from_epoch_size(self):
        progress = Progress("epochs", epoch_size=10)
        progress.increment(4)
        self.assertEqual(progress.epoch_total, 0.4)
        progress.increment(6)
        progress.increment(2)
        self.assertEqual(progress.unit_total, 1.2)
        progress.increment(8)
        self.assertEqual(progress.unit_total, 2)
        self.assertIs(type(progress.unit_total), int)

    def test_fractional_epochs_without_float_noise(self):
        progress = Progress("epochs", epoch_size=10)
        totals = []
        for _ in range(9):
            progress.increment(3)
            # exactly 0.3, although e.g. 0.9 - 0.6 == 0.30000000000000004
            self.assertEqual(progress.unit_count, 0.3)
            totals.append(progress.unit_total)
            progress.reset()
        self.assertAlmostEqual(totals[-1], 2.7)

    def test_fractional_epochs_with_batches_per_epoch(self):
        progress = Progress("epochs", batches_per_epoch=10)
        for _ in range(20):
            progress.increment(1)
            self.assertEqual(progress.unit_count, 0.1)
            progress.reset()
        self.assertEqual(progress.unit_total, 2)

    def test_batches_per_epoch_wins_over_epoch_size(self):
        progress = Progress("epochs", epoch_size=100, batches_per_epoch=2)
        progress.increment(10)
        self.assertEqual(progress.unit_total, 0.5)

    def test_reported_epoch_ends(self):
        progress = Progress("epochs")
        progress.increment(5, end_of_epoch=False)
        progress.increment(5, end_of_epoch=False)
        self.assertEqual(progress.epoch_total, 0)
        self.assertEqual(progress.unit_total, 0)
        progress.increment(5, end_of_epoch=True)
        self.assertEqual(progress.unit_total, 1)
        self.assertEqual(progress.unit_count, 1)
        self.assertIs(type(progress.unit_total), int)
        progress.reset()
        progress.increment(5, end_of_epoch=True)
        self.assertEqual(progress.unit_count, 1)
        self.assertEqual(progress.unit_total, 2)
        self.assertEqual(progress.example_total, 20)
        self.assertEqual(progress.batch_total, 4)

    def test_reported_epoch_ends_with_batches_per_epoch(self):
        progress = Progress("epochs", batches_per_epoch=3)
        progress.increment(4, end_of_epoch=False)
        self.assertAlmostEqual(progress.epoch_total, 1 / 3)
        progress.increment(4, end_of_epoch=False)
        self.assertAlmostEqual(progress.epoch_total, 2 / 3)
        progress.increment(4, end_of_epoch=True)
        self.assertEqual(progress.epoch_total, 1)
        progress.increment(4, end_of_epoch=False)
        self.assertAlmostEqual(progress.epoch_total, 4 / 3)
        # Once epoch ends are reported, a batch without the flag is mid-epoch.
        progress.increment(4)
        self.assertAlmostEqual(progress.epoch_total, 5 / 3)

    def test_reported_epoch_ends_with_epoch_size(self):
        progress = Progress("epochs", epoch_size=10)
        progress.increment(4, end_of_epoch=False)
        self.assertEqual(progress.epoch_total, 0.4)
        progress.increment(6, end_of_epoch=True)
        self.assertEqual(progress.epoch_total, 1)
        progress.increment(5, end_of_epoch=False)
        self.assertEqual(progress.epoch_total, 1.5)

    def test_reported_epoch_ends_override_sizes(self):
        # An epoch shorter than batches_per_epoch says still ends where reported.
        progress = Progress("epochs", batches_per_epoch=4)
        progress.increment(1, end_of_epoch=False)
        progress.increment(1, end_of_epoch=True)
        self.assertEqual(progress.epoch_total, 1)

    def test_partial_epoch_stays_below_the_next_epoch(self):
        progress = Progress("epochs", batches_per_epoch=2)
        for _ in range(3):
            progress.increment(1, end_of_epoch=False)
        self.assertLess(progress.epoch_total, 1)
        self.assertGreater(progress.epoch_total, 0.999)
        progress.increment(1, end_of_epoch=True)
        self.assertEqual(progress.epoch_total, 1)

    def test_end_epoch_without_a_batch(self):
        progress = Progress("epochs", batches_per_epoch=4)
        progress.increment(2, end_of_epoch=False)
        progress.increment(2, end_of_epoch=False)
        self.assertEqual(progress.unit_total, 0.5)
        progress.end_epoch()
        self.assertEqual(progress.unit_total, 1)
        self.assertEqual(progress.unit_count, 1)
        self.assertEqual((progress.example_total, progress.batch_total), (4, 2))
        progress = Progress("epochs")
        progress.end_epoch()
        self.assertEqual(progress.unit_total, 1)

    def test_epochs_without_epoch_size(self):
        progress = Progress("epochs")
        self.assertFalse(progress.knows_epochs)
        with self.assertRaisesRegex(ValueError, "epoch_size"):
            progress.increment(3)
        with self.assertRaises(ValueError):
            progress.current_unit_total()

    def test_other_units_count_epochs_when_they_can(self):
        progress = Progress("batches")
        progress.increment(3)
        self.assertEqual(progress.epoch_total, 0)
        progress = Progress("examples", epoch_size=8)
        progress.increment(2)
        self.assertEqual(progress.epoch_total, 0.25)

    def test_knows_epochs(self):
        self.assertFalse(Progress("batches").knows_epochs)
        self.assertTrue(Progress("batches", epoch_size=10).knows_epochs)
        self.assertTrue(Progress("batches", batches_per_epoch=3).knows_epochs)
        progress = Progress("batches")
        progress.increment(1, end_of_epoch=False)
        self.assertTrue(progress.knows_epochs)

    def test_step(self):
        progress = Progress("epochs", epoch_size=10)
        progress.increment(5)
        progress.increment(3)
        self.assertEqual(progress.step("units"), 0.8)
        self.assertEqual(progress.step("examples"), 8)
        self.assertEqual(progress.step("batches"), 2)
        progress.reset()
        self.assertEqual(progress.step("units"), 0.8)

    def test_log_count_starts_at_zero(self):
        self.assertEqual(Progress("batches").log_count, 0)


class TestProgressSeconds(unittest.TestCase):
    def make(self):
        progress = Progress("seconds")
        self.assertIsInstance(progress.timer, Timer)
        progress.timer = FakeTimer(0.0)
        return progress

    def test_whole_seconds(self):
        progress = self.make()
        progress.timer.now = 2.5
        progress.increment(4)
        self.assertEqual(progress.unit_total, 2)
        self.assertEqual(progress.unit_count, 2)
        self.assertEqual(progress.current_unit_total(), 2)
        progress.reset()
        progress.timer.now = 4.2
        progress.increment(4)
        self.assertEqual(progress.unit_count, 1)
        self.assertEqual(progress.unit_total, 4)
        self.assertEqual(progress.step("units"), 4)
        self.assertEqual(progress.step("examples"), 8)

    def test_reset_restarts_the_count(self):
        progress = self.make()
        progress.timer.now = 10.0
        progress.increment(1)
        self.assertEqual(progress.unit_count, 10)
        progress.reset()
        self.assertEqual(progress.unit_count, 0)
        progress.timer.now = 10.9
        progress.increment(1)
        self.assertEqual(progress.unit_count, 0)
        self.assertEqual(progress.unit_total, 10)

    def test_state_round_trip(self):
        progress = self.make()
        progress.timer.now = 7.5
        progress.increment(2)
        progress.log_count = 3
        state = progress.state_dict()
        self.assertEqual(state["seconds_total"], 7.5)
        resumed = Progress("seconds")
        resumed.timer = FakeTimer(1000.0)
        resumed.load_state_dict(state)
        self.assertEqual(resumed.log_count, 3)
        self.assertEqual(resumed.unit_count, 0)
        resumed.timer.now = 1003.0
        resumed.increment(2)
        self.assertEqual(resumed.unit_total, 10)
        self.assertEqual(resumed.unit_count, 3)
        self.assertEqual(resumed.example_total, 4)
        self.assertEqual(resumed.state_dict()["seconds_total"], 10.5)

    def test_other_units_save_zero_seconds(self):
        progress = Progress("batches")
        progress.increment(1)
        self.assertEqual(progress.state_dict()["seconds_total"], 0.0)


class TestProgressState(unittest.TestCase):
    def drive(self, progress, steps):
        """Feed batches ``(size, end_of_epoch)``; reset after each "log"."""
        seen = []
        for size, end, log in steps:
            progress.increment(size, end_of_epoch=end)
            seen.append(
                (
                    progress.unit_count,
                    progress.unit_total,
                    progress.example_total,
                    progress.batch_total,
                    progress.epoch_total,
                )
            )
            if log:
                progress.log_count += 1
                progress.reset()
        return seen

    def check_round_trip(self, make, before, after):
        original = make()
        self.drive(original, before)
        state = original.state_dict()
        for key, value in state.items():
            self.assertIn(type(value), (int, float, bool), key)
        resumed = make()
        resumed.load_state_dict(state)
        self.assertEqual(resumed.log_count, original.log_count)
        self.assertEqual(resumed.knows_epochs, original.knows_epochs)
        if original.knows_epochs:
            self.assertEqual(resumed.epoch_total, original.epoch_total)
        self.assertEqual(self.drive(resumed, after), self.drive(original, after))
        self.assertEqual(resumed.state_dict(), original.state_dict())

    def test_examples(self):
        steps = [(3, None, False), (3, None, True), (4, None, False)]
        self.check_round_trip(
            lambda: Progress("examples"), steps, [(5, None, True), (2, None, False)]
        )

    def test_fractional_epochs(self):
        before = [(3, None, True), (3, None, False), (3, None, True)]
        after = [(3, None, True)] * 5
        self.check_round_trip(lambda: Progress("epochs", epoch_size=10), before, after)

    def test_reported_epoch_ends(self):
        before = [
            (2, False, True),
            (2, False, False),
            (2, True, True),
            (2, False, False),
        ]
        after = [(2, False, True), (2, True, False), (2, False, True), (1, True, True)]
        self.check_round_trip(
            lambda: Progress("epochs", batches_per_epoch=4), before, after
        )
        # Without any epoch size, the reported ends alone must be restored.
        self.check_round_trip(lambda: Progress("epochs"), before, after)
        # After a resume, batches that do not say are still mid-epoch.
        unflagged = [(2, None, False), (2, None, True)]
        self.check_round_trip(lambda: Progress("epochs"), before, unflagged)
        self.check_round_trip(
            lambda: Progress("epochs", epoch_size=100, batches_per_epoch=4),
            before,
            unflagged,
        )

    def test_state_survives_a_safe_file(self):
        progress = Progress("epochs", epoch_size=10)
        self.drive(progress, [(3, None, True), (4, None, False)])
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "progress.pt")
            atomic_torch_save(progress.state_dict(), path)
            state = safe_torch_load(path)
        self.assertEqual(state, progress.state_dict())

    def test_load_restarts_the_per_log_counters(self):
        progress = Progress("batches")
        progress.increment(3)
        progress.increment(3)
        resumed = Progress("batches")
        resumed.load_state_dict(progress.state_dict())
        self.assertEqual(
            (resumed.unit_count, resumed.example_count, resumed.batch_count),
            (0, 0, 0),
        )
        self.assertEqual(resumed.unit_total, 2)
        resumed.increment(3)
        # unit_count counts from the last reset, as in the original run.
        progress.increment(3)
        self.assertEqual(resumed.unit_count, progress.unit_count)
        self.assertEqual(resumed.unit_total, 3)


if __name__ == "__main__":
    unittest.main()
