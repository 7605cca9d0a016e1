import json
import os
import subprocess
import sys
import tempfile
import unittest
from typing import NamedTuple

import torch

from metal.end_model import EndModel
from metal.logging import OperationTensorBoardWriter, TensorBoardWriter


class SmallConfig(NamedTuple):
    a: int = 8
    b: str = "hello"


REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class TensorBoardWriterTestCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def test_event_files_and_json_log(self):
        writer = TensorBoardWriter(
            log_dir=self.tmp.name, run_dir="tb", run_name="run", verbose=False
        )
        writer.add_scalar("train/loss", 0.5, 1)
        writer.write_config({"n_epochs": 1})
        writer.close()
        files = os.listdir(writer.log_subdir)
        self.assertTrue(any(f.startswith("events.out.tfevents") for f in files))
        self.assertTrue(any(f.endswith(".run") for f in files))
        with open(writer.log_path) as f:
            self.assertEqual(json.load(f)["run_log"], {"train/loss": [[1, 0.5]]})

    def test_operation_api_forms(self):
        writer = OperationTensorBoardWriter(run_name="my_run", log_dir=self.tmp.name)
        folder = os.path.join(self.tmp.name, "my_run")
        self.assertEqual(writer.log_dir, folder)
        writer.add_scalar("my_value", value=0.5, step=2)
        writer.write_config(SmallConfig())
        writer.write_text("notes", "notes.txt")
        writer.cleanup()  # closes the event file; no log.json
        files = sorted(os.listdir(folder))
        self.assertNotIn("log.json", files)
        self.assertIn("notes.txt", files)
        self.assertTrue(any(f.startswith("events.out.tfevents") for f in files))
        self.assertFalse(any(f.endswith(".my_run") for f in files))
        with open(os.path.join(folder, "config.json")) as f:
            self.assertEqual(json.load(f), SmallConfig()._asdict())

    def test_training_with_tensorboard(self):
        X = torch.rand(64, 2)
        Y = (X[:, 0] > X[:, 1]).long() + 1
        em = EndModel(
            [2, 2],
            verbose=False,
            checkpoint=False,
            writer="tensorboard",
            log_dir=self.tmp.name,
        )
        em.train_model((X, Y), valid_data=(X, Y), n_epochs=2)
        self.assertIsInstance(em.writer, TensorBoardWriter)
        files = os.listdir(em.writer.log_subdir)
        self.assertTrue(any(f.startswith("events.out.tfevents") for f in files))

    def test_backend_imported_lazily(self):
        code = (
            "import sys, metal.logging, metal.classifier, metal.end_model, "
            "metal.engine; print('tensorboardX' in sys.modules, "
            "'torch.utils.tensorboard' in sys.modules)"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True
        )
        self.assertEqual(out.stdout.strip(), "False False", out.stderr)


if __name__ == "__main__":
    unittest.main()
