import contextlib
import io
import os
import pickle
import tempfile
import types
import unittest
from unittest import mock

import numpy as np
import torch
import torch.nn as nn

from metal.end_model import EndModel
from metal.logging import Checkpointer, TaskMetricCheckpointer
from metal.logging import checkpointer as checkpointer_module
from metal.logging.checkpointer import load_checkpoint
from tests.test_io import BadFileChecks, assert_load_refused


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

    def test_load_best_model_into_a_model_it_does_not_fit(self):
        ckpt = self.make()
        self.feed(ckpt, [0.5, 0.9])
        other = nn.Linear(3, 2)
        before = {k: v.clone() for k, v in other.state_dict().items()}
        with self.assertRaisesRegex(
            ValueError, r"best_model.pth' does not fit this model: .*weight"
        ):
            ckpt.load_best_model(other)
        for name, value in other.state_dict().items():
            self.assertTrue(torch.equal(value, before[name]))

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

    def test_checkpointing_with_v05_arguments(self):
        """MeTaL v0.5 built this model with ``batchnorm``/``dropout`` keyword
        arguments (kept with a warning, no effect) and passed the checkpoint
        settings to ``train_model``."""
        with self.assertWarnsRegex(UserWarning, "'batchnorm'"):
            em = EndModel(
                seed=1,
                batchnorm=False,
                dropout=0.0,
                layer_out_dims=[2, 10, 2],
                verbose=False,
                checkpoint_dir=self.dir,
            )
        em.train_model(
            self.train,
            valid_data=self.valid,
            n_epochs=5,
            checkpoint=True,
            checkpoint_every=1,
            checkpoint_best=False,
        )
        final = em.state_dict()["network.1.0.weight"]
        self.assertTrue(torch.equal(self.weight("model_checkpoint_5.pth"), final))
        self.assertEqual(len(os.listdir(self.dir)), 5)

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
        """A fresh model resumed from the epoch-2 snapshot ends exactly as the
        uninterrupted run: the same weights (its best model), best iteration
        and score, and the same progress counters."""
        em = self.train_model(checkpoint_every=1)
        reference = {name: value.clone() for name, value in em.state_dict().items()}
        resumed = EndModel(
            [2, 10, 2], seed=7, verbose=False, checkpoint=True, checkpoint_dir=self.dir
        )
        resumed.resume_training(
            self.train,
            valid_data=self.valid,
            model_path=os.path.join(self.dir, "model_checkpoint_2.pth"),
        )
        self.assertEqual(resumed.config["train_config"]["n_epochs"], 5)
        for name, value in resumed.state_dict().items():
            self.assertTrue(torch.equal(value, reference[name]), name)
        self.assertEqual(resumed.logger.unit_total, 5)
        self.assertEqual(
            resumed.checkpointer.best_iteration, em.checkpointer.best_iteration
        )
        self.assertEqual(resumed.checkpointer.best_score, em.checkpointer.best_score)

    def test_no_validation_no_checkpoint_files(self):
        em = EndModel([2, 10, 2], seed=1, verbose=False, checkpoint_dir=self.dir)
        em.train_model(self.train, n_epochs=2)
        self.assertFalse(os.path.exists(self.dir))


F1 = "task/dataset/valid/f1"
LOSS = "model/all/train/loss"


class SavingLinear(nn.Linear):
    """A module with its own ``save``/``load`` (as MultitaskClassifier has)."""

    def save(self, path):
        torch.save({"weight": self.weight.detach().clone()}, path)

    def load(self, path):
        state = torch.load(path, weights_only=True)
        with torch.no_grad():
            self.weight.copy_(state["weight"])


class FakeEngine:
    """What a checkpointer reads from the training engine."""

    def __init__(self, model, optimizer):
        self.model = model
        self.optimizer = optimizer
        self.lr_schedule = None
        self.progress = types.SimpleNamespace(unit_total=0)
        self.state = types.SimpleNamespace(batches_seen=0)

    def training_state(self, epoch_finished):
        return {"epoch_finished": epoch_finished}


