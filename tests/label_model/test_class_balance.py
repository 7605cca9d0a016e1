import unittest

import numpy as np
import torch

from metal.label_model.class_balance import ClassBalanceModel


def random_problem(k, m, abstains):
    p_Y = np.random.random(k)
    p_Y /= p_Y.sum()
    k_lf = k + 1 if abstains else k
    C = np.random.random((m, k_lf, k))
    start = 1 if abstains else 0
    C[:, start:, :] += (k - 1) * np.eye(k)[None, :, :]
    C /= C.sum(axis=1, keepdims=True)
    return p_Y, C


def exact_overlaps(model, C, p_Y):
    O = torch.from_numpy(np.einsum("iay,jby,lcy,y->ijlabc", C, C, C, p_Y)).float()
    O[~model.get_mask(C.shape[0])] = 0
    return O


def sample_L(C, p_Y, n, abstains):
    m, k_lf, k = C.shape
    Y = np.random.choice(k, n, p=p_Y)
    L = np.zeros((n, m), dtype=int)
    offset = 0 if abstains else 1
    for i in range(m):
        for y in range(k):
            rows = np.flatnonzero(Y == y)
            L[rows, i] = np.random.choice(k_lf, len(rows), p=C[i, :, y]) + offset
    return L


class ClassBalanceModelTest(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(123)
        np.random.seed(123)

    def _check(self, model, p_Y, C, tol):
        self.assertLess(np.mean(np.abs(p_Y - model.class_balance)), tol)
        self.assertLess(np.mean(np.abs(C - model.cond_probs)), tol)

    def test_class_balance_estimation_2(self):
        p_Y, C = random_problem(2, 25, abstains=False)
        model = ClassBalanceModel(2, abstains=False)
        model.train_model(O=exact_overlaps(model, C, p_Y))
        self._check(model, p_Y, C, 1e-3)

    def test_class_balance_estimation_3(self):
        p_Y, C = random_problem(3, 25, abstains=False)
        model = ClassBalanceModel(3, abstains=False)
        model.train_model(O=exact_overlaps(model, C, p_Y))
        self._check(model, p_Y, C, 1e-3)

    def test_class_balance_estimation_2_abstains(self):
        p_Y, C = random_problem(2, 25, abstains=True)
        model = ClassBalanceModel(2, abstains=True)
        model.train_model(O=exact_overlaps(model, C, p_Y))
        self._check(model, p_Y, C, 1e-3)

    def test_class_balance_estimation_2_noisy(self):
        p_Y, C = random_problem(2, 25, abstains=True)
        L = sample_L(C, p_Y, 10000, abstains=True)
        model = ClassBalanceModel(2, abstains=True)
        model.train_model(L=L)
        self._check(model, p_Y, C, 1e-2)

    def test_overlaps_tensor_matches_direct_count(self):
        L = np.random.randint(0, 3, size=(200, 4))
        model = ClassBalanceModel(2, abstains=True)
        O = model._get_overlaps_tensor(L).numpy()
        self.assertEqual(O.shape, (4, 4, 4, 3, 3, 3))
        for i, j, l, a, b, c in [
            (0, 1, 2, 1, 2, 0),
            (3, 3, 1, 2, 2, 1),
            (2, 0, 2, 0, 1, 0),
        ]:
            expected = np.mean((L[:, i] == a) & (L[:, j] == b) & (L[:, l] == c))
            self.assertAlmostEqual(O[i, j, l, a, b, c], expected, places=6)
        no_abstain = ClassBalanceModel(2, abstains=False)._get_overlaps_tensor(L)
        self.assertEqual(tuple(no_abstain.shape), (4, 4, 4, 2, 2, 2))

    def test_mask(self):
        mask = ClassBalanceModel(2).get_mask(3)
        self.assertEqual(mask.dtype, torch.bool)
        self.assertEqual(tuple(mask.shape), (3, 3, 3, 3, 3, 3))
        self.assertTrue(mask[0, 1, 2].all())
        self.assertFalse(mask[0, 0, 2].any())
        self.assertFalse(mask[1, 2, 1].any())
        self.assertEqual(int(mask[:, :, :, 0, 0, 0].sum()), 6)

    def test_bad_input(self):
        model = ClassBalanceModel(2)
        with self.assertRaisesRegex(ValueError, "L or O"):
            model.train_model()
        with self.assertRaisesRegex(ValueError, "shape"):
            model.train_model(O=torch.zeros(3, 3, 3, 2, 2, 2))
        with self.assertRaisesRegex(ValueError, "at least 3"):
            model.train_model(L=np.ones((10, 2), dtype=int))
        with self.assertRaisesRegex(ValueError, "values"):
            model.train_model(L=np.full((10, 3), 5))


if __name__ == "__main__":
    unittest.main()
