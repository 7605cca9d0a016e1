import importlib.util
import os
import subprocess
import sys
import unittest
import warnings

import numpy as np
import pandas as pd
import scipy.sparse as sparse
import torch

from metal.label_model import (
    LabelModel,
    dependency_strengths,
    dependency_threshold,
    learn_dependencies,
)
from metal.synthetic.generate import copying_sources

PLANTED = [(0, 1, 0.8), (2, 3, 0.5), (4, 5, 0.5)]  # strong and moderate copying


def f1_score(found, true):
    found, true = set(found), set(true)
    if not found and not true:
        return 1.0
    return 2 * len(found & true) / (len(found) + len(true))


def accuracy(L, Y, k, deps):
    model = LabelModel(k=k, verbose=False, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.train_model(L, deps=deps)
    return model.score((L, Y), verbose=False)


class LearnDependenciesQualityTest(unittest.TestCase):
    """Recovery of planted dependencies (sources copying others' votes,
    errors included, some of the time) at m=14 sources."""

    def test_planted_pairs_are_recovered(self):
        for k in (2, 3):
            for seed in (1, 2):
                with self.subTest(k=k, seed=seed):
                    L, Y = copying_sources(20000, 14, k, PLANTED, seed=seed)
                    true = [(a, b) for a, b, _ in PLANTED]
                    found = learn_dependencies(L, k)
                    self.assertGreaterEqual(f1_score(found, true), 0.8, found)
                    learned = accuracy(L, Y, k, found)
                    self.assertGreaterEqual(learned, accuracy(L, Y, k, true) - 0.005)
                    self.assertGreaterEqual(learned, accuracy(L, Y, k, []))

    def test_other_planted_pairs(self):
        copies = [(0, 7, 0.8), (5, 9, 0.4), (11, 12, 0.6)]
        L, _ = copying_sources(20000, 14, 2, copies, seed=3)
        found = learn_dependencies(L, 2)
        self.assertGreaterEqual(f1_score(found, [(0, 7), (5, 9), (11, 12)]), 0.8)

    def test_independent_sources_give_at_most_one_false_pair(self):
        for k in (2, 3):
            for seed in (4, 5, 6):
                with self.subTest(k=k, seed=seed):
                    L, _ = copying_sources(20000, 14, k, [], seed=seed)
                    self.assertLessEqual(len(learn_dependencies(L, k)), 1)

    def test_small_data_gives_no_false_pairs(self):
        L, _ = copying_sources(2000, 14, 3, [], seed=7)
        self.assertLessEqual(len(learn_dependencies(L, 3)), 1)

    def test_exact_copy_is_the_strongest_pair(self):
        L, _ = copying_sources(5000, 8, 2, [(2, 6, 1.0)], seed=8)
        L[:, 6] = L[:, 2]
        strengths = dependency_strengths(L, 2)
        self.assertGreater(strengths[2, 6], 0.9)
        self.assertEqual(learn_dependencies(L, 2), [(2, 6)])
        # and the label model with it counts the copy once
        model = LabelModel(k=2, verbose=False, seed=0)
        model.train_model(L, deps=learn_dependencies(L, 2))
        self.assertEqual(model._folds, {6: 2})


class DependencyStrengthsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.L, cls.Y = copying_sources(6000, 8, 3, [(0, 1, 0.7)], seed=11)

    def test_shape_and_range(self):
        strengths = dependency_strengths(self.L, 3)
        self.assertEqual(strengths.shape, (8, 8))
        np.testing.assert_array_equal(strengths, strengths.T)
        np.testing.assert_array_equal(np.diag(strengths), 0)
        self.assertTrue(np.all((strengths >= 0) & (strengths <= 1)))
        i, j = np.unravel_index(np.argmax(strengths), strengths.shape)
        self.assertEqual({int(i), int(j)}, {0, 1})

    def test_every_input_form_gives_the_same_strengths(self):
        expected = dependency_strengths(self.L, 3)
        forms = {
            "int8": self.L.astype(np.int8),
            "csr": sparse.csr_matrix(self.L),
            "pandas": pd.DataFrame(self.L),
            "tensor": torch.from_numpy(self.L),
        }
        for name, L in forms.items():
            with self.subTest(name):
                np.testing.assert_allclose(dependency_strengths(L, 3), expected)

    @unittest.skipUnless(
        __import__("importlib").util.find_spec("dask") is not None, "dask missing"
    )
    def test_dask_array_gives_the_same_pairs(self):
        import dask
        import dask.array as da

        L = da.from_array(self.L, chunks=(1500, 8))
        with dask.config.set(scheduler="synchronous"):
            np.testing.assert_allclose(
                dependency_strengths(L, 3), dependency_strengths(self.L, 3)
            )

    def test_silent_and_constant_sources(self):
        L = self.L.copy()
        L[:, 3] = 0  # never votes
        strengths = dependency_strengths(L, 3)
        np.testing.assert_array_equal(strengths[3], 0)
        np.testing.assert_array_equal(strengths[:, 3], 0)
        L[:, 4] = 2  # always votes 2: no variance
        strengths = dependency_strengths(L, 3)
        np.testing.assert_array_equal(strengths[4], 0)
        self.assertEqual(dependency_strengths(np.zeros((10, 3), int), 2).sum(), 0)
        self.assertEqual(learn_dependencies(np.zeros((10, 1), int), 2), [])

    def test_sparsity_moves_strength_out_of_the_sparse_part(self):
        weak = dependency_strengths(self.L, 3, sparsity=0.2)
        strong = dependency_strengths(self.L, 3, sparsity=0.01)
        iu = np.triu_indices(8, 1)
        self.assertLess(np.median(weak[iu]), np.median(strong[iu]))


class DependencyThresholdTest(unittest.TestCase):
    def test_rule(self):
        rng = np.random.default_rng(0)
        strengths = np.zeros((10, 10))
        iu = np.triu_indices(10, 1)
        strengths[iu] = rng.uniform(0.0, 0.02, len(iu[0]))
        strengths += strengths.T
        values = strengths[iu]
        median = np.median(values)
        spread = 1.4826 * np.median(np.abs(values - median))
        self.assertAlmostEqual(
            dependency_threshold(strengths, min_strength=0.0), median + 8 * spread
        )
        self.assertEqual(dependency_threshold(strengths), 0.1)  # the floor
        self.assertAlmostEqual(
            dependency_threshold(strengths, min_strength=0, spread=2),
            median + 2 * spread,
        )

    def test_few_pairs_use_the_floor(self):
        strengths = np.array([[0, 0.5, 0], [0.5, 0, 0.05], [0, 0.05, 0]])
        self.assertEqual(dependency_threshold(strengths, min_strength=0.2), 0.2)

    def test_learned_pairs_are_sorted_and_ordered(self):
        L, _ = copying_sources(8000, 12, 2, [(9, 3, 0.8), (5, 1, 0.8)], seed=2)
        found = learn_dependencies(L, 2)
        self.assertEqual(found, sorted(found))
        self.assertTrue(all(i < j for i, j in found))
        self.assertEqual(found, [(1, 5), (3, 9)])


class LearnDependenciesBadInputTest(unittest.TestCase):
    def test_bad_arguments(self):
        L, _ = copying_sources(200, 4, 2, seed=0)
        cases = [
            (dict(k=1), "k"),
            (dict(k=2, sparsity=-1), "sparsity"),
            (dict(k=2, sparsity="a"), "sparsity"),
            (dict(k=2, min_strength=float("nan")), "min_strength"),
            (dict(k=2, spread=-2), "spread"),
            (dict(k=2, max_iter=0), "max_iter"),
            (dict(k=2, tol=True), "tol"),
        ]
        for kwargs, name in cases:
            with self.subTest(kwargs=kwargs):
                with self.assertRaisesRegex(ValueError, name):
                    learn_dependencies(L, **kwargs)
        with self.assertRaisesRegex(ValueError, "^L must"):
            learn_dependencies(L + 5, 2)
        with self.assertRaisesRegex(ValueError, "^L must"):
            learn_dependencies(np.full((3, 3), np.nan), 2)
        with self.assertRaisesRegex(ValueError, "strengths must be a square"):
            dependency_threshold(np.zeros((2, 3)))


def _youtube_votes():
    """``(L_train, L_test, Y_test)`` of the Basics tutorial's LFs."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.path.join(root, "tutorials", "youtube_spam.py")
    spec = importlib.util.spec_from_file_location("youtube_spam_tutorial", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    train, test = module.load_spam_data()
    L_train = module.apply_lfs(train["text"])
    L_test = module.apply_lfs(test["text"])
    return L_train, L_test, test["label"].to_numpy()


class DependencyAwareFitTest(unittest.TestCase):
    """Declaring true dependencies never makes the label model worse."""

    STRUCTURES = {
        "chain": [(0, 1, 0.7), (1, 2, 0.7)],
        "triangle": [(0, 1, 0.7), (0, 2, 0.7), (1, 2, 0.5)],
        "4-clique": [
            (0, 1, 0.7),
            (0, 2, 0.7),
            (0, 3, 0.7),
            (1, 2, 0.3),
            (1, 3, 0.3),
            (2, 3, 0.3),
        ],
    }

    def test_true_dependencies_do_not_hurt(self):
        for k in (2, 3):
            for name, copies in self.STRUCTURES.items():
                with self.subTest(k=k, structure=name):
                    L, Y = copying_sources(10000, 10, k, copies, seed=1)
                    deps = sorted({(a, b) for a, b, _ in copies})
                    self.assertGreaterEqual(
                        accuracy(L, Y, k, deps), accuracy(L, Y, k, [])
                    )

    def test_learned_dependencies_on_youtube_spam(self):
        L_train, L_test, Y_test = _youtube_votes()

        def test_accuracy(deps):
            model = LabelModel(k=2, verbose=False, seed=123)
            model.train_model(L_train, deps=deps)
            return model.score((L_test, Y_test), verbose=False)

        learned = learn_dependencies(L_train, 2)
        self.assertGreaterEqual(test_accuracy(learned), test_accuracy([]))


class ImportTest(unittest.TestCase):
    def test_no_dask_at_import(self):
        code = "import sys, metal.label_model; " "print('dask' in sys.modules)"
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env=dict(os.environ),
            check=True,
        )
        self.assertEqual(out.stdout.strip(), "False")


if __name__ == "__main__":
    unittest.main()