class TaskMetricCheckpointerTestCase(unittest.TestCase):
    """The Operation API's call forms of the one checkpointer."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = os.path.join(self.tmp.name, "ckpt")

    def tearDown(self):
        self.tmp.cleanup()

    def make(self, **config):
        config.setdefault("checkpoint_dir", self.dir)
        config.setdefault("checkpoint_metric", f"{F1}:max")
        return TaskMetricCheckpointer("epochs", 1, **config)

    def files(self):
        return sorted(os.listdir(self.dir))

    def test_is_the_metal_checkpointer(self):
        ckpt = self.make(checkpoint_factor=2, checkpoint_runway=1)
        self.assertIsInstance(ckpt, Checkpointer)
        self.assertTrue(os.path.isdir(self.dir))  # made at construction
        self.assertEqual(ckpt.checkpoint_metric, F1)
        self.assertEqual(ckpt.checkpoint_metric_mode, "max")
        self.assertEqual(ckpt.checkpoint_every, 2)
        self.assertEqual(ckpt.checkpoint_freq, 2)
        self.assertEqual(ckpt.checkpoint_runway, 1)
        self.assertEqual(ckpt.checkpoint_unit, "epochs")

    def test_operation_api_call_with_own_save(self):
        model = SavingLinear(2, 2)
        ckpt = self.make(checkpoint_task_metrics=[f"{LOSS}:min"])
        self.assertEqual(ckpt.checkpoint_task_metrics, {F1: "max", LOSS: "min"})
        with torch.no_grad():
            model.weight.fill_(1.0)
        ckpt.checkpoint(1, model, {F1: 0.5, LOSS: 0.4})
        with torch.no_grad():
            model.weight.fill_(2.0)
        ckpt.checkpoint(2, model, {F1: 0.4, LOSS: 0.3})
        self.assertEqual(ckpt.best_metric_dict, {F1: 0.5, LOSS: 0.3})
        self.assertEqual(
            self.files(),
            [
                "best_model_model_all_train_loss.pth",
                "best_model_task_dataset_valid_f1.pth",
                "checkpoint_1.pth",
                "checkpoint_2.pth",
            ],
        )
        ckpt.clear()
        self.assertEqual(len(self.files()), 2)
        self.assertIs(ckpt.load_best_model(model), model)
        self.assertEqual(float(model.weight.detach()[0, 0]), 1.0)  # best by f1
        self.assertEqual((ckpt.best_iteration, ckpt.best_score), (1, 0.5))

    def test_plain_module_is_saved_as_state_dict(self):
        model = nn.Linear(2, 2)
        ckpt = self.make()
        ckpt.checkpoint(1, model, {F1: 0.5})
        state = torch.load(
            os.path.join(self.dir, "checkpoint_1.pth"), weights_only=True
        )
        self.assertEqual(set(state), {"weight", "bias"})
        original = model.weight.detach().clone()
        with torch.no_grad():
            model.weight.zero_()
        ckpt.load_best_model(model)
        self.assertTrue(torch.equal(model.weight, original))
        with self.assertRaisesRegex(ValueError, "does not fit this model: it lacks"):
            ckpt.load_best_model(nn.Sequential(nn.Linear(2, 2)))

    def test_is_new_best_and_no_best(self):
        ckpt = self.make(checkpoint_task_metrics=[f"{LOSS}:min"])
        self.assertEqual(ckpt._is_new_best({"other": 1.0}), set())
        self.assertEqual(ckpt._is_new_best({F1: 0.5, LOSS: 1.0}), {F1, LOSS})
        self.assertEqual(ckpt._is_new_best({F1: 0.5, LOSS: 0.9}), {LOSS})
        self.assertEqual(ckpt._is_new_best({F1: np.float64(0.6)}), {F1})
        self.assertIsInstance(ckpt.best_metric_dict[F1], float)
        model = nn.Linear(2, 2)
        fresh = self.make()
        self.assertIs(fresh.load_best_model(model), model)  # nothing to load

    def test_clear_can_be_disabled(self):
        ckpt = self.make(checkpoint_clear=False)
        ckpt.checkpoint(1, nn.Linear(2, 2), {})
        ckpt.clear()
        self.assertEqual(self.files(), ["checkpoint_1.pth"])

    def test_engine_callback_form(self):
        """Driven by the engine (its callback hook): resumable bundles, v0.10
        names; the Operation API's ``checkpoint`` takes only its own form."""
        model = nn.Linear(2, 2)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        ckpt = self.make(checkpoint_task_metrics=[f"{LOSS}:min"])
        engine = FakeEngine(model, optimizer)
        engine.progress.unit_total = 1
        ckpt.on_batch_end(engine, {F1: 0.5, LOSS: 0.4}, False)
        engine.progress.unit_total = 1.5
        ckpt.on_batch_end(engine, {LOSS: 0.3}, False)
        self.assertEqual(ckpt.best_saves, 1)  # only the main metric counts
        self.assertEqual(ckpt.best_metric_dict, {F1: 0.5, LOSS: 0.3})
        self.assertEqual(
            self.files(),
            [
                "best_model_model_all_train_loss.pth",
                "best_model_task_dataset_valid_f1.pth",
                "checkpoint_1.pth",
            ],
        )
        bundle = load_checkpoint(ckpt.best_model_path)
        self.assertEqual((bundle["iteration"], bundle["score"]), (1, 0.5))
        self.assertEqual(bundle["training_state"], {"epoch_finished": False})
        self.assertTrue(ckpt.periodic_due(2))
        copy = self.make(checkpoint_task_metrics=[f"{LOSS}:min"])
        copy.load_state_dict(ckpt.state_dict())
        self.assertEqual(copy.best_metric_dict, ckpt.best_metric_dict)
        self.assertTrue(copy.best_model_found)
        with self.assertRaisesRegex(TypeError, "positional"):
            ckpt.checkpoint({F1: 0.5}, 1, model, optimizer, None)

    def test_validation_before_the_disk(self):
        cases = [
            ({"checkpoint_runway": -1}, "checkpoint_runway"),
            ({"checkpoint_factor": 0}, "Invalid checkpoint freq"),
            ({"checkpoint_metric": "task/dataset/valid/f1"}, "metric_name:mode"),
            ({"checkpoint_metric": "t/d/valid/f1:best"}, "metric mode"),
            ({"checkpoint_task_metrics": ["t/d/valid/f1"]}, "metric_name:mode"),
            ({"checkpoint_metric": "f1:max"}, "checkpoint_metric must be formatted"),
            ({"checkpoint_frequency": 2}, "checkpoint_frequency"),
        ]
        for config, message in cases:
            with self.subTest(config=config):
                with self.assertRaisesRegex(ValueError, message):
                    self.make(**config)
        with self.assertRaisesRegex(ValueError, "Unrecognized counter_unit"):
            TaskMetricCheckpointer("minutes", 1, checkpoint_dir=self.dir)
        with self.assertRaisesRegex(ValueError, "checkpoint freq"):
            TaskMetricCheckpointer("epochs", 0, checkpoint_dir=self.dir)
        with self.assertRaises(TypeError):
            self.make(checkpoint_dir=None)
        self.assertFalse(os.path.exists(self.dir))


