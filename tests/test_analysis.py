import contextlib
import io
import unittest
import warnings

import numpy as np
import pandas as pd
import scipy.sparse as sparse
import torch

from metal.analysis import (
    ConfusionMatrix,
    _conflicted_data_points,
    _covered_data_points,
    _overlapped_data_points,
    confusion_matrix,
    error_buckets,
    label_conflict,
    label_coverage,
    label_overlap,
    lf_conflicts,
    lf_coverages,
    lf_empirical_accuracies,
    lf_overlaps,
    lf_polarities,
    lf_summary,
    single_lf_summary,
)

L_DENSE = np.array([[1, 0, 1], [1, 3, 2], [0, 0, 0], [0, 0, 2], [0, 1, 2]])
Y_GOLD = np.array([1, 2, 1, 2, 2])


def _formats_of(L_dense):
    """The same label matrix in every accepted input type."""
    return {
        "csr": sparse.csr_matrix(L_dense),
        "csc": sparse.csc_matrix(L_dense),
        "coo": sparse.coo_matrix(L_dense),
        "csr_array": sparse.csr_array(L_dense),
        "dense_int": np.array(L_dense),
        "dense_int8": np.array(L_dense, dtype=np.int8),
        "dense_float": np.array(L_dense, dtype=np.float64),
        "tensor_long": torch.tensor(L_dense),
        "tensor_float": torch.tensor(L_dense, dtype=torch.float32),
    }


def _csr_with_explicit_zeros(L_dense):
    """A CSR matrix of ``L_dense`` that also stores zeros explicitly."""
    L_dense = np.asarray(L_dense)
    n, m = L_dense.shape
    rows, cols = np.repeat(np.arange(n), m), np.tile(np.arange(m), n)
    return sparse.csr_matrix((L_dense.reshape(-1), (rows, cols)), shape=(n, m))


def _capture_stdout(func, *args, **kwargs):
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        result = func(*args, **kwargs)
    return result, buffer.getvalue()


class OriginalAnalysisValuesTest(unittest.TestCase):
    """The exact equalities the original MeTaL tests check (CSR input)."""

    def setUp(self):
        self.L = sparse.csr_matrix(L_DENSE)
        self.Y = Y_GOLD

    def test_label_coverage(self):
        self.assertEqual(label_coverage(self.L), 0.8)

    def test_label_overlap(self):
        self.assertEqual(label_overlap(self.L), 0.6)

    def test_label_conflict(self):
        self.assertEqual(label_conflict(self.L), 0.4)

    def test_lf_accuracies(self):
        self.assertTrue(
            (lf_empirical_accuracies(self.L, self.Y) == np.array([0.5, 0, 1])).all()
        )

    def test_lf_coverages(self):
        self.assertTrue((lf_coverages(self.L) == np.array([0.4, 0.4, 0.8])).all())

    def test_lf_overlaps(self):
        self.assertTrue((lf_overlaps(self.L) == np.array([0.4, 0.4, 0.6])).all())

    def test_lf_conflicts(self):
        self.assertTrue((lf_conflicts(self.L) == np.array([0.2, 0.4, 0.4])).all())

    def test_error_buckets(self):
        buckets = error_buckets(gold=[1, 1, 2, 1, 2], pred=[1, 2, 1, 1, 2])
        self.assertEqual(buckets[1, 1], [0, 3])
        self.assertEqual(buckets[1, 2], [2])
        self.assertEqual(buckets[2, 2], [4])
        self.assertEqual(buckets[2, 1], [1])


