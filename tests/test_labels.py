import dataclasses
import unittest

import numpy as np
import torch

from metal.labels import (
    ONE_BASED,
    TIE_POLICIES,
    TIE_TOLERANCE,
    ZERO_BASED,
    LabelConvention,
    break_ties,
)


class TestConventions(unittest.TestCase):
    def test_one_based(self):
        self.assertEqual(ONE_BASED.first_class, 1)
        self.assertEqual(ONE_BASED.no_label, 0)
        self.assertEqual(ONE_BASED.positive, 1)
        self.assertFalse(ONE_BASED.binary_metrics_only)
        self.assertFalse(ONE_BASED.drop_abstained_predictions)

    def test_zero_based(self):
        self.assertEqual(ZERO_BASED.first_class, 0)
        self.assertEqual(ZERO_BASED.no_label, -1)
        self.assertEqual(ZERO_BASED.positive, 1)
        self.assertTrue(ZERO_BASED.binary_metrics_only)
        self.assertTrue(ZERO_BASED.drop_abstained_predictions)

    def test_no_label_follows_first_class(self):
        convention = LabelConvention("classes 5..", 5, False, False)
        self.assertEqual(convention.no_label, 4)
        self.assertEqual(convention.positive, 1)

    def test_frozen_and_repr(self):
        with self.assertRaises(dataclasses.FrozenInstanceError):
            ONE_BASED.first_class = 0
        self.assertEqual(repr(ONE_BASED), f"LabelConvention({ONE_BASED.name})")
        self.assertIn("0 = abstain", ONE_BASED.name)
        self.assertIn("-1 = abstain", ZERO_BASED.name)
        self.assertNotEqual(ONE_BASED, ZERO_BASED)

    def test_constants(self):
        self.assertEqual(TIE_TOLERANCE, 1e-5)
        self.assertEqual(set(TIE_POLICIES), {"random", "hash", "first", "abstain"})


class TestBreakTiesWithoutTies(unittest.TestCase):
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3]])

    def test_argmax_plus_first_class(self):
        for policy in ["random", "hash", "first", "abstain", 7]:
            with self.subTest(policy=policy):
                out = break_ties(self.probs, policy)
                self.assertEqual(out.tolist(), [1, 3, 2])
                self.assertEqual(out.dtype, np.int64)
                out = break_ties(self.probs, policy, ZERO_BASED)
                self.assertEqual(out.tolist(), [0, 2, 1])
                self.assertEqual(out.dtype, np.int64)

    def test_untied_rows_do_not_use_the_global_rng(self):
        np.random.seed(5)
        expected = np.random.random()
        np.random.seed(5)
        break_ties(self.probs, "random")
        self.assertEqual(np.random.random(), expected)

    def test_input_types(self):
        for probs in [
            self.probs.tolist(),
            torch.tensor(self.probs),
            self.probs.astype(np.float32),
        ]:
            with self.subTest(type=type(probs).__name__):
                self.assertEqual(break_ties(probs).tolist(), [1, 3, 2])

    def test_default_is_random_one_based(self):
        probs = np.array([[0.5, 0.5, 0.0]] * 200)
        np.random.seed(0)
        out = break_ties(probs)
        self.assertEqual(set(out.tolist()), {1, 2})


