import contextlib
import io
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
from metal.training import TrainingMixin
from metal.utils import recursive_merge_dicts

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DATA_CODE = """
np.random.seed(1)
X = np.random.random((2000, 2)) * 2 - 1
Y = (X[:, 0] > X[:, 1] + 0.25).astype(int) + 1
X, Y = torch.tensor(X, dtype=torch.float), torch.tensor(Y)
train = (X[:1000], Y[:1000])
valid = (X[1000:1500], Y[1000:1500])
test = (X[1500:], Y[1500:])
"""


def make_data():
    namespace = {"np": np, "torch": torch}
    exec(DATA_CODE, namespace)
    return namespace["train"], namespace["valid"], namespace["test"]


class RunsCode:
    """Unpickling this calls ``os.mkdir(path)``: a stand-in for malicious code."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


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


class ClassifierTrainingTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.threads = torch.get_num_threads()
        torch.set_num_threads(1)
        cls.train, cls.valid, cls.test = make_data()

    @classmethod
    def tearDownClass(cls):
        torch.set_num_threads(cls.threads)

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

    def test_predict_and_break_ties(self):
        em = EndModel([2, 10, 2], verbose=False, seed=1, checkpoint=False)
        em.train_model(self.train, n_epochs=3)
        Y_p, Y_s = em.predict(self.test[0], return_probs=True)
        self.assertEqual(Y_p.dtype, np.int64)
        self.assertEqual(set(np.unique(Y_p)) <= {1, 2}, True)
        np.testing.assert_array_equal(Y_p, Y_s.argmax(axis=1) + 1)
        ties = np.array([[0.5, 0.5], [0.2, 0.8]])
        self.assertEqual(em._break_ties(ties, "abstain").tolist(), [0, 2])
        self.assertEqual(em._break_ties(ties, 2).tolist(), [2, 2])
        with self.assertRaises(ValueError):
            em._break_ties(ties, "coin")

    def test_score_prints_only_when_verbose(self):
        em = EndModel([2, 10, 2], verbose=False, seed=1, checkpoint=False)
        em.train_model(self.train, n_epochs=2)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            scores = em.score(self.test, metric=["accuracy", "f1"], verbose=False)
        self.assertEqual(out.getvalue(), "")
        self.assertEqual(len(scores), 2)
        with contextlib.redirect_stdout(out):
            em.score(self.test, verbose=True)
        self.assertIn("Accuracy:", out.getvalue())


class PersistenceTestCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.train, self.valid, self.test = make_data()

    def tearDown(self):
        self.tmp.cleanup()

    def test_save_load_round_trip(self):
        em = EndModel(
            [2, 10, 2], seed=7, verbose=False, middle_batchnorm=True, checkpoint=False
        )
        em.train_model(self.train, n_epochs=2)
        path = os.path.join(self.tmp.name, "model.pth")
        em.save(path)
        loaded = EndModel.load(path)
        self.assertEqual(loaded.seed, 7)
        self.assertEqual(loaded.config["train_config"]["n_epochs"], 2)
        np.testing.assert_array_equal(
            em.predict_proba(self.test[0]), loaded.predict_proba(self.test[0])
        )
        state = torch.load(path)  # plain data: the weights_only default suffices
        self.assertIn("state_dict", state)

    def test_malicious_pickle_is_refused(self):
        target = os.path.join(self.tmp.name, "pwned")
        path = os.path.join(self.tmp.name, "evil.pth")
        with open(path, "wb") as f:
            pickle.dump(
                {"format": "snorkel-metal/1", "x": RunsCode(target)}, f, protocol=2
            )
        with self.assertRaises(Exception):
            EndModel.load(path)
        em = EndModel([2, 10, 2], verbose=False)
        with self.assertRaises(ValueError):
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