class LabelMatrixStatsTest(unittest.TestCase):
    def setUp(self):
        self.L = sparse.csr_matrix(L_DENSE)

    def test_per_item_indicators(self):
        np.testing.assert_array_equal(_covered_data_points(self.L), [1, 1, 0, 1, 1])
        np.testing.assert_array_equal(_overlapped_data_points(self.L), [1, 1, 0, 0, 1])
        np.testing.assert_array_equal(_conflicted_data_points(self.L), [0, 1, 0, 0, 1])

    def test_polarities(self):
        self.assertEqual(lf_polarities(self.L), [1, [1, 3], [1, 2]])
        self.assertEqual(lf_polarities(np.array([[0, 2], [0, 2]])), [[], 2])
        for value in lf_polarities(self.L)[1]:
            self.assertIsInstance(value, int)

    def test_polarities_exclude_explicit_zeros(self):
        L = _csr_with_explicit_zeros(L_DENSE)
        self.assertEqual(L.nnz, L_DENSE.size)
        self.assertEqual(lf_polarities(L), [1, [1, 3], [1, 2]])
        self.assertEqual(lf_coverages(L).tolist(), [0.4, 0.4, 0.8])
        self.assertEqual(label_overlap(L), 0.6)

    def test_normalized_overlaps(self):
        # source 2 labels items 0, 1, 3, 4; item 3 has no other vote
        np.testing.assert_array_equal(
            lf_overlaps(self.L, normalize_by_coverage=True), [1.0, 1.0, 3 / 4]
        )

    def test_normalized_conflicts(self):
        # conflicted/overlapping items: source 0 1/2, source 1 2/2, source 2 2/3
        np.testing.assert_array_equal(
            lf_conflicts(self.L, normalize_by_overlaps=True), [0.5, 1.0, 2 / 3]
        )

    def test_zero_denominators_give_zero(self):
        L = np.array([[1, 0, 0], [0, 2, 0], [0, 2, 0]])
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            np.testing.assert_array_equal(
                lf_overlaps(L, normalize_by_coverage=True), [0.0, 0.0, 0.0]
            )
            np.testing.assert_array_equal(
                lf_conflicts(L, normalize_by_overlaps=True), [0.0, 0.0, 0.0]
            )
        self.assertEqual(label_conflict(L), 0.0)

    def test_empirical_accuracy_of_silent_source_is_nan_without_warning(self):
        L = np.array([[1, 0], [2, 0], [2, 0]])
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            accs = lf_empirical_accuracies(L, [1, 1, 2])
        self.assertEqual(accs[0], 2 / 3)
        self.assertTrue(np.isnan(accs[1]))

    def test_empirical_accuracy_counts_votes_on_unlabelled_items_as_wrong(self):
        accs = lf_empirical_accuracies(L_DENSE, [0, 2, 1, 2, 2])
        np.testing.assert_array_equal(accs, [0.0, 0.0, 0.75])

    def test_return_types(self):
        self.assertIsInstance(label_coverage(self.L), float)
        for func in (lf_coverages, lf_overlaps, lf_conflicts):
            result = func(self.L)
            self.assertIsInstance(result, np.ndarray)
            self.assertEqual(result.dtype, np.float64)
            self.assertEqual(result.shape, (3,))


class InputFormatsTest(unittest.TestCase):
    """Sparse (any format), dense and tensor L give identical results."""

    def _assert_all_formats_equal(self, L_dense, Y):
        reference = None
        formats = _formats_of(L_dense)
        formats["explicit_zeros"] = _csr_with_explicit_zeros(L_dense)
        for name, L in formats.items():
            result = {
                "coverage": label_coverage(L),
                "overlap": label_overlap(L),
                "conflict": label_conflict(L),
                "polarities": lf_polarities(L),
                "lf_coverages": lf_coverages(L).tolist(),
                "lf_overlaps": lf_overlaps(L).tolist(),
                "lf_overlaps_norm": lf_overlaps(L, True).tolist(),
                "lf_conflicts": lf_conflicts(L).tolist(),
                "lf_conflicts_norm": lf_conflicts(L, True).tolist(),
                "accs": lf_empirical_accuracies(L, Y).tolist(),
                "covered": _covered_data_points(L).tolist(),
                "overlapped": _overlapped_data_points(L).tolist(),
                "conflicted": _conflicted_data_points(L).tolist(),
            }
            summary = lf_summary(L, Y=Y, lf_names=[f"lf{j}" for j in range(3)])
            if reference is None:
                reference, reference_summary = result, summary
                continue
            self.assertEqual(result, reference, msg=name)
            pd.testing.assert_frame_equal(summary, reference_summary, obj=name)

    def test_fixture(self):
        self._assert_all_formats_equal(L_DENSE, Y_GOLD)

    def test_random_matrix_against_dense_reference(self):
        rng = np.random.RandomState(0)
        n, m, k = 3000, 3, 3
        L = rng.randint(0, k + 1, size=(n, m)) * (rng.rand(n, m) < 0.5)
        Y = rng.randint(0, k + 1, size=n)
        self._assert_all_formats_equal(L, Y)

        votes = L != 0
        n_votes = votes.sum(axis=1)
        row_max = L.max(axis=1)
        row_min = np.where(votes, L, k + 1).min(axis=1)
        conflicted = (n_votes > 0) & (row_max != row_min)
        self.assertEqual(label_coverage(L), np.count_nonzero(n_votes) / n)
        self.assertEqual(label_overlap(L), np.count_nonzero(n_votes > 1) / n)
        self.assertEqual(label_conflict(L), np.count_nonzero(conflicted) / n)
        np.testing.assert_array_equal(lf_coverages(L), votes.sum(axis=0) / n)
        np.testing.assert_array_equal(
            lf_overlaps(L), (votes & (n_votes > 1)[:, None]).sum(axis=0) / n
        )
        np.testing.assert_array_equal(
            lf_conflicts(L), (votes & conflicted[:, None]).sum(axis=0) / n
        )
        correct = (votes & (L == Y[:, None])).sum(axis=0)
        np.testing.assert_array_equal(
            lf_empirical_accuracies(L, Y), correct / votes.sum(axis=0)
        )
        expected_polarities = [sorted(set(L[:, j][L[:, j] != 0])) for j in range(m)]
        self.assertEqual(lf_polarities(L), expected_polarities)


