import contextlib
import io
import unittest

import numpy as np

from metal.label_model.utils import (
    compute_covariance,
    compute_inv_covariance,
    compute_mu,
    print_matrix,
)


class LabelModelUtilsTest(unittest.TestCase):
    L_aug = np.array([[1, 0, 1], [0, 1, 1], [1, 1, 0], [0, 0, 1]], dtype=float)
    Y = np.array([1, 2, 1, 2])
    p = np.array([0.5, 0.5])

    def test_compute_mu(self):
        mu = compute_mu(self.L_aug, self.Y, 2, self.p)
        np.testing.assert_allclose(mu, [[1.0, 0.0], [0.5, 0.5], [0.5, 1.0]])

    def test_compute_covariance_and_inverse(self):
        mu = compute_mu(self.L_aug, self.Y, 2, self.p)
        expected = self.L_aug.T @ self.L_aug / 4 - mu @ np.diag(self.p) @ mu.T
        cov = compute_covariance(self.L_aug, self.Y, 2, self.p)
        np.testing.assert_allclose(cov, expected)
        rng = np.random.default_rng(0)
        L_aug = (rng.random((400, 4)) < 0.5).astype(float)
        Y = rng.integers(1, 3, 400)
        inv = compute_inv_covariance(L_aug, Y, 2, self.p)
        np.testing.assert_allclose(
            inv @ compute_covariance(L_aug, Y, 2, self.p), np.eye(4), atol=1e-8
        )

    def test_bad_input(self):
        with self.assertRaisesRegex(ValueError, "Y"):
            compute_mu(self.L_aug, [1, 2], 2, self.p)
        with self.assertRaisesRegex(ValueError, "Y"):
            compute_mu(self.L_aug, [1, 2, 3, 1], 2, self.p)
        with self.assertRaisesRegex(ValueError, "L_aug"):
            compute_mu(np.ones(4), self.Y, 2, self.p)

    def test_print_matrix(self):
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            print_matrix(np.array([[0.123, 1.0], [2.55, 3.0]]), decimals=1)
        self.assertEqual(buffer.getvalue().splitlines(), ["[0.1, 1.0]", "[2.5, 3.0]"])


if __name__ == "__main__":
    unittest.main()
