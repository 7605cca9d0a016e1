import json
import os
import tempfile
import unittest

import numpy as np
import torch

from metal.end_model import EndModel
from metal.logging import LogWriter


class LogWriterTestCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.cwd = os.getcwd()
        os.chdir(self.tmp.name)  # not a git checkout: the writer must not care

    def tearDown(self):
        os.chdir(self.cwd)
        self.tmp.cleanup()

    def test_logwriter(self):
        """The original test: config and 7 epochs of train/loss in log.json."""
        np.random.seed(1)
        X = torch.tensor(np.random.random((1000, 2)) * 2 - 1, dtype=torch.float)
        Y = (X[:, 0] > X[:, 1] + 0.25).long() + 1
        em = EndModel(
            seed=1,
            verbose=False,
            layer_out_dims=[2, 10, 2],
            writer="json",
            log_dir=os.path.join(self.tmp.name, "logs"),
            run_dir="test_dir",
            run_name="test",
        )
        em.train_model(
            (X[:500], Y[:500]),
            valid_data=(X[500:], Y[500:]),
            n_epochs=7,
            checkpoint=False,
        )
        with open(em.writer.log_path) as f:
            log_dict = json.load(f)
        self.assertEqual(log_dict["config"]["train_config"]["n_epochs"], 7)
        self.assertEqual(len(log_dict["run_log"]["train/loss"]), 7)
        self.assertEqual(
            [i for i, _ in log_dict["run_log"]["valid/accuracy"]], list(range(1, 8))
        )
        self.assertIsNone(log_dict["commit"])
        folder = os.path.dirname(em.writer.log_path)
        self.assertTrue(
            folder.startswith(os.path.join(self.tmp.name, "logs", "test_dir"))
        )
        self.assertTrue(os.path.basename(folder).startswith("test_"))
        with open(os.path.join(folder, "config.json")) as f:
            self.assertEqual(json.load(f)["layer_out_dims"], [2, 10, 2])
        with open(os.path.join(folder, "metrics.json")) as f:
            self.assertIn("valid/accuracy", json.load(f))

    def test_layout_defaults(self):
        writer = LogWriter(verbose=False)
        parts = os.path.relpath(writer.log_subdir, self.tmp.name).split(os.sep)
        self.assertEqual(len(parts), 2)  # <date>/<time>
        self.assertEqual(len(parts[0].split("_")), 3)
        self.assertTrue(os.path.isdir(writer.log_subdir))
        self.assertTrue(writer.include_config)
        self.assertFalse(LogWriter(verbose=False, include_config=False).include_config)

    def test_add_scalar_and_whitelist(self):
        writer = LogWriter(run_name="w", writer_metrics=["a"], verbose=False)
        self.assertTrue(writer.add_scalar("a", np.float32(0.5), 2.0))
        self.assertFalse(writer.add_scalar("b", 1.0, 2))
        self.assertTrue(writer.add_scalar("a", None, 3))
        writer.close()
        with open(writer.log_path) as f:
            self.assertEqual(json.load(f)["run_log"], {"a": [[2, 0.5], [3, None]]})

    def test_sanitized_config_and_write(self):
        def my_func(model, loader):
            return {}

        config = {
            "f": my_func,
            "fs": [my_func, my_func],
            "nested": {"arr": np.arange(3), "x": np.float64(1.5), "t": (1, 2)},
        }
        writer = LogWriter(verbose=False)
        clean = writer._sanitize_config(config)
        self.assertIsInstance(clean["f"], str)
        self.assertIsInstance(clean["fs"], str)
        self.assertIs(config["f"], my_func)  # the original is untouched
        writer.write(config=config, metrics={"valid/accuracy": np.float64(0.9)})
        for name in ("log.json", "config.json", "metrics.json"):
            with open(os.path.join(writer.log_subdir, name)) as f:
                json.load(f)
        with open(os.path.join(writer.log_subdir, "config.json")) as f:
            self.assertEqual(json.load(f)["nested"]["arr"], [0, 1, 2])

    def test_passed_log_writer_is_used(self):
        X = torch.rand(40, 2)
        Y = (X[:, 0] > X[:, 1]).long() + 1
        writer = LogWriter(log_dir=self.tmp.name, run_name="given", verbose=False)
        em = EndModel([2, 2], verbose=False, writer=None, checkpoint=False)
        em.train_model((X, Y), log_writer=writer, n_epochs=2)
        self.assertIs(em.writer, writer)
        with open(writer.log_path) as f:
            log = json.load(f)
        self.assertEqual(len(log["run_log"]["train/loss"]), 2)
        self.assertEqual(log["config"]["train_config"]["n_epochs"], 2)

    def test_exact_folder_without_timestamp(self):
        writer = LogWriter(
            log_dir=self.tmp.name,
            run_dir="",
            run_name="log.json",
            timestamp=False,
            verbose=False,
        )
        self.assertEqual(
            os.path.normpath(writer.log_subdir), os.path.join(self.tmp.name, "log.json")
        )
        writer.add_scalar("model/all/train/loss", 0.5, 1)
        writer.close()
        with open(os.path.join(self.tmp.name, "log.json", "log.json")) as f:
            self.assertIn("model/all/train/loss", json.load(f)["run_log"])
        dated = LogWriter(
            log_dir=self.tmp.name, run_name="run", timestamp=False, verbose=False
        )
        self.assertEqual(os.path.basename(os.path.normpath(dated.log_subdir)), "run")
        self.assertEqual(dated.run_dir, dated.log_dict["start_date"])


if __name__ == "__main__":
    unittest.main()
