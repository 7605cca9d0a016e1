import contextlib
import io
import os
import pickle
import tempfile
import unittest
from unittest import mock

import numpy as np
import torch
import torch.nn as nn

from metal.end_model import EndModel
from metal.logging import Checkpointer
from metal.logging import checkpointer as checkpointer_module
from metal.logging.checkpointer import load_checkpoint


def make_data():
    np.random.seed(1)
    X = np.random.random((2000, 2)) * 2 - 1
    Y = (X[:, 0] > X[:, 1] + 0.25).astype(int) + 1
    X, Y = torch.tensor(X, dtype=torch.float), torch.tensor(Y)
    return (X[:1000], Y[:1000]), (X[1000:1500], Y[1000:1500])


class RunsCode:
    """Unpickling this calls ``os.mkdir(path)``: a stand-in for malicious code."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


class CheckpointerUnitTestCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = os.path.join(self.tmp.name, "ckpt")
        self.model = nn.Linear(2, 2)

    def tearDown(self):
        self.tmp.cleanup()

    def make(self, **config):
        config.setdefault("checkpoint_dir", self.dir)
        config.setdefault("checkpoint_metric", "valid/accuracy")
        return Checkpointer(config, verbose=False)

    def feed(self, ckpt, scores, metric="valid/accuracy"):
        for i, score in enumerate(scores, start=1):
            with torch.no_grad():
                self.model.weight.fill_(float(i))
            ckpt.checkpoint({metric: score}, i, self.model, None, None)

    def saved_weight(self, name="best_model.pth"):
        return float(
            load_checkpoint(os.path.join(self.dir, name))["model"]["weight"][0, 0]
        )

    def test_best_max(self):
        ckpt = self.make()
        self.feed(ckpt, [0.5, 0.7, 0.6, 0.7, 0.65])
        self.assertEqual((ckpt.best_iteration, ckpt.best_score), (2, 0.7))
        self.assertEqual(self.saved_weight(), 2.0)

    def test_best_min(self):
        ckpt = self.make(checkpoint_metric_mode="min", checkpoint_metric="train/loss")
        self.feed(ckpt, [0.5, 0.3, 0.4, 0.2, 0.2], metric="train/loss")
        self.assertEqual((ckpt.best_iteration, ckpt.best_score), (4, 0.2))
        self.assertEqual(self.saved_weight(), 4.0)

    def test_runway(self):
        ckpt = self.make(checkpoint_runway=3)
        self.feed(ckpt, [0.9, 0.8, 0.5, 0.6])
        self.assertEqual((ckpt.best_iteration, ckpt.best_score), (4, 0.6))

    def test_every(self):
        ckpt = self.make(checkpoint_every=2, checkpoint_best=False)
        self.feed(ckpt, [0.1] * 5)
        self.assertEqual(
            sorted(os.listdir(self.dir)),
            ["model_checkpoint_2.pth", "model_checkpoint_4.pth"],
        )
        self.assertEqual(self.saved_weight("model_checkpoint_4.pth"), 4.0)

    def test_every_writes_each_file_once(self):
        ckpt = self.make(checkpoint_every=1, checkpoint_best=False)
        with mock.patch.object(
            checkpointer_module,
            "atomic_torch_save",
            wraps=checkpointer_module.atomic_torch_save,
        ) as save:
            for iteration in [0, 0.5, 1, 1, 1.25, 1.5, 2, 2, 3.5]:
                ckpt.checkpoint({}, iteration, self.model, None, None)
        written = [os.path.basename(call.args[1]) for call in save.call_args_list]
        self.assertEqual(
            written,
            [
                "model_checkpoint_1.pth",
                "model_checkpoint_2.pth",
                "model_checkpoint_3.pth",
            ],
        )

    def test_metric_missing_means_no_best(self):
        ckpt = self.make()
        ckpt.checkpoint({"train/loss": 0.1}, 1, self.model, None, None)
        self.assertIsNone(ckpt.best_model_found)
        self.assertFalse(os.path.exists(self.dir))  # nothing written, no folder
        with self.assertRaisesRegex(ValueError, "valid/accuracy"):
            ckpt.load_best_model(self.model)

    def test_load_best_model_restores_weights(self):
        ckpt = self.make()
        self.feed(ckpt, [0.5, 0.9, 0.6])
        ckpt.load_best_model(self.model)
        self.assertEqual(float(self.model.weight.detach()[0, 0]), 2.0)

    def test_bundle_is_plain_data(self):
        ckpt = self.make(checkpoint_every=1)
        ckpt.checkpoint(
            {"valid/accuracy": np.float64(0.5)}, 1, self.model, None, None, {"epoch": 0}
        )
        for name in ["best_model.pth", "model_checkpoint_1.pth"]:
            state = torch.load(os.path.join(self.dir, name))  # weights_only default
            self.assertEqual(state["iteration"], 1)
            self.assertEqual(state["training_state"], {"epoch": 0})
        best = torch.load(os.path.join(self.dir, "best_model.pth"))
        self.assertIs(type(best["score"]), float)
        self.assertTrue(best["best_model_found"])
        leftovers = [f for f in os.listdir(self.dir) if f.startswith(".tmp")]
        self.assertEqual(leftovers, [])

    def test_bad_config(self):
        with self.assertRaisesRegex(ValueError, "checkpoint_metric_mode"):
            self.make(checkpoint_metric_mode="best")
        with self.assertRaisesRegex(ValueError, "checkpoint_runway"):
            self.make(checkpoint_runway=-1)
        with self.assertRaisesRegex(ValueError, "checkpoint_every"):
            self.make(checkpoint_every=-2)

    def test_malicious_pickle_is_refused(self):
        target = os.path.join(self.tmp.name, "pwned")
        path = os.path.join(self.tmp.name, "evil.pth")
        with open(path, "wb") as f:
            pickle.dump({"model": RunsCode(target)}, f, protocol=2)
        with self.assertRaises(ValueError):
            self.make().restore(path)
        self.assertFalse(os.path.exists(target))

    def test_clean_up(self):
        ckpt = self.make()
        self.feed(ckpt, [0.5])
        ckpt.clean_up()
        self.assertFalse(os.path.exists(self.dir))
        ckpt.clean_up()  # absent folder is fine


class CheckpointerTrainingTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.threads = torch.get_num_threads()
        torch.set_num_threads(1)
        cls.train, cls.valid = make_data()

    @classmethod
    def tearDownClass(cls):
        torch.set_num_threads(cls.threads)

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = os.path.join(self.tmp.name, "checkpoints")

    def tearDown(self):
        self.tmp.cleanup()

    def train_model(self, **kwargs):
        em = EndModel(
            [2, 10, 2], seed=1, verbose=False, checkpoint=True, checkpoint_dir=self.dir
        )
        em.train_model(self.train, valid_data=self.valid, n_epochs=5, **kwargs)
        return em

    def weight(self, name):
        return torch.load(os.path.join(self.dir, name))["model"]["network.1.0.weight"]

    def test_checkpointing(self):
        """The original test, adapted: periodic files hold the weights at the
        end of their epoch, so file 5 equals the final weights and file 4 not."""
        em = self.train_model(checkpoint_every=1, checkpoint_best=False)
        final = em.state_dict()["network.1.0.weight"]
        self.assertFalse(torch.equal(self.weight("model_checkpoint_4.pth"), final))
        self.assertTrue(torch.equal(self.weight("model_checkpoint_5.pth"), final))
        self.assertEqual(
            sorted(os.listdir(self.dir)),
            [f"model_checkpoint_{i}.pth" for i in range(1, 6)],
        )

    def test_best_model_restored_whether_or_not_verbose(self):
        for verbose in (False, True):
            em = EndModel([2, 10, 2], seed=1, verbose=verbose, checkpoint_dir=self.dir)
            with contextlib.redirect_stdout(io.StringIO()):
                em.train_model(self.train, valid_data=self.valid, n_epochs=5, lr=0.5)
            best = torch.load(os.path.join(self.dir, "best_model.pth"))
            self.assertTrue(
                torch.equal(best["model"]["network.2.weight"], em.network[2].weight)
            )
            self.assertEqual(em.checkpointer.best_score, best["best_score"])

    def test_checkpoint_metric_min_mode(self):
        em = self.train_model(
            checkpoint_metric="train/loss", checkpoint_metric_mode="min"
        )
        best = torch.load(os.path.join(self.dir, "best_model.pth"))
        self.assertEqual(em.checkpointer.checkpoint_metric, "train/loss")
        self.assertEqual(best["iteration"], em.checkpointer.best_iteration)
        self.assertTrue(
            torch.equal(best["model"]["network.2.weight"], em.network[2].weight)
        )

    def test_checkpoint_runway(self):
        em = self.train_model(checkpoint_runway=4, checkpoint_every=1)
        self.assertGreaterEqual(em.checkpointer.best_iteration, 4)
        self.assertEqual(
            sorted(f for f in os.listdir(self.dir) if f.startswith("model")),
            ["model_checkpoint_4.pth", "model_checkpoint_5.pth"],
        )

    def test_unknown_checkpoint_metric_warns_and_keeps_final_model(self):
        with self.assertWarnsRegex(UserWarning, "valid/f1"):
            self.train_model(checkpoint_metric="f1")
        self.assertFalse(os.path.exists(self.dir))

    def test_resume_training(self):
        em = self.train_model(checkpoint_every=1)
        em.resume_training(
            self.train,
            valid_data=self.valid,
            model_path=os.path.join(self.dir, "model_checkpoint_2.pth"),
        )

    def test_no_validation_no_checkpoint_files(self):
        em = EndModel([2, 10, 2], seed=1, verbose=False, checkpoint_dir=self.dir)
        em.train_model(self.train, n_epochs=2)
        self.assertFalse(os.path.exists(self.dir))


if __name__ == "__main__":
    unittest.main()
