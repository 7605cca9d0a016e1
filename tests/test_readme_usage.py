"""The single-task usage of MeTaL's README (and ours), run as written."""

import os
import tempfile
import unittest

import numpy as np
import scipy.sparse as sp


class ReadmeUsageTest(unittest.TestCase):
    def test_single_task_sample_usage(self):
        rng = np.random.default_rng(0)
        n, m, k = 3000, 10, 2
        Y = rng.integers(1, 3, n)
        votes = np.where(rng.random((n, m)) < 0.75, Y[:, None], 3 - Y[:, None])
        L = np.where(rng.random((n, m)) < 0.5, votes, 0)
        W = rng.normal(size=1000)
        # "X: an n-dim iterable (e.g., a list) of end model inputs"
        X = [
            ((Y[i] == 1) * 0.3 * W + rng.normal(size=1000)).astype(np.float32)
            for i in range(n)
        ]
        L_train = sp.csr_matrix(L[:2000])
        X_train, X_dev, X_test = X[:2000], X[2000:2500], X[2500:]
        Y_dev, Y_test = Y[2000:2500], Y[2500:]

        cwd = os.getcwd()
        with tempfile.TemporaryDirectory() as folder:
            os.chdir(folder)  # the default checkpoint folder is relative
            try:
                from metal.label_model import EndModel, LabelModel

                # Train a label model and generate training labels
                label_model = LabelModel(k)
                label_model.train_model(L_train)
                Y_train_probs = label_model.predict_proba(L_train)

                # Train a discriminative end model with the generated labels
                end_model = EndModel([1000, 10, 2])
                end_model.train_model(
                    train_data=(X_train, Y_train_probs), valid_data=(X_dev, Y_dev)
                )

                # Evaluate performance
                score = end_model.score(data=(X_test, Y_test), metric="accuracy")
            finally:
                os.chdir(cwd)
        label_score = label_model.score((L[2500:], Y_test), verbose=False)
        self.assertGreater(score, 0.9)
        self.assertGreater(score, label_score)

    def test_end_model_is_the_same_class(self):
        from metal.end_model import EndModel
        from metal.label_model import EndModel as ReexportedEndModel

        self.assertIs(ReexportedEndModel, EndModel)


class ReadmeLearnedDependenciesTest(unittest.TestCase):
    def test_learned_dependencies_usage(self):
        from metal.label_model import LabelModel, learn_dependencies
        from metal.synthetic.generate import copying_sources

        L_train, _ = copying_sources(20000, 10, 2, [(0, 1, 0.8)], seed=0)
        label_model = LabelModel(k=2, verbose=False)
        deps = learn_dependencies(L_train, k=2)  # sorted (i, j) pairs, i < j
        label_model.train_model(L_train, deps=deps)
        self.assertEqual(deps, [(0, 1)])
        self.assertEqual(label_model.deps, [(0, 1)])


if __name__ == "__main__":
    unittest.main()
