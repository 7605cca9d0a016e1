"""Tests of metal.tuners.random_tuner.RandomSearchTuner on real models."""

import glob
import json
import os
import tempfile
import unittest

import numpy as np
import torch

from metal.end_model import EndModel
from metal.label_model import LabelModel
from metal.logging import LogWriter
from metal.synthetic.generate import SingleTaskTreeDepsGenerator
from metal.tuners import RandomSearchTuner
from tests.tuners.test_tuner import QUIET_EM, make_data, quietly

try:
    from metal.multitask import MTEndModel, TaskGraph
except ImportError:  # the multitask models are optional here
    MTEndModel = TaskGraph = None


class RandomSearchTunerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.threads = torch.get_num_threads()
        torch.set_num_threads(1)
        cls.train, cls.valid, cls.test = make_data()
        cls.tmp = tempfile.TemporaryDirectory()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()
        torch.set_num_threads(cls.threads)

    def test_tuner_and_logging(self):
        """The original's test: dropout 0.0 learns, dropout 1.0 cannot; one
        parseable JSON log per trial plus the report."""
        tuner = RandomSearchTuner(
            EndModel,
            log_dir=self.tmp.name,
            run_name="logging",
            log_writer_class=LogWriter,
        )
        init_kwargs = dict(QUIET_EM, checkpoint=False)
        quietly(
            tuner.search,
            {"middle_dropout": [0.0, 1.0]},
            self.valid,
            train_args=[self.train],
            init_kwargs=init_kwargs,
            train_kwargs={"n_epochs": 10},
        )
        with open(tuner.report_path) as f:
            report = json.load(f)
        self.assertEqual(report[0]["search_params"], {"middle_dropout": 0.0})
        self.assertEqual(report[1]["search_params"], {"middle_dropout": 1.0})
        self.assertGreater(report[0]["score"], 0.95)
        self.assertLess(report[1]["score"], 0.65)
        for idx in (0, 1):
            paths = glob.glob(
                os.path.join(tuner.log_subdir, f"model_search_{idx}_*", "log.json")
            )
            self.assertEqual(len(paths), 1)
            with open(paths[0]) as f:
                log = json.load(f)
            self.assertEqual(log["config"]["train_config"]["n_epochs"], 10)
            self.assertEqual(
                log["config"]["middle_layer_config"]["middle_dropout"],
                report[idx]["config"]["middle_dropout"],
            )
            self.assertEqual(len(log["run_log"]["train/loss"]), 10)
        # The best model file was removed once loaded (clean_up=True).
        self.assertFalse(os.path.exists(tuner.save_path))

    def search_lr(self, tuner, **kwargs):
        args = dict(
            train_args=[self.train],
            init_kwargs=dict(QUIET_EM),
            train_kwargs={"n_epochs": 2},
            max_search=3,
            verbose=False,
        )
        args.update(kwargs)
        space = {
            "lr": {"range": [1e-4, 1e-1], "scale": "log"},
            "middle_dropout": [0.0, 0.1],
        }
        return tuner.search(space, self.valid, **args)

    def test_reproducible_with_seed(self):
        first = RandomSearchTuner(EndModel, seed=11)
        second = RandomSearchTuner(EndModel, seed=11)
        self.search_lr(first)
        self.search_lr(second)
        strip = [
            [(r["idx"], r["config"], r["score"]) for r in t.run_stats]
            for t in (first, second)
        ]
        self.assertEqual(strip[0], strip[1])
        # search(seed=...) re-seeds; without it the RNG continues.
        self.search_lr(second, seed=11)
        self.assertEqual(
            [r["config"] for r in second.run_stats],
            [r["config"] for r in first.run_stats],
        )
        self.search_lr(second)
        self.assertNotEqual(
            [r["config"] for r in second.run_stats],
            [r["config"] for r in first.run_stats],
        )

    def test_best_model_is_best_on_validation(self):
        tuner = RandomSearchTuner(EndModel, seed=5)
        model = self.search_lr(tuner, max_search=4)
        scores = [r["score"] for r in tuner.run_stats]
        self.assertEqual(tuner.best_score, max(scores))
        self.assertEqual(tuner.best_index, int(np.argmax(scores)))
        self.assertIsInstance(model, EndModel)
        # Loaded from its saved file, it scores exactly as reported.
        self.assertEqual(model.score(self.valid, verbose=False), tuner.best_score)
        best_lr = tuner.run_stats[tuner.best_index]["config"]["lr"]
        self.assertEqual(
            model.config["train_config"]["optimizer_config"]["optimizer_common"]["lr"],
            best_lr,
        )
        self.assertEqual(tuner.best_config["lr"], best_lr)
        # Trial checkpoints went to a temporary folder, not into the config.
        checkpoint_config = model.config["train_config"]["checkpoint_config"]
        self.assertEqual(checkpoint_config["checkpoint_dir"], "checkpoints")

    def test_clean_up_false_keeps_best_model(self):
        tuner = RandomSearchTuner(EndModel, log_dir=self.tmp.name, run_name="keep")
        model = self.search_lr(tuner, max_search=2, clean_up=False)
        self.assertTrue(os.path.exists(tuner.save_path))
        reloaded = EndModel.load(tuner.save_path)
        self.assertEqual(
            reloaded.score(self.valid, verbose=False),
            model.score(self.valid, verbose=False),
        )

    def test_other_validation_metric(self):
        tuner = RandomSearchTuner(EndModel, seed=2, validation_metric="f1")
        model = self.search_lr(tuner, max_search=2)
        self.assertEqual(
            model.score(self.valid, metric="f1", verbose=False), tuner.best_score
        )

    def test_acceptance_end_model_lr_and_layer_sizes(self):
        """A new user's run: 10 configurations of lr and layer sizes."""
        tuner = RandomSearchTuner(EndModel, seed=123)
        space = {
            "lr": {"range": [1e-3, 1e-1], "scale": "log"},
            "layer_out_dims": [[2, 8, 2], [2, 16, 2], [2, 16, 8, 2]],
            "n_epochs": 3,
        }
        model, out = quietly(
            tuner.search,
            space,
            self.valid,
            train_args=[self.train],
            init_kwargs={"seed": 1},
            max_search=10,
        )
        self.assertEqual(len(tuner.run_stats), 10)
        df = tuner.run_stats_df()
        self.assertEqual(list(df.columns), ["lr", "layer_out_dims", "score"])
        self.assertEqual(len(df), 10)
        self.assertIn(df.to_string().splitlines()[0], out)
        self.assertEqual(model.score(self.valid, verbose=False), tuner.best_score)
        self.assertEqual(
            model.config["layer_out_dims"],
            tuner.run_stats[tuner.best_index]["config"]["layer_out_dims"],
        )
        self.assertGreater(model.score(self.test, verbose=False), 0.95)