class TestBreakTiesRandom(unittest.TestCase):
    def test_uniform_among_tied_classes(self):
        probs = np.tile([0.4, 0.1, 0.4, 0.1], (3000, 1))
        np.random.seed(0)
        out = break_ties(probs, "random")
        values, counts = np.unique(out, return_counts=True)
        self.assertEqual(values.tolist(), [1, 3])
        self.assertTrue(np.all(np.abs(counts / 3000 - 0.5) < 0.05), counts)

    def test_every_tied_class_appears_untied_never(self):
        # Rows with different tie sets in one call.
        probs = np.array(
            [[0.3, 0.3, 0.3, 0.1], [0.1, 0.45, 0.0, 0.45], [0.25, 0.25, 0.25, 0.25]]
        )
        probs = np.repeat(probs, 1000, axis=0)
        np.random.seed(1)
        out = break_ties(probs, "random", ZERO_BASED).reshape(3, 1000)
        expected_sets = [{0, 1, 2}, {1, 3}, {0, 1, 2, 3}]
        for row, expected in zip(out, expected_sets):
            values, counts = np.unique(row, return_counts=True)
            self.assertEqual(set(values.tolist()), expected)
            share = counts / 1000
            self.assertTrue(np.all(np.abs(share - 1 / len(expected)) < 0.07), counts)

    def test_reproducible_under_numpy_seed(self):
        probs = np.full((100, 3), 1 / 3)
        np.random.seed(42)
        first = break_ties(probs, "random")
        np.random.seed(42)
        second = break_ties(probs, "random")
        np.testing.assert_array_equal(first, second)
        third = break_ties(probs, "random")
        self.assertFalse(np.array_equal(first, third))

    def test_untied_rows_keep_their_class(self):
        probs = np.array([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8]] * 100)
        np.random.seed(3)
        out = break_ties(probs, "random").reshape(100, 3)
        self.assertTrue(np.all(out[:, 0] == 1))
        self.assertTrue(np.all(out[:, 2] == 2))
        self.assertEqual(set(out[:, 1].tolist()), {1, 2})


class TestBreakTiesHash(unittest.TestCase):
    def test_known_sequence(self):
        probs = np.full((10, 2), 0.5)
        out = break_ties(probs, "hash", ZERO_BASED)
        self.assertEqual(out.tolist(), [0, 1, 0, 1, 0, 0, 0, 0, 1, 1])
        self.assertEqual(out.dtype, np.int64)
        one_based = break_ties(probs, "hash", ONE_BASED)
        self.assertEqual(one_based.tolist(), (out + 1).tolist())

    def test_deterministic_and_ignores_the_global_rng(self):
        probs = np.full((50, 3), 1 / 3)
        np.random.seed(0)
        first = break_ties(probs, "hash")
        state = np.random.get_state()[1].copy()
        np.random.seed(99)
        second = break_ties(probs, "hash")
        np.testing.assert_array_equal(first, second)
        np.random.seed(0)
        break_ties(probs, "hash")
        np.testing.assert_array_equal(np.random.get_state()[1], state)
        self.assertEqual(set(first.tolist()), {1, 2, 3})

    def test_depends_on_row_index_and_tie_set_only(self):
        probs = np.full((10, 2), 0.5)
        probs[3] = [0.9, 0.1]
        out = break_ties(probs, "hash", ZERO_BASED)
        self.assertEqual(out.tolist(), [0, 1, 0, 0, 0, 0, 0, 0, 1, 1])

    def test_picks_only_tied_classes(self):
        probs = np.tile([0.0, 0.5, 0.0, 0.5], (40, 1))
        out = break_ties(probs, "hash", ZERO_BASED)
        self.assertEqual(set(out.tolist()), {1, 3})


class TestBreakTiesOtherPolicies(unittest.TestCase):
    def test_first_is_np_argmax(self):
        # Rows tied within the tolerance still go to the exact maximum.
        probs = np.array([[0.5, 0.5], [0.4999995, 0.5], [0.5, 0.4999995]])
        self.assertEqual(break_ties(probs, "first").tolist(), [1, 2, 1])
        self.assertEqual(break_ties(probs, "abstain").tolist(), [0, 0, 0])
        probs = np.array([[0.2, 0.4, 0.4], [0.3, 0.3000001, 0.3], [0.1, 0.1, 0.1]])
        self.assertEqual(
            break_ties(probs, "first", ZERO_BASED).tolist(),
            np.argmax(probs, axis=1).tolist(),
        )
        self.assertEqual(break_ties(probs, "first", ZERO_BASED).tolist(), [1, 1, 0])
        self.assertEqual(break_ties(probs, "first").dtype, np.int64)

    def test_first_ignores_tol(self):
        probs = np.array([[0.45, 0.55]])
        self.assertEqual(break_ties(probs, "first", tol=0.5).tolist(), [2])

    def test_abstain(self):
        probs = np.array([[0.5, 0.5], [0.8, 0.2], [0.3, 0.7]])
        self.assertEqual(break_ties(probs, "abstain").tolist(), [0, 1, 2])
        self.assertEqual(break_ties(probs, "abstain", ZERO_BASED).tolist(), [-1, 0, 1])

    def test_int_label(self):
        probs = np.array([[0.5, 0.5], [0.8, 0.2], [1 / 3, 2 / 3]])
        self.assertEqual(break_ties(probs, 9).tolist(), [9, 1, 2])
        self.assertEqual(break_ties(probs, -3, ZERO_BASED).tolist(), [-3, 0, 1])
        out = break_ties(probs, np.int32(2))
        self.assertEqual(out.tolist(), [2, 1, 2])
        self.assertEqual(out.dtype, np.int64)