class LfSummaryTest(unittest.TestCase):
    def setUp(self):
        self.L = sparse.csr_matrix(L_DENSE)

    def test_without_labels(self):
        df = lf_summary(self.L)
        self.assertIsInstance(df, pd.DataFrame)
        self.assertEqual(
            list(df.columns), ["Polarity", "Coverage", "Overlaps", "Conflicts"]
        )
        self.assertEqual(list(df.index), [0, 1, 2])
        self.assertEqual(list(df["Polarity"]), [1, [1, 3], [1, 2]])
        self.assertEqual(df["Coverage"].tolist(), [0.4, 0.4, 0.8])
        self.assertEqual(df["Overlaps"].tolist(), [0.4, 0.4, 0.6])
        self.assertEqual(df["Conflicts"].tolist(), [0.2, 0.4, 0.4])

    def test_with_labels(self):
        df = lf_summary(self.L, Y=Y_GOLD)
        self.assertEqual(
            list(df.columns),
            [
                "Polarity",
                "Coverage",
                "Overlaps",
                "Conflicts",
                "Correct",
                "Incorrect",
                "Emp. Acc.",
            ],
        )
        self.assertEqual(df["Correct"].tolist(), [1, 0, 4])
        self.assertEqual(df["Incorrect"].tolist(), [1, 2, 0])
        self.assertEqual(df["Emp. Acc."].tolist(), [0.5, 0.0, 1.0])

    def test_unlabelled_items_are_left_out_of_correct_and_incorrect(self):
        df = lf_summary(self.L, Y=[0, 2, 1, 2, 2])
        self.assertEqual(df["Correct"].tolist(), [0, 0, 3])
        self.assertEqual(df["Incorrect"].tolist(), [1, 2, 0])
        self.assertEqual(df["Emp. Acc."].tolist(), [0.0, 0.0, 0.75])

    def test_with_names_and_learned_accuracies(self):
        names = ["first", "second", "third"]
        df = lf_summary(self.L, Y=Y_GOLD, lf_names=names, est_accs=[0.9, 0.6, 0.8])
        self.assertEqual(
            list(df.columns),
            [
                "j",
                "Polarity",
                "Coverage",
                "Overlaps",
                "Conflicts",
                "Correct",
                "Incorrect",
                "Emp. Acc.",
                "Learned Acc.",
            ],
        )
        self.assertEqual(list(df.index), names)
        self.assertEqual(df["j"].tolist(), [0, 1, 2])
        self.assertEqual(df["Learned Acc."].tolist(), [0.9, 0.6, 0.8])
        self.assertEqual(df.loc["second", "Incorrect"], 2)

    def test_learned_accuracies_without_labels(self):
        df = lf_summary(self.L, est_accs=np.array([0.9, 0.6, 0.8]))
        self.assertEqual(
            list(df.columns),
            ["Polarity", "Coverage", "Overlaps", "Conflicts", "Learned Acc."],
        )
        self.assertEqual(df["Learned Acc."].tolist(), [0.9, 0.6, 0.8])

    def test_single_lf_summary(self):
        df = single_lf_summary([1, 2, 0, 1, 1], Y=Y_GOLD)
        self.assertEqual(list(df.index), [0])
        self.assertEqual(list(df["Polarity"]), [[1, 2]])
        self.assertEqual(df["Coverage"].tolist(), [0.8])
        self.assertEqual(df["Overlaps"].tolist(), [0.0])
        self.assertEqual(df["Conflicts"].tolist(), [0.0])
        self.assertEqual(df["Correct"].tolist(), [2])
        self.assertEqual(df["Incorrect"].tolist(), [2])
        self.assertEqual(df["Emp. Acc."].tolist(), [0.5])
        no_labels = single_lf_summary(torch.tensor([1, 1, 0]))
        self.assertEqual(
            list(no_labels.columns), ["Polarity", "Coverage", "Overlaps", "Conflicts"]
        )
        self.assertEqual(no_labels["Polarity"].tolist(), [1])

    def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, "lf_names"):
            lf_summary(self.L, lf_names=["a", "b"])
        with self.assertRaisesRegex(ValueError, "est_accs"):
            lf_summary(self.L, est_accs=[0.5])
        with self.assertRaisesRegex(ValueError, "Y"):
            lf_summary(self.L, Y=[1, 2])