class LoadCheckpointBadFileTestCase(BadFileChecks, unittest.TestCase):
    """``load_checkpoint`` (and ``Checkpointer.restore``) on damaged,
    malicious and foreign files (the checks of ``tests.test_io.BadFileChecks``),
    and on checkpoints with bad entries."""

    WHAT = "checkpoint"

    def setUp(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.dir = tmp.name
        model = nn.Linear(2, 2)
        self.bundle = {
            "iteration": 3,
            "model": model.state_dict(),
            "optimizer": torch.optim.SGD(model.parameters(), lr=0.1).state_dict(),
            "lr_scheduler": None,
            "score": 0.5,
            "training_state": {"epoch": 1},
        }
        self.good = self.write("good", self.bundle)

    def write(self, name, contents):
        path = os.path.join(self.dir, name + ".pth")
        torch.save(contents, path)
        return path

    def assert_refused(self, path, *fragments):
        for load in (load_checkpoint, Checkpointer({}, verbose=False).restore):
            assert_load_refused(self, load, path, *fragments)

    def test_good_checkpoint(self):
        state = load_checkpoint(self.good)
        self.assertEqual(state["iteration"], 3)
        self.assertEqual(set(state["model"]), {"weight", "bias"})

    def test_missing_path(self):
        missing = os.path.join(self.dir, "missing.pth")
        with self.assertRaises(FileNotFoundError) as ctx:
            load_checkpoint(missing)
        self.assertIn(repr(missing), str(ctx.exception))

    def test_not_a_checkpoint(self):
        model_file = os.path.join(self.dir, "model.pth")
        EndModel([2, 2], verbose=False).save(model_file)
        self.assert_refused(
            model_file,
            "is not a training checkpoint (it is a model file: load it with "
            "EndModel.load)",
        )
        for name, contents in [
            ("list", [1, 2]),
            ("bare state dict", nn.Linear(2, 2).state_dict()),
            ("no model", {k: v for k, v in self.bundle.items() if k != "model"}),
        ]:
            with self.subTest(name):
                path = self.write(name.replace(" ", "_"), contents)
                self.assert_refused(path, "is not a training checkpoint")

    def test_entries_of_the_wrong_type(self):
        for key, value, fragment in [
            ("model", [1], "'model' entry is not a state dict"),
            ("model", {"weight": 1.0}, "'model' entry is not a state dict"),
            ("optimizer", "sgd", "'optimizer' entry is of type str, not dict or None"),
            ("lr_scheduler", [1], "'lr_scheduler' entry is of type list"),
            ("training_state", None, "'training_state' entry is of type NoneType"),
        ]:
            with self.subTest(key=key, value=value):
                path = self.write("bad_" + key, dict(self.bundle, **{key: value}))
                self.assert_refused(path, "is damaged", fragment)

    def test_optional_entries_may_be_absent(self):
        minimal = self.write("minimal", {"model": self.bundle["model"]})
        self.assertEqual(set(load_checkpoint(minimal)), {"model"})


if __name__ == "__main__":
    unittest.main()
