import os
import tempfile
import unittest

import numpy as np
import scipy.sparse as sparse
import torch

from metal.label_model import MajorityClassVoter, MajorityLabelVoter, RandomVoter


class RandomVoterTest(unittest.TestCase):
    def test_rows_are_random_distributions(self):
        np.random.seed(0)
        probs = RandomVoter(k=3, verbose=False).predict_proba(np.zeros((50, 4)))
        self.assertEqual(probs.shape, (50, 3))
        np.testing.assert_allclose(probs.sum(axis=1), 1.0)
        self.assertGreater(np.std(probs), 0.05)


class MajorityClassVoterTest(unittest.TestCase):
    def test_predicts_the_majority_class(self):
        model = MajorityClassVoter(k=3, verbose=False)
        model.train_model([0.2, 0.5, 0.3])
        probs = model.predict_proba(np.zeros((4, 2)))
        np.testing.assert_array_equal(probs, np.tile([0, 1, 0], (4, 1)))
        np.testing.assert_array_equal(model.predict(np.zeros((4, 2))), [2, 2, 2, 2])

    def test_ties_split_the_mass(self):
        model = MajorityClassVoter(k=3, verbose=False)
        model.train_model([0.4, 0.2, 0.4])
        np.testing.assert_allclose(
            model.predict_proba(np.zeros((1, 2))), [[0.5, 0, 0.5]]
        )

    def test_errors(self):
        model = MajorityClassVoter(k=2, verbose=False)
        with self.assertRaisesRegex(ValueError, "train_model"):
            model.predict_proba(np.zeros((2, 2)))
        with self.assertRaisesRegex(ValueError, "balance"):
            model.train_model([0.5, 0.2])
        with self.assertRaisesRegex(ValueError, "balance"):
            model.train_model([1.0])

    def test_save_and_load(self):
        model = MajorityClassVoter(k=2, verbose=False)
        model.train_model([0.3, 0.7])
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "mcv.pth")
            model.save(path)
            loaded = MajorityClassVoter.load(path)
        np.testing.assert_array_equal(loaded.predict(np.zeros((2, 3))), [2, 2])


class MajorityLabelVoterTest(unittest.TestCase):
    L = np.array(
        [
            [1, 1, 2],  # clear majority for 1
            [2, 0, 2],  # majority for 2 (abstain ignored)
            [1, 2, 0],  # tie
            [0, 0, 0],  # all abstain
            [3, 3, 1],  # class 3
        ]
    )

    def test_vote_shares(self):
        probs = MajorityLabelVoter(k=3, verbose=False).predict_proba(self.L)
        expected = np.array(
            [
                [1, 0, 0],
                [0, 1, 0],
                [0.5, 0.5, 0],
                [1 / 3, 1 / 3, 1 / 3],
                [0, 0, 1],
            ]
        )
        np.testing.assert_allclose(probs, expected)

    def test_input_types(self):
        model = MajorityLabelVoter(k=3, verbose=False)
        expected = model.predict_proba(self.L)
        for form in (sparse.csr_matrix(self.L), torch.tensor(self.L), self.L.tolist()):
            np.testing.assert_allclose(model.predict_proba(form), expected)

    def test_tie_breaking_and_score(self):
        model = MajorityLabelVoter(k=3, verbose=False)
        np.testing.assert_array_equal(
            model.predict(self.L, break_ties="abstain"), [1, 2, 0, 0, 3]
        )
        gold = np.array([1, 2, 1, 3, 3])
        np.random.seed(0)
        draws = {tuple(model.predict(self.L)[[2, 3]]) for _ in range(30)}
        self.assertGreater(len(draws), 1)
        score = model.score((self.L, gold), break_ties=1, verbose=False)
        self.assertAlmostEqual(score, 4 / 5)

    def test_bad_input(self):
        with self.assertRaisesRegex(ValueError, "larger than k=2"):
            MajorityLabelVoter(k=2, verbose=False).predict_proba(np.array([[3, 1]]))


if __name__ == "__main__":
    unittest.main()