class ErrorBucketsTest(unittest.TestCase):
    def test_keys_are_int_tuples(self):
        buckets = error_buckets(np.array([1, 2]), torch.tensor([2.0, 2.0]))
        self.assertEqual(dict(buckets), {(2, 1): [0], (2, 2): [1]})
        for key in buckets:
            self.assertIsInstance(key, tuple)
            for value in key:
                self.assertIs(type(value), int)
        self.assertEqual(buckets[(1, 2)], [])  # still a defaultdict(list)

    def test_with_items(self):
        X = ["a", "b", "c", "d", "e"]
        buckets = error_buckets([1, 1, 2, 1, 2], [1, 2, 1, 1, 2], X=X)
        self.assertEqual(buckets[(1, 1)], ["a", "d"])
        self.assertEqual(buckets[(2, 1)], ["b"])
        self.assertEqual(buckets[(1, 2)], ["c"])
        self.assertEqual(buckets[(2, 2)], ["e"])

    def test_abstains_and_empty(self):
        buckets = error_buckets([1, 2, 1], [0, 0, 1])
        self.assertEqual(dict(buckets), {(0, 1): [0], (0, 2): [1], (1, 1): [2]})
        self.assertEqual(dict(error_buckets([], [])), {})

    def test_bad_inputs(self):
        with self.assertRaisesRegex(ValueError, "same length"):
            error_buckets([1, 2], [1])
        with self.assertRaisesRegex(ValueError, "X"):
            error_buckets([1, 2], [1, 2], X=["a"])


