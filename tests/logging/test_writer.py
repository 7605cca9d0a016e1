import dataclasses
import json
import os
import tempfile
import unittest
from typing import NamedTuple

import numpy as np
import torch

from metal.end_model import EndModel
from metal.logging import LogWriter, LogWriterConfig, OperationLogWriter


class Inner(NamedTuple):
    lr: float = 0.1


class Outer(NamedTuple):
    name: str = "run"
    inner: Inner = Inner()


@dataclasses.dataclass
class DataConfig:
    a: int = 8
    b: str = "hello"


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


class OperationApiLogWriterTestCase(unittest.TestCase):
    """The Operation API's face of the writer (LogWriterConfig vocabulary)."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.cwd = os.getcwd()
        os.chdir(self.tmp.name)

    def tearDown(self):
        os.chdir(self.cwd)
        self.tmp.cleanup()

    def read(self, *parts):
        with open(os.path.join(*parts)) as f:
            return json.load(f)

    def test_run_name_layout(self):
        writer = OperationLogWriter(log_dir=self.tmp.name, run_name="my_run")
        folder = os.path.join(self.tmp.name, "my_run")
        self.assertEqual(writer.log_dir, folder)
        self.assertEqual(writer.log_subdir, folder)
        self.assertEqual(writer.config, LogWriterConfig(self.tmp.name, "my_run"))
        self.assertFalse(writer.verbose)
        self.assertTrue(os.path.isdir(folder))

    def test_default_run_name_is_date_and_time(self):
        writer = OperationLogWriter(**LogWriterConfig()._asdict())
        date, time, empty = writer.run_name.split("/")
        self.assertEqual(
            (len(date.split("_")), len(time.split("_")), empty), (3, 3, "")
        )
        self.assertEqual(writer.log_dir, os.path.join("logs", date, time, ""))
        self.assertTrue(os.path.isdir(os.path.join(self.tmp.name, "logs", date, time)))

    def test_the_class_chooses_the_layout_not_the_arguments(self):
        """MeTaL's LogWriter keeps its layout whatever arguments are given
        (``verbose=False`` used to move the files); the Operation face keeps
        its own."""
        for extra in ({}, {"verbose": False}, {"verbose": True}):
            writer = LogWriter(log_dir=self.tmp.name, run_name="r", **extra)
            self.assertEqual(writer.log_dir, self.tmp.name)
            self.assertTrue(os.path.basename(writer.log_subdir).startswith("r_"))
            face = OperationLogWriter(log_dir=self.tmp.name, run_name="o", **extra)
            self.assertEqual(face.log_dir, os.path.join(self.tmp.name, "o"))
        self.assertTrue(LogWriter(log_dir=self.tmp.name).verbose)
        self.assertFalse(OperationLogWriter(log_dir=self.tmp.name).verbose)

    def test_finish_ends_a_run_in_each_vocabulary(self):
        metal_writer = LogWriter(log_dir=self.tmp.name, run_name="m", verbose=False)
        metal_writer.add_scalar("loss", 0.5, 1)
        metal_writer.finish(config={"n_epochs": 2}, metrics={"acc": 0.9})
        log = self.read(metal_writer.log_path)
        self.assertEqual(log["config"], {"n_epochs": 2})
        self.assertEqual(log["run_log"], {"loss": [[1, 0.5]]})
        self.assertEqual(
            self.read(metal_writer.log_subdir, "metrics.json"), {"acc": 0.9}
        )
        face = OperationLogWriter(log_dir=self.tmp.name, run_name="o")
        face.add_scalar("loss", 0.5, 1)
        face.finish()
        self.assertEqual(self.read(face.log_path), {"loss": [[1, 0.5]]})

    def test_add_scalar_and_write_log(self):
        writer = OperationLogWriter(log_dir=self.tmp.name, run_name="my_run")
        writer.add_scalar("my_value", value=0.5, step=2)
        writer.add_scalar("my_value", val=0.25, i=3)
        writer.write_log("my_log.json")
        self.assertEqual(
            self.read(writer.log_dir, "my_log.json"),
            {"my_value": [[2, 0.5], [3, 0.25]]},
        )
        writer.write_log()  # MeTaL's form: the whole log_dict to log.json
        self.assertIn("start_time", self.read(writer.log_path))
        writer.cleanup()  # the Operation API's: the bare run log
        self.assertEqual(
            self.read(writer.log_path), {"my_value": [[2, 0.5], [3, 0.25]]}
        )
        with self.assertRaisesRegex(TypeError, "step"):
            writer.add_scalar("my_value", 0.5)
        with self.assertRaisesRegex(TypeError, "both"):
            writer.add_scalar("my_value", 0.5, 1, val=0.5)

    def test_write_config_forms(self):
        writer = OperationLogWriter(log_dir=self.tmp.name, run_name="cfg")
        writer.write_config(DataConfig())
        self.assertEqual(
            self.read(writer.log_dir, "config.json"), {"a": 8, "b": "hello"}
        )
        writer.write_config(Outer(), "outer.json")
        self.assertEqual(
            self.read(writer.log_dir, "outer.json"),
            {"name": "run", "inner": {"lr": 0.1}},
        )
        writer.write_config({"x": [Inner()]}, config_name="metal")  # MeTaL's name
        self.assertEqual(self.read(writer.log_dir, "metal.json"), {"x": [{"lr": 0.1}]})
        writer.write_config({"y": 1}, "plain")
        self.assertEqual(self.read(writer.log_dir, "plain.json"), {"y": 1})

    def test_write_text_and_json(self):
        writer = OperationLogWriter(log_dir=self.tmp.name, run_name="files")
        writer.write_text("hello\n", "notes.txt")
        with open(os.path.join(writer.log_dir, "notes.txt")) as f:
            self.assertEqual(f.read(), "hello\n")
        writer.write_json({"a": 1}, "a.json")
        self.assertEqual(self.read(writer.log_dir, "a.json"), {"a": 1})
        with self.assertWarnsRegex(UserWarning, ".json"):
            writer.write_json({"b": 2}, "b.txt")
        self.assertEqual(self.read(writer.log_dir, "b.txt"), {"b": 2})
        self.assertEqual(
            sorted(os.listdir(writer.log_dir)), ["a.json", "b.txt", "notes.txt"]
        )


if __name__ == "__main__":
    unittest.main()