class TestTieTolerance(unittest.TestCase):
    def test_within_default_tolerance_is_a_tie(self):
        probs = np.array([[0.5, 0.5 - 5e-6], [0.5 - 5e-6, 0.5]])
        self.assertEqual(break_ties(probs, "abstain").tolist(), [0, 0])

    def test_beyond_default_tolerance_is_not(self):
        probs = np.array([[0.5, 0.5 - 2e-5], [0.5 - 2e-5, 0.5]])
        self.assertEqual(break_ties(probs, "abstain").tolist(), [1, 2])

    def test_tol_argument(self):
        probs = np.array([[0.55, 0.45], [0.9, 0.1]])
        self.assertEqual(break_ties(probs, "abstain", tol=0.2).tolist(), [0, 1])
        self.assertEqual(break_ties(probs, "abstain", tol=0.0).tolist(), [1, 1])
        near = np.array([[0.5, 0.5 - 5e-6]])
        self.assertEqual(break_ties(near, "abstain", tol=1e-7).tolist(), [1])
        self.assertEqual(break_ties(near, "abstain", tol=0).tolist(), [1])

    def test_tie_set_is_relative_to_row_maximum(self):
        # Two columns close to each other tie only if they hold the maximum.
        probs = np.array([[0.3, 0.3 - 5e-6, 0.4], [0.45, 0.45 - 5e-6, 0.1]])
        self.assertEqual(break_ties(probs, "abstain").tolist(), [3, 0])


class TestBreakTiesEdgeCases(unittest.TestCase):
    def test_empty(self):
        for probs in [np.zeros((0, 3)), np.zeros((0, 0))]:
            with self.subTest(shape=probs.shape):
                for policy in ["random", "hash", "first", "abstain", 0]:
                    out = break_ties(probs, policy)
                    self.assertEqual(out.shape, (0,))
                    self.assertEqual(out.dtype, np.int64)

    def test_single_class(self):
        probs = np.ones((4, 1))
        self.assertEqual(break_ties(probs, "abstain").tolist(), [1, 1, 1, 1])
        self.assertEqual(break_ties(probs, "random", ZERO_BASED).tolist(), [0] * 4)

    def test_unknown_policy(self):
        probs = np.array([[0.7, 0.3]])
        for policy in ["randm", "", None, 1.0, True, [1], "FIRST"]:
            with self.subTest(policy=policy):
                with self.assertRaises(ValueError) as ctx:
                    break_ties(probs, policy)
                self.assertIn("break_ties", str(ctx.exception))

    def test_not_2d(self):
        for probs in [np.array([0.5, 0.5]), np.zeros((2, 2, 2)), np.float64(0.5), []]:
            with self.subTest(shape=np.shape(probs)):
                with self.assertRaisesRegex(ValueError, "2-D"):
                    break_ties(probs, "first")

    def test_dtype_int64_for_every_policy(self):
        probs = np.array([[0.5, 0.5], [0.1, 0.9]], dtype=np.float32)
        for policy in ["random", "hash", "first", "abstain", 5]:
            with self.subTest(policy=policy):
                self.assertEqual(break_ties(probs, policy).dtype, np.int64)


if __name__ == "__main__":
    unittest.main()