class ConfusionMatrixTest(unittest.TestCase):
    # (pred, gold) counts: (1,1) 2, (2,1) 1, (1,2) 1, (2,2) 1, (1,0) 1, (0,2) 1
    GOLD = [1, 1, 2, 1, 2, 0, 2]
    PRED = [1, 2, 1, 1, 2, 1, 0]

    def test_contents(self):
        mat = confusion_matrix(self.GOLD, self.PRED, pretty_print=False)
        np.testing.assert_array_equal(mat, [[2, 1], [1, 1]])
        self.assertTrue(np.issubdtype(mat.dtype, np.integer))

    def test_null_rows_and_columns(self):
        kwargs = dict(pretty_print=False)
        np.testing.assert_array_equal(
            confusion_matrix(self.GOLD, self.PRED, null_pred=True, **kwargs),
            [[0, 1], [2, 1], [1, 1]],
        )
        np.testing.assert_array_equal(
            confusion_matrix(self.GOLD, self.PRED, null_gold=True, **kwargs),
            [[1, 2, 1], [0, 1, 1]],
        )
        np.testing.assert_array_equal(
            confusion_matrix(
                self.GOLD, self.PRED, null_pred=True, null_gold=True, **kwargs
            ),
            [[0, 0, 1], [1, 2, 1], [0, 1, 1]],
        )

    def test_normalized_by_all_items(self):
        mat = confusion_matrix(self.GOLD, self.PRED, normalize=True, pretty_print=False)
        np.testing.assert_array_equal(mat, np.array([[2, 1], [1, 1]]) / 7)

    def test_class_accumulates_and_compiles(self):
        conf = ConfusionMatrix()
        conf.add(self.GOLD[:3], self.PRED[:3])
        conf.add(np.array(self.GOLD[3:]), torch.tensor(self.PRED[3:]))
        self.assertEqual(conf.counter[(1, 1)], 2)
        self.assertEqual(conf.counter[(0, 1)], 1)
        mat = conf.compile()
        np.testing.assert_array_equal(mat, [[2, 1], [1, 1]])
        self.assertIs(conf.mat, mat)
        self.assertEqual(repr(conf), str(mat))
        np.testing.assert_array_equal(
            conf.compile(trim=False), [[0, 0, 1], [1, 2, 1], [0, 1, 1]]
        )

    def test_display(self):
        conf = ConfusionMatrix()
        conf.add(self.GOLD, self.PRED)
        _, text = _capture_stdout(conf.display)
        lines = text.strip("\n").splitlines()
        self.assertEqual(len(lines), 3)
        self.assertEqual(lines[0].split(), ["y=1", "y=2"])
        self.assertEqual(lines[1].split(), ["l=1", "2", "1"])
        self.assertEqual(lines[2].split(), ["l=2", "1", "1"])
        # rows divided by their totals over gold labels 1..K-1: [2/3, 1/3], [1/2, 1/2]
        _, text = _capture_stdout(conf.display, normalize=True)
        lines = text.strip("\n").splitlines()
        self.assertEqual(lines[1].split(), ["l=1", "0.667*", "0.333"])
        self.assertEqual(lines[2].split(), ["l=2", "0.500", "0.500*"])
        _, text = _capture_stdout(conf.display, normalize=True, mark_diag=False)
        self.assertNotIn("*", text)
        _, text = _capture_stdout(conf.display, indent=4)
        self.assertTrue(all(line.startswith("    ") for line in text.splitlines()))

    def test_confusion_matrix_prints_only_when_asked(self):
        _, text = _capture_stdout(
            confusion_matrix, self.GOLD, self.PRED, pretty_print=False
        )
        self.assertEqual(text, "")
        mat, text = _capture_stdout(confusion_matrix, self.GOLD, self.PRED)
        self.assertIn("y=1", text)
        self.assertIn("l=2", text)
        np.testing.assert_array_equal(mat, [[2, 1], [1, 1]])

    def test_empty_compile_raises(self):
        with self.assertRaisesRegex(ValueError, "empty"):
            ConfusionMatrix().compile()
        with self.assertRaisesRegex(ValueError, "empty"):
            confusion_matrix([], [], pretty_print=False)

    def test_bad_inputs(self):
        with self.assertRaisesRegex(ValueError, "same length"):
            confusion_matrix([1, 2, 1], [1, 2], pretty_print=False)
        with self.assertRaisesRegex(ValueError, "pred"):
            confusion_matrix([1, 2], [1, -1], pretty_print=False)
        with self.assertRaisesRegex(ValueError, "gold"):
            ConfusionMatrix().add([[1, 2], [1, 2]], [1, 2])


class BadLabelMatrixTest(unittest.TestCase):
    def test_one_dimensional(self):
        with self.assertRaisesRegex(ValueError, "L"):
            label_coverage(np.array([1, 0, 2]))

    def test_negative_values(self):
        with self.assertRaisesRegex(ValueError, "L"):
            lf_coverages(sparse.csr_matrix(np.array([[1, -1], [0, 2]])))

    def test_fractional_values(self):
        with self.assertRaisesRegex(ValueError, "0.5"):
            lf_polarities(np.array([[1.0, 0.5], [0.0, 2.0]]))

    def test_gold_of_wrong_length(self):
        with self.assertRaisesRegex(ValueError, "Y"):
            lf_empirical_accuracies(L_DENSE, [1, 2, 1])

    def test_gold_not_integral(self):
        with self.assertRaisesRegex(ValueError, "Y"):
            lf_empirical_accuracies(L_DENSE, [1, 2, 1, 2, 1.5])


if __name__ == "__main__":
    unittest.main()