class LabelModelTuningTest(unittest.TestCase):
    """A LabelModel trained on L_train (with Y_dev for the class balance),
    scored on (L_dev, Y_dev)."""

    @classmethod
    def setUpClass(cls):
        np.random.seed(1)
        data = SingleTaskTreeDepsGenerator(3000, 8, k=2)
        cls.L_train = data.L[:2000]
        cls.L_dev, cls.Y_dev = data.L[2000:], data.Y[2000:]

    def test_label_model_with_y_dev(self):
        with tempfile.TemporaryDirectory() as tmp:
            tuner = RandomSearchTuner(
                LabelModel, log_dir=tmp, log_writer_class=LogWriter, seed=1
            )
            model = tuner.search(
                {
                    "lr": {"range": [1e-4, 1e-1], "scale": "log"},
                    "l2": [0.0, 0.1],
                    "n_epochs": [20, 100],
                },
                (self.L_dev, self.Y_dev),
                train_args=[self.L_train],
                init_kwargs={"k": 2, "seed": 1},
                train_kwargs={"Y_dev": self.Y_dev},
                max_search=5,
                verbose=False,
                break_ties="abstain",
            )
            with open(tuner.report_path) as f:
                report = json.load(f)
            logs = glob.glob(os.path.join(tuner.log_subdir, "model_search_*/log.json"))
            self.assertEqual(len(logs), 5)
            for path in logs:
                with open(path) as f:
                    log = json.load(f)
                self.assertIn("train/loss", log["run_log"])
                self.assertEqual(log["config"]["seed"], 1)
        self.assertIsInstance(model, LabelModel)
        self.assertEqual(len(report), 5)
        self.assertEqual(tuner.best_score, max(r["score"] for r in report))
        score = model.score(
            (self.L_dev, self.Y_dev), verbose=False, break_ties="abstain"
        )
        self.assertEqual(score, tuner.best_score)
        self.assertGreater(score, 0.9)

    def test_label_model_unknown_key(self):
        # As in MeTaL the key reaches the model, which ignores it; we warn.
        tuner = RandomSearchTuner(LabelModel, seed=1)
        with self.assertWarnsRegex(UserWarning, "LabelModel .*'layer_out_dims'"):
            model = tuner.search(
                {"layer_out_dims": [[2, 2]], "n_epochs": [50]},
                (self.L_dev, self.Y_dev),
                train_args=[self.L_train],
                verbose=False,
            )
        self.assertIsInstance(model, LabelModel)
        self.assertNotIn("layer_out_dims", model.config)
        self.assertEqual(model.config["train_config"]["n_epochs"], 50)


@unittest.skipIf(MTEndModel is None, "metal.multitask.MTEndModel is not available")
class MultitaskTuningTest(unittest.TestCase):
    def test_mt_end_model(self):
        np.random.seed(1)
        n = 1200
        X = np.random.random((n, 2)) * 2 - 1
        Y = [
            (X[:, 0] > X[:, 1] + 0.5).astype(int) + 1,
            (X[:, 0] > X[:, 1] + 0.25).astype(int) + 1,
        ]
        X = torch.tensor(X, dtype=torch.float)
        train = (X[:1000], [y[:1000] for y in Y])
        valid = (X[1000:1100], [y[1000:1100] for y in Y])
        tuner = RandomSearchTuner(MTEndModel, seed=1)
        model = tuner.search(
            {"lr": [0.01, 0.02]},
            valid,
            train_args=[train],
            init_kwargs={
                "layer_out_dims": [2, 8, 4],
                "task_graph": TaskGraph([2, 2]),
                "seed": 1,
                "verbose": False,
            },
            train_kwargs={"n_epochs": 3},
            verbose=False,
        )
        self.assertEqual(len(tuner.run_stats), 2)
        self.assertEqual(model.score(valid, verbose=False), tuner.best_score)


if __name__ == "__main__":
    unittest.main()
