import os
import tempfile
import unittest

import numpy as np
import torch

from metal.end_model import LogisticRegression


class LogisticRegressionTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.threads = torch.get_num_threads()
        torch.set_num_threads(1)
        cls.tmp = tempfile.TemporaryDirectory()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()
        torch.set_num_threads(cls.threads)

    def data(self, n_classes=2):
        """numpy seed 1, X ~ U[-1, 1]^2; binary Y = 1 + [x0 > x1 + 0.25], or
        3 classes: 1 if x0 < x1, 2 if x0 > x1 + 0.5, else 3."""
        np.random.seed(1)
        X = np.random.random((2000, 2)) * 2 - 1
        if n_classes == 2:
            Y = (X[:, 0] > X[:, 1] + 0.25).astype(int) + 1
        else:
            conditions = np.stack(
                [X[:, 0] < X[:, 1], X[:, 0] > X[:, 1] + 0.5, X[:, 0] > X[:, 1]],
                axis=1,
            )
            # argmax on a bool array needs ints first (torch/numpy 2 semantics)
            Y = np.argmax(conditions.astype(int), axis=1) + 1
        X, Y = torch.tensor(X, dtype=torch.float), torch.tensor(Y)
        return [
            (X[:1000], Y[:1000]),
            (X[1000:1500], Y[1000:1500]),
            (X[1500:], Y[1500:]),
        ]

    def test_logreg(self):
        train, valid, test = self.data()
        em = LogisticRegression(seed=1, input_dim=2, verbose=False)
        em.train_model(train, valid_data=valid, n_epochs=5, checkpoint=False)
        self.assertGreater(em.score(test, verbose=False), 0.95)

    def test_softmax(self):
        train, valid, test = self.data(n_classes=3)
        em = LogisticRegression(seed=1, input_dim=2, output_dim=3, verbose=False)
        em.train_model(train, valid_data=valid, n_epochs=10, lr=0.1, checkpoint=False)
        self.assertGreater(em.score(test, verbose=False), 0.95)

    def test_structure_and_input_overrides(self):
        em = LogisticRegression(
            input_dim=4, output_dim=3, input_batchnorm=True, verbose=False
        )
        self.assertEqual(em.k, 3)
        self.assertFalse(em.config["input_layer_config"]["input_batchnorm"])
        self.assertEqual(em.config["input_layer_config"]["input_dropout"], 0.0)
        self.assertEqual(
            sorted(em.state_dict()), ["network.1.bias", "network.1.weight"]
        )

    def test_save_and_load(self):
        em = LogisticRegression(input_dim=2, seed=3, verbose=False)
        path = os.path.join(self.tmp.name, "logreg.pth")
        em.save(path)
        loaded = LogisticRegression.load(path)
        self.assertIsInstance(loaded, LogisticRegression)
        self.assertEqual(loaded.seed, 3)
        X = torch.rand(10, 2)
        np.testing.assert_array_equal(em.predict_proba(X), loaded.predict_proba(X))


if __name__ == "__main__":
    unittest.main()
