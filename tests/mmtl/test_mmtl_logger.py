import contextlib
import io
import unittest

from metal.mmtl.mmtl_logger import Logger, Timer


class RecordingWriter:
    def __init__(self):
        self.calls = []

    def add_scalar(self, name, value, step):
        self.calls.append((name, value, step))


class MmtlLoggerTest(unittest.TestCase):
    def test_screen_format_groups_by_task(self):
        logger = Logger({"log_unit": "epochs", "log_every": 1, "score_every": -1}, 2)
        logger.increment(4)
        logger.increment(4)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            logger.log(
                {
                    "model/train/all/loss": 0.0792,
                    "CircleTask/Payload0_train/labels/loss": 0.0968,
                    "CircleTask/Payload0_valid/labels/accuracy": 0.96,
                }
            )
        self.assertEqual(
            out.getvalue().splitlines(),
            [
                "[1.0 epo]:",
                "  CircleTask:[Payload0_train/labels/loss=9.68e-02, "
                "Payload0_valid/labels/accuracy=9.60e-01]",
                "  model:[train/all/loss=7.92e-02]",
            ],
        )

    def test_fractional_and_other_units(self):
        logger = Logger({"log_unit": "epochs", "log_every": 0.5}, 4, verbose=False)
        logger.increment(1)
        logger.increment(1)
        self.assertEqual(logger._v05_header(), "[0.50 epo]")
        logger = Logger({"log_unit": "batches", "log_every": 2}, 4, verbose=False)
        logger.increment(1)
        self.assertEqual(logger._v05_header(), "[1 bat (0.25 epo)]")

    def test_loss_and_metrics_time(self):
        logger = Logger(
            {"log_unit": "batches", "log_every": 1, "score_every": 2}, 10, verbose=False
        )
        pattern = []
        for _ in range(4):
            logger.increment(1)
            due = logger.loss_time()
            pattern.append((due, logger.metrics_time()))
            logger.reset()
        self.assertEqual(
            pattern, [(True, False), (True, True), (True, False), (True, True)]
        )
        never = Logger(
            {"log_unit": "batches", "log_every": 1, "score_every": 0}, 10, verbose=False
        )
        never.increment(1)
        never.loss_time()
        self.assertFalse(never.metrics_time())
        with self.assertRaises(ValueError):
            Logger({"log_unit": "batches", "log_every": 2, "score_every": 3}, 10)
        with self.assertRaises(ValueError):
            Logger({"log_unit": "fortnights"}, 10)

    def test_writer_steps(self):
        writer = RecordingWriter()
        logger = Logger(
            {"log_unit": "epochs", "log_every": 1}, 2, writer=writer, verbose=False
        )
        logger.increment(3)
        logger.log({"model/train/all/loss": 1.0})
        self.assertEqual(writer.calls, [("model/train/all/loss", 1.0, 1)])
        writer = RecordingWriter()
        logger = Logger(
            {"log_unit": "examples", "log_every": 3}, 2, writer=writer, verbose=False
        )
        logger.increment(3)
        logger.log({"x": 1.0})
        self.assertEqual(writer.calls, [("x", 1.0, 3)])

    def test_timer(self):
        timer = Timer()
        timer.update()
        elapsed = timer.elapsed()
        self.assertGreaterEqual(timer.total_elapsed(), elapsed)


if __name__ == "__main__":
    unittest.main()
