import unittest
import warnings

import numpy as np
import scipy.sparse as sparse
import torch

from metal.metrics import (
    METRICS,
    accuracy_score,
    coverage_score,
    f1_score,
    fbeta_score,
    metric_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

BINARY_PROBS = np.array([[0.9, 0.1], [0.6, 0.4], [0.65, 0.35], [0.2, 0.8]])

# Three classes, two items each. One-vs-rest AUCs by counting ranked pairs:
# class 1: 6/8, class 2: 7/8, class 3: 8/8; macro average 0.875.
MULTI_GOLD = [1, 1, 2, 2, 3, 3]
MULTI_PROBS = np.array(
    [
        [0.7, 0.2, 0.1],
        [0.3, 0.4, 0.3],
        [0.2, 0.6, 0.2],
        [0.5, 0.3, 0.2],
        [0.1, 0.2, 0.7],
        [0.4, 0.1, 0.5],
    ]
)


class OriginalMetricValuesTest(unittest.TestCase):
    """The hand-computed values the original MeTaL tests check."""

    def test_accuracy_basic(self):
        gold = [1, 1, 1, 2, 2]
        pred = [1, 1, 1, 2, 1]
        score = accuracy_score(gold, pred)
        self.assertAlmostEqual(score, 0.8)
        self.assertEqual(metric_score(gold, pred, metric="accuracy"), score)

    def test_bad_inputs(self):
        gold = [1, 1, 1, 2, 2]
        with self.assertRaises(ValueError):
            accuracy_score(gold, [1, 1, 1, 2, 0.5])
        with self.assertRaises(ValueError):
            accuracy_score(gold, "1 1 1 2 2")
        with self.assertRaises(ValueError):
            accuracy_score(gold, np.array([[1, 1, 1, 2, 2], [1, 1, 1, 2, 2]]))

    def test_array_conversion(self):
        gold = torch.Tensor([1, 1, 1, 2, 2])
        pred = np.array([1.0, 1.0, 1.0, 2.0, 1.0])
        self.assertAlmostEqual(accuracy_score(gold, pred), 0.8)

    def test_accuracy_ignores(self):
        gold = [1, 1, 1, 2, 2]
        pred = [1, 0, 1, 2, 1]
        self.assertAlmostEqual(accuracy_score(gold, pred), 0.6)
        self.assertAlmostEqual(accuracy_score(gold, pred, ignore_in_pred=[0]), 0.75)
        self.assertAlmostEqual(accuracy_score(gold, pred, ignore_in_gold=[1]), 0.5)
        self.assertAlmostEqual(
            accuracy_score(gold, pred, ignore_in_gold=[2], ignore_in_pred=[0]), 1.0
        )

    def test_coverage(self):
        gold = [1, 1, 1, 1, 2]
        pred = [0, 0, 1, 1, 1]
        self.assertAlmostEqual(coverage_score(gold, pred), 0.6)
        self.assertAlmostEqual(coverage_score(gold, pred, ignore_in_gold=[2]), 0.5)

    def test_precision(self):
        gold = [1, 1, 1, 2, 2]
        pred = [0, 0, 1, 1, 2]
        self.assertAlmostEqual(precision_score(gold, pred), 0.5)
        self.assertAlmostEqual(precision_score(gold, pred, pos_label=2), 1.0)

    def test_recall(self):
        gold = [1, 1, 1, 1, 2]
        pred = [0, 2, 1, 1, 2]
        self.assertAlmostEqual(recall_score(gold, pred), 0.5)
        self.assertAlmostEqual(recall_score(gold, pred, pos_label=2), 1.0)

    def test_f1(self):
        gold = [1, 1, 1, 1, 2]
        pred = [0, 2, 1, 1, 2]
        self.assertAlmostEqual(f1_score(gold, pred), 0.666, 2)
        self.assertAlmostEqual(f1_score(gold, pred, pos_label=2), 0.666, 2)

    def test_fbeta(self):
        gold = [1, 1, 1, 1, 2]
        pred = [0, 2, 1, 1, 2]
        pre = precision_score(gold, pred)
        rec = recall_score(gold, pred)
        self.assertEqual(fbeta_score(gold, pred, beta=0), pre)
        self.assertAlmostEqual(fbeta_score(gold, pred, beta=1000), rec, 4)

    def test_roc_auc(self):
        gold = [1, 1, 2, 2]
        self.assertEqual(roc_auc_score(gold, BINARY_PROBS), 0.75)


class MetricSemanticsTest(unittest.TestCase):
    def test_exact_hand_values(self):
        self.assertEqual(accuracy_score([1, 1, 1, 2, 2], [1, 1, 1, 2, 1]), 4 / 5)
        self.assertEqual(coverage_score([1, 1, 1, 1, 2], [0, 0, 1, 1, 1]), 3 / 5)
        self.assertEqual(precision_score([1, 1, 1, 2, 2], [0, 0, 1, 1, 2]), 1 / 2)
        self.assertEqual(recall_score([1, 1, 1, 1, 2], [0, 2, 1, 1, 2]), 1 / 2)
        # precision 1, recall 1/2 for class 1; precision 1/2, recall 1 for class 2
        self.assertAlmostEqual(f1_score([1, 1, 1, 1, 2], [0, 2, 1, 1, 2]), 2 / 3)
        self.assertAlmostEqual(
            f1_score([1, 1, 1, 1, 2], [0, 2, 1, 1, 2], pos_label=2), 2 / 3
        )

    def test_fbeta_beta_two(self):
        # class 1: P = 1, R = 1/2 -> F2 = 5 * 0.5 / (4 + 0.5) = 5/9
        score = fbeta_score([1, 1, 1, 1, 2], [0, 2, 1, 1, 2], beta=2.0)
        self.assertAlmostEqual(score, 5 / 9)

    def test_fbeta_beta_zero_is_precision_with_thirds(self):
        gold = [1, 1, 2, 2, 2, 1, 1]
        pred = [1, 2, 1, 0, 2, 0, 1]
        self.assertEqual(precision_score(gold, pred), 2 / 3)
        self.assertEqual(fbeta_score(gold, pred, beta=0), precision_score(gold, pred))
        self.assertEqual(
            fbeta_score(gold, pred, pos_label=2, beta=0.0),
            precision_score(gold, pred, pos_label=2),
        )
        self.assertEqual(precision_score(gold, pred, pos_label=2), 1 / 2)

    def test_abstain_is_wrong_and_negative(self):
        gold = [1, 1, 2, 2]
        pred = [0, 0, 0, 2]
        self.assertEqual(accuracy_score(gold, pred), 1 / 4)
        self.assertEqual(recall_score(gold, pred), 0.0)
        self.assertEqual(recall_score(gold, pred, pos_label=2), 1 / 2)
        self.assertEqual(precision_score(gold, pred, pos_label=2), 1.0)

    def test_undefined_scores_are_zero_without_warnings(self):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            # nothing predicted positive
            self.assertEqual(precision_score([1, 1, 2], [2, 2, 2]), 0.0)
            # no gold positives
            self.assertEqual(recall_score([2, 2, 2], [1, 2, 2]), 0.0)
            # precision and recall both 0
            self.assertEqual(f1_score([1, 2], [2, 1]), 0.0)
            self.assertEqual(fbeta_score([2, 2], [2, 2], beta=0.5), 0.0)
            # nothing left after dropping
            for scorer in (
                accuracy_score,
                coverage_score,
                precision_score,
                recall_score,
                f1_score,
                fbeta_score,
            ):
                self.assertEqual(scorer([1, 2], [1, 2], ignore_in_gold=[1, 2]), 0.0)
                self.assertEqual(scorer([], []), 0.0)

    def test_ignores_on_precision_recall_f1(self):
        gold = [1, 1, 1, 2, 2]
        pred = [0, 0, 1, 1, 2]
        # keep gold == 1: pred [0, 0, 1] -> one predicted positive, correct
        self.assertEqual(precision_score(gold, pred, ignore_in_gold=[2]), 1.0)
        self.assertEqual(recall_score(gold, pred, ignore_in_gold=[2]), 1 / 3)
        # drop abstains: gold [1, 2, 2], pred [1, 1, 2]
        self.assertEqual(recall_score(gold, pred, ignore_in_pred=[0]), 1.0)
        self.assertEqual(precision_score(gold, pred, ignore_in_pred=[0]), 1 / 2)
        self.assertAlmostEqual(f1_score(gold, pred, ignore_in_pred=[0]), 2 / 3)
        # both: gold [1], pred [1]
        kwargs = dict(ignore_in_gold=[2], ignore_in_pred=[0])
        self.assertEqual(f1_score(gold, pred, **kwargs), 1.0)
        self.assertEqual(fbeta_score(gold, pred, beta=2.0, **kwargs), 1.0)
        self.assertEqual(coverage_score(gold, pred, ignore_in_pred=[0]), 1.0)

    def test_ignores_on_fbeta(self):
        gold = [1, 1, 1, 1, 2]
        pred = [0, 2, 1, 1, 2]
        # drop abstains: P = 2/2, R = 2/3 -> F1 = 0.8
        self.assertAlmostEqual(f1_score(gold, pred, ignore_in_pred=[0]), 0.8)
        self.assertAlmostEqual(
            fbeta_score(gold, pred, beta=1.0, ignore_in_pred=[0]), 0.8
        )

    def test_ignore_lists_are_not_mutated(self):
        ignore_gold, ignore_pred = [2], [0]
        accuracy_score([1, 2], [0, 1], ignore_gold, ignore_pred)
        precision_score([1, 2], [0, 1], 1, ignore_gold, ignore_pred)
        self.assertEqual((ignore_gold, ignore_pred), ([2], [0]))
        for scorer in (accuracy_score, coverage_score, roc_auc_score):
            self.assertEqual(scorer.__defaults__, ([], []))
        for scorer in (precision_score, recall_score):
            self.assertEqual(scorer.__defaults__, (1, [], []))
        self.assertEqual(fbeta_score.__defaults__, (1, 1.0, [], []))

    def test_input_types(self):
        gold = [1, 1, 1, 2, 2]
        pred = [1, 1, 1, 2, 1]
        variants = [
            (np.array(gold), np.array(pred)),
            (torch.tensor(gold), torch.tensor(pred)),
            (torch.tensor(gold).float(), np.array(pred, dtype=np.float32)),
            (sparse.csr_matrix(np.array([gold]).T), sparse.csr_matrix([pred])),
            (np.array([gold]).T, np.array([pred])),
            (tuple(gold), tuple(pred)),
        ]
        for g, p in variants:
            self.assertEqual(accuracy_score(g, p), 0.8)
            self.assertEqual(recall_score(g, p, pos_label=2), 0.5)

    def test_return_types_are_floats(self):
        for name in ("accuracy", "coverage", "precision", "recall", "f1", "fbeta"):
            value = metric_score([1, 2, 2], [1, 2, 1], name)
            self.assertIsInstance(value, float)


class RocAucTest(unittest.TestCase):
    def test_binary_matches_first_column(self):
        # Class 1 alone: positives 0.9, 0.6 vs negatives 0.65, 0.2 -> 3/4
        self.assertEqual(roc_auc_score([1, 1, 2, 2], BINARY_PROBS), 0.75)
        self.assertEqual(roc_auc_score([1, 1, 2, 2], torch.tensor(BINARY_PROBS)), 0.75)

    def test_multiclass_macro_average(self):
        self.assertAlmostEqual(roc_auc_score(MULTI_GOLD, MULTI_PROBS), 0.875)

    def test_ignore_in_gold(self):
        gold = [1, 0, 1, 2, 2]
        probs = np.insert(BINARY_PROBS, 1, [0.0, 1.0], axis=0)
        self.assertEqual(roc_auc_score(gold, probs, ignore_in_gold=[0]), 0.75)
        self.assertEqual(
            metric_score(gold, None, "roc-auc", probs=probs, ignore_in_gold=[0]),
            0.75,
        )

    def test_ignore_in_pred_rejected(self):
        with self.assertRaisesRegex(ValueError, "ignore_in_pred"):
            roc_auc_score([1, 1, 2, 2], BINARY_PROBS, ignore_in_pred=[0])

    def test_bad_probs(self):
        with self.assertRaisesRegex(ValueError, "probs"):
            roc_auc_score([1, 1, 2, 2], BINARY_PROBS[:, 0])
        with self.assertRaisesRegex(ValueError, "probs"):
            roc_auc_score([1, 1, 2, 2], BINARY_PROBS[:, :1])
        with self.assertRaisesRegex(ValueError, "rows"):
            roc_auc_score([1, 1, 2, 2], BINARY_PROBS[:3])
        with self.assertRaisesRegex(ValueError, "probs"):
            roc_auc_score([1, 1, 2, 2], None)

    def test_gold_out_of_range(self):
        with self.assertRaisesRegex(ValueError, "ignore_in_gold"):
            roc_auc_score([1, 0, 2, 2], BINARY_PROBS)
        with self.assertRaisesRegex(ValueError, "gold"):
            roc_auc_score([1, 3, 2, 2], BINARY_PROBS)

    def test_single_class_gold_is_undefined(self):
        with self.assertRaisesRegex(ValueError, "undefined"):
            roc_auc_score([1, 1, 1, 1], BINARY_PROBS)
        with self.assertRaisesRegex(ValueError, "undefined"):
            roc_auc_score([1, 1, 2, 2, 1, 2], MULTI_PROBS)


class MetricScoreTest(unittest.TestCase):
    def test_registry(self):
        self.assertEqual(
            set(METRICS),
            {"accuracy", "coverage", "precision", "recall", "f1", "fbeta", "roc-auc"},
        )
        self.assertIs(METRICS["roc-auc"], roc_auc_score)

    def test_dispatch_and_kwargs(self):
        gold = [1, 1, 1, 1, 2]
        pred = [0, 2, 1, 1, 2]
        self.assertEqual(metric_score(gold, pred, "recall", pos_label=2), 1.0)
        self.assertEqual(metric_score(gold, pred, "precision", pos_label=2), 0.5)
        self.assertEqual(
            metric_score(gold, pred, "coverage", ignore_in_gold=[2]), 3 / 4
        )
        self.assertEqual(
            metric_score(gold, pred, "fbeta", beta=0.0), precision_score(gold, pred)
        )
        self.assertAlmostEqual(metric_score(gold, pred, "f1"), 2 / 3)

    def test_unknown_metric_lists_valid_names(self):
        with self.assertRaises(ValueError) as ctx:
            metric_score([1, 2], [1, 2], "acc")
        message = str(ctx.exception)
        self.assertIn("'acc'", message)
        for name in METRICS:
            self.assertIn(name, message)

    def test_roc_auc_needs_probs(self):
        with self.assertRaisesRegex(ValueError, "probs"):
            metric_score([1, 1, 2, 2], [1, 1, 2, 2], "roc-auc")


class BadInputTest(unittest.TestCase):
    def test_length_mismatch(self):
        with self.assertRaisesRegex(ValueError, "same length"):
            accuracy_score([1, 2, 1], [1, 2])
        with self.assertRaisesRegex(ValueError, "same length"):
            precision_score([1, 2], [1, 2, 2])

    def test_two_dimensional(self):
        with self.assertRaisesRegex(ValueError, "gold"):
            recall_score(np.ones((2, 3)), [1, 2, 1])

    def test_non_integral(self):
        with self.assertRaisesRegex(ValueError, "0.5"):
            coverage_score([1, 2, 0.5], [1, 2, 1])
        with self.assertRaisesRegex(ValueError, "gold"):
            f1_score(torch.tensor([1.0, 1.5]), [1, 2])

    def test_strings(self):
        with self.assertRaisesRegex(ValueError, "pred"):
            precision_score([1, 2], ["1", "2"])
        with self.assertRaisesRegex(ValueError, "gold"):
            accuracy_score("1 2", [1, 2])

    def test_bad_beta(self):
        with self.assertRaisesRegex(ValueError, "beta"):
            fbeta_score([1, 2], [1, 2], beta=-1.0)
        with self.assertRaisesRegex(ValueError, "beta"):
            fbeta_score([1, 2], [1, 2], beta="1")

    def test_bad_ignore_list(self):
        with self.assertRaisesRegex(ValueError, "ignore_in_gold"):
            accuracy_score([1, 2], [1, 2], ignore_in_gold=0)


if __name__ == "__main__":
    unittest.main()
