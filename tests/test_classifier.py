import contextlib
import io
import os
import pickle
import tempfile
import unittest

import numpy as np
import torch

from metal.classifier import Classifier
from metal.end_model import EndModel

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


class FixedVoter(Classifier):
    """A Classifier that learns nothing: the estimator base alone."""

    def __init__(self, k=3, **kwargs):
        super().__init__(k, {"seed": None, "verbose": False, **kwargs})
        self._record_init_kwargs(k=k, **kwargs)

    def predict_proba(self, X):
        X = np.asarray(X, dtype=np.float64)
        return X / X.sum(axis=1, keepdims=True)


class EstimatorBaseTestCase(unittest.TestCase):
    """predict_proba -> predict -> score, and save/load, with no training."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def test_predict_and_score_follow_predict_proba(self):
        model = FixedVoter()
        X = [[3, 1, 1], [1, 1, 3], [1, 3, 1], [2, 2, 1]]
        np.testing.assert_array_equal(
            model.predict(X, break_ties="abstain"), [1, 3, 2, 0]
        )
        np.testing.assert_array_equal(
            model.predict(X, break_ties="first"), [1, 3, 2, 1]
        )
        Y = [1, 3, 1, 0]  # the last item has no gold label
        self.assertAlmostEqual(model.score((X, Y), verbose=False), 2 / 3)
        soft = np.eye(3)[[0, 2, 1, 1]]  # probabilistic gold labels: 1, 3, 2, 2
        self.assertAlmostEqual(
            model.score((X, soft), break_ties="first", verbose=False), 0.75
        )
        self.assertFalse(hasattr(model, "train_model"))

    def test_save_and_load_without_training(self):
        model = FixedVoter(k=3, seed=5)
        path = os.path.join(self.tmp.name, "voter.pth")
        model.save(path)
        loaded = Classifier.load(path)
        self.assertIsInstance(loaded, FixedVoter)
        self.assertEqual((loaded.k, loaded.seed), (3, 5))


class DataTestCase(unittest.TestCase):
    """The ``make_data`` splits, with one torch thread (restored after)."""

    @classmethod
    def setUpClass(cls):
        cls.threads = torch.get_num_threads()
        torch.set_num_threads(1)
        cls.train, cls.valid, cls.test = make_data()

    @classmethod
    def tearDownClass(cls):
        torch.set_num_threads(cls.threads)


class ClassifierPredictionTestCase(DataTestCase):
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
        self.assertFalse(os.path.exists(target))


if __name__ == "__main__":
    unittest.main()
