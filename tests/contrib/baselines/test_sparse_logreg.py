import os
import tempfile
import unittest

import numpy as np
import torch

from metal.contrib.baselines.sparse_logreg import SparseLogisticRegression
from metal.contrib.modules.sparse_linear_module import SparseLinearModule


def make_data(n_features=1000, n_rows=50, width=100):
    """Rows with 10-99 random feature ids (1..F-1), zero-padded to ``width``;
    random labels in {1, 2}."""
    np.random.seed(1)
    X = np.zeros((n_rows, width), dtype=np.int64)
    for row in range(n_rows):
        count = np.random.randint(10, width)
        X[row, :count] = np.random.randint(1, n_features, count)
    Y = np.random.randint(1, 3, n_rows)
    return torch.tensor(X), torch.tensor(Y)


class SparseLogisticRegressionTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def model(self, **kwargs):
        return SparseLogisticRegression(
            seed=1,
            input_dim=1000,
            padding_idx=0,
            verbose=False,
            checkpoint_dir=self.tmp.name,
            **kwargs,
        )

    def test_sparselogreg(self):
        """The original's intended check: it over-fits random labels while the
        padding row stays exactly 0. (The original's lr of 0.0005 cannot reach
        the threshold in 5 epochs of 2 batches; 0.05 does.)"""
        X, Y = make_data()
        em = self.model()
        em.train_model((X, Y), n_epochs=5, optimizer="sgd", lr=0.05)
        self.assertEqual(em.network[-1].W.weight[0].sum().item(), 0.0)
        self.assertGreater(em.score((X, Y), verbose=False), 0.95)

    def test_importable_from_end_model(self):
        from metal.end_model import SparseLogisticRegression as FromEndModel

        self.assertIs(FromEndModel, SparseLogisticRegression)
        import metal.end_model

        self.assertIs(
            metal.end_model.SparseLogisticRegression, SparseLogisticRegression
        )

    def test_structure(self):
        em = self.model(output_dim=3)
        head = em.network[-1]
        self.assertIsInstance(head, SparseLinearModule)
        self.assertEqual(head.vocab_size, 1000)
        self.assertEqual(tuple(head.W.weight.shape), (1000, 3))
        self.assertEqual(em.k, 3)
        self.assertEqual(em.config["layer_out_dims"], [1000, 3])
        self.assertFalse(em.config["input_layer_config"]["input_batchnorm"])
        self.assertEqual(em.config["input_layer_config"]["input_dropout"], 0.0)
        # forced even when asked otherwise
        em = self.model(input_batchnorm=True, input_dropout=0.5)
        self.assertFalse(em.config["input_layer_config"]["input_batchnorm"])
        probs = em.predict_proba(np.array([[1, 2, 0], [3, 0, 0]]))
        self.assertEqual(probs.shape, (2, 2))
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)

    def test_save_and_load(self):
        X, Y = make_data()
        em = self.model(output_dim=2)
        em.train_model((X, Y), n_epochs=2, optimizer="sgd", lr=0.05)
        path = os.path.join(self.tmp.name, "sparse_logreg.pth")
        em.save(path)
        loaded = SparseLogisticRegression.load(path)
        self.assertIsInstance(loaded, SparseLogisticRegression)
        np.testing.assert_array_equal(loaded.predict_proba(X), em.predict_proba(X))

    def test_rejects_optimizers_without_sparse_support(self):
        X, Y = make_data()
        em = self.model()
        with self.assertRaisesRegex(ValueError, "optimizer='adam'.*optimizer='sgd'"):
            em.train_model((X, Y), n_epochs=1)
        with self.assertRaisesRegex(ValueError, "optimizer='sparseadam'"):
            em.train_model((X, Y), n_epochs=1, optimizer="sparseadam")
        with self.assertRaisesRegex(ValueError, "l2=0.*l2=0.1"):
            em.train_model((X, Y), n_epochs=1, optimizer="sgd", l2=0.1)
        with self.assertRaisesRegex(ValueError, "padding_idx"):
            SparseLogisticRegression(input_dim=10, padding_idx=10, verbose=False)


if __name__ == "__main__":
    unittest.main()
