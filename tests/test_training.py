"""``metal.training.TrainingMixin``: training by gradient through the engine,
resuming, and what models without it (label models) do not carry."""

import os
import pickle
import subprocess
import sys
import tempfile
import textwrap
import unittest

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from metal.classifier import Classifier
from metal.end_model import EndModel
from metal.end_model.em_defaults import em_default_config
from metal.label_model import LabelModel
from metal.training import (
    TrainingMixin,
    _check_metric_names,
    _restore_saved_config,
)
from metal.utils import recursive_merge_dicts
from tests.test_classifier import DATA_CODE, REPO, DataTestCase, RunsCode, make_data


class TinyClassifier(TrainingMixin, Classifier):
    """A minimal non-EndModel Classifier trained through the shared loop."""

    def __init__(self, **kwargs):
        config = recursive_merge_dicts(em_default_config, kwargs, misses="exception")
        super().__init__(k=2, config=config)
        self.linear = nn.Linear(2, 2)

    def predict_proba(self, X):
        X = torch.as_tensor(np.asarray(X), dtype=torch.float32)
        with torch.no_grad():
            return F.softmax(self.linear(X), dim=1).numpy()

    def _get_loss_fn(self):
        return lambda X, Y: F.cross_entropy(self.linear(X), Y.long() - 1)

    def train_model(self, train_data, valid_data=None, **kwargs):
        self._update_train_config(kwargs)
        self._train_model(train_data, self._get_loss_fn(), valid_data=valid_data)


class OwnL2Classifier(TinyClassifier):
    implements_l2 = True


class ClassifierTrainingTestCase(DataTestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def test_custom_classifier_trains_through_the_engine(self):
        model = TinyClassifier(verbose=False, checkpoint_dir=self.tmp.name, seed=2)
        model.train_model(self.train, valid_data=self.valid, n_epochs=5, lr=0.05)
        self.assertGreater(model.score(self.test, verbose=False), 0.9)
        self.assertIsInstance(model.optimizer, torch.optim.Adam)
        self.assertIsInstance(
            model.lr_scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau
        )
        self.assertEqual(model.lr_scheduler.mode, "max")  # follows valid/accuracy
        self.assertEqual(model.logger.unit_total, 5)

    def test_implements_l2_means_no_weight_decay(self):
        plain = TinyClassifier(verbose=False, checkpoint=False)
        plain.train_model(self.train, n_epochs=1, l2=0.5)
        self.assertEqual(plain.optimizer.param_groups[0]["weight_decay"], 0.5)
        own = OwnL2Classifier(verbose=False, checkpoint=False)
        own.train_model(self.train, n_epochs=1, l2=0.5)
        self.assertEqual(own.optimizer.param_groups[0]["weight_decay"], 0)

    def test_optimizer_choice_reaches_the_model(self):
        em = EndModel([2, 10, 2], verbose=False, checkpoint=False)
        em.train_model(
            self.train, n_epochs=1, optimizer="sgd", lr=0.2, momentum=0.5, l2=0.01
        )
        self.assertIsInstance(em.optimizer, torch.optim.SGD)
        group = em.optimizer.param_groups[0]
        self.assertEqual((group["momentum"], group["weight_decay"]), (0.5, 0.01))
        em.train_model(
            self.train,
            n_epochs=3,
            optimizer="adamax",
            lr_scheduler="exponential",
            gamma=0.5,
        )
        self.assertIsInstance(em.optimizer, torch.optim.Adamax)
        self.assertAlmostEqual(em.optimizer.param_groups[0]["lr"], 0.2 * 0.5**3)

    def test_grad_clip_and_warmup_keys(self):
        em = EndModel([2, 10, 2], verbose=False, checkpoint=False, batch_size=250)
        em.train_model(
            self.train, n_epochs=1, grad_clip=0.1, warmup_steps=8, lr_scheduler=None
        )
        self.assertAlmostEqual(em.optimizer.param_groups[0]["lr"], 0.01 * 4 / 8)

    def test_failed_train_model_leaves_config_unchanged(self):
        em = EndModel([2, 10, 2], verbose=False)
        before = em.config
        with self.assertRaises(ValueError):
            em.train_model(self.train, n_epochs=2, optimizer="nope")
        self.assertIs(em.config, before)
        self.assertEqual(em.config["train_config"]["n_epochs"], 10)

    def test_device_handling(self):
        em = EndModel([2, 10, 2], verbose=False, device=-1, checkpoint=False)
        em.train_model(self.train, n_epochs=1)
        self.assertEqual(next(em.parameters()).device.type, "cpu")
        if not torch.cuda.is_available():
            with self.assertRaisesRegex(ValueError, "CUDA"):
                EndModel([2, 2], verbose=False, device="cuda")
            with self.assertRaisesRegex(ValueError, "CUDA"):
                EndModel([2, 2], verbose=False, device="cuda:1")


class TrainingMixinStructureTestCase(unittest.TestCase):
    def test_only_gradient_trained_models_carry_training(self):
        self.assertTrue(issubclass(EndModel, TrainingMixin))
        self.assertFalse(issubclass(LabelModel, TrainingMixin))
        self.assertTrue(issubclass(LabelModel, Classifier))
        for name in ("_train_model", "resume_training", "_get_loss_fn"):
            self.assertFalse(hasattr(LabelModel, name), name)
            self.assertTrue(hasattr(EndModel, name), name)

    def test_metric_names_are_checked(self):
        config = {"logger_config": {"log_valid_metrics": ["accuracy", "f9"]}}
        with self.assertRaisesRegex(ValueError, "'f9'"):
            _check_metric_names(config)
        with self.assertRaisesRegex(ValueError, "validation_metric"):
            _check_metric_names({"validation_metric": "nope"})
        _check_metric_names({"logger_config": {"log_train_metrics": ["loss"]}})

    def test_restore_saved_config_keeps_device_verbose_and_functions(self):
        def func(model, loader):
            return {}

        current = {
            "device": "cpu",
            "verbose": False,
            "train_config": {"n_epochs": 1, "log_train_metrics_func": func},
        }
        saved = {
            "device": "cuda",
            "verbose": True,
            "train_config": {"n_epochs": 5, "log_train_metrics_func": None},
        }
        merged = _restore_saved_config(current, saved)
        self.assertEqual((merged["device"], merged["verbose"]), ("cpu", False))
        self.assertEqual(merged["train_config"]["n_epochs"], 5)
        self.assertIs(merged["train_config"]["log_train_metrics_func"], func)
        self.assertEqual(current["train_config"]["n_epochs"], 1)


class ResumeTestCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.train, self.valid, self.test = make_data()

    def tearDown(self):
        self.tmp.cleanup()

    def test_resume_refuses_files_that_would_run_code(self):
        target = os.path.join(self.tmp.name, "pwned")
        path = os.path.join(self.tmp.name, "evil.pth")
        with open(path, "wb") as f:
            pickle.dump(
                {"format": "snorkel-metal/1", "x": RunsCode(target)}, f, protocol=2
            )
        em = EndModel([2, 10, 2], verbose=False)
        with self.assertRaisesRegex(ValueError, "evil.pth"):
            em.resume_training(self.train, model_path=path)
        self.assertFalse(os.path.exists(target))

    def test_resume_needs_a_training_checkpoint(self):
        em = EndModel([2, 10, 2], verbose=False)
        path = os.path.join(self.tmp.name, "model.pth")
        em.save(path)
        with self.assertRaises(ValueError):
            em.resume_training(self.train, model_path=path)


class ResumeAfterKillTestCase(unittest.TestCase):
    """A training process killed (SIGKILL) mid-run resumes in a new model from
    its last checkpoint and ends exactly where an uninterrupted run ends."""

    MODEL_KWARGS = dict(seed=1, verbose=False, middle_dropout=0.2)

    @classmethod
    def setUpClass(cls):
        cls.threads = torch.get_num_threads()
        torch.set_num_threads(1)

    @classmethod
    def tearDownClass(cls):
        torch.set_num_threads(cls.threads)

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.train, self.valid, self.test = make_data()

    def tearDown(self):
        self.tmp.cleanup()

    @unittest.skipIf(sys.platform == "win32", "needs SIGKILL")
    def test_killed_run_resumes_from_last_checkpoint(self):
        killed_dir = os.path.join(self.tmp.name, "killed")
        script = textwrap.dedent(f"""
            import os, signal
            import numpy as np, torch
            torch.set_num_threads(1)
            from metal.end_model import EndModel
            {DATA_CODE.strip().replace(chr(10), chr(10) + " " * 12)}
            logs = []
            def die_at_third_log(model, loader):
                logs.append(1)
                if len(logs) == 3:
                    os.kill(os.getpid(), signal.SIGKILL)
                return {{}}
            em = EndModel([2, 10, 2], checkpoint_dir={killed_dir!r},
                          **{self.MODEL_KWARGS!r})
            em.train_model(train, valid_data=valid, n_epochs=5, lr=0.05,
                           checkpoint_every=1, log_train_metrics_func=die_at_third_log)
            """)
        run = subprocess.run(
            [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True
        )
        self.assertEqual(run.returncode, -9, run.stderr)
        self.assertEqual(
            sorted(f for f in os.listdir(killed_dir) if f.startswith("model_")),
            ["model_checkpoint_1.pth", "model_checkpoint_2.pth"],
        )

        reference = EndModel(
            [2, 10, 2],
            checkpoint_dir=os.path.join(self.tmp.name, "full"),
            **self.MODEL_KWARGS,
        )
        reference.train_model(
            self.train,
            valid_data=self.valid,
            n_epochs=5,
            lr=0.05,
            checkpoint_every=1,
            log_train_metrics_func=lambda model, loader: {},
        )

        resumed = EndModel([2, 10, 2], checkpoint_dir=killed_dir, **self.MODEL_KWARGS)
        resumed.resume_training(
            self.train,
            model_path=os.path.join(killed_dir, "model_checkpoint_2.pth"),
            valid_data=self.valid,
        )
        self.assertEqual(resumed.config["train_config"]["n_epochs"], 5)
        self.assertEqual(resumed.logger.unit_total, 5)
        for name, value in reference.state_dict().items():
            self.assertTrue(torch.equal(value, resumed.state_dict()[name]), name)
        self.assertEqual(
            resumed.checkpointer.best_iteration, reference.checkpointer.best_iteration
        )
        self.assertTrue(
            os.path.exists(os.path.join(killed_dir, "model_checkpoint_5.pth"))
        )


if __name__ == "__main__":
    unittest.main()
