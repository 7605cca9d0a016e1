import unittest

import numpy as np

from metal.labels import ONE_BASED, ZERO_BASED
from metal.mmtl import Scorer
from metal.mmtl.scorer import OPERATION, V05


def pred_sum(golds, preds, probs):
    return int(np.sum(preds))


def golds_and_preds_sums(golds, preds, probs):
    return {"gold_sum": int(np.sum(golds)), "pred_sum": int(np.sum(preds))}


class OperationScorerTest(unittest.TestCase):
    """``Scorer(metrics=...)``: labels 0..k-1, abstain -1."""

    golds = np.array([1, 0, 1, 0, 1])
    preds = np.array([1, 0, 1, 1, 0])
    probs = np.array([[0.2, 0.8], [0.9, 0.1], [0.3, 0.7], [0.4, 0.6], [0.6, 0.4]])

    def test_standard_and_custom_metrics(self):
        scorer = Scorer(
            metrics=["accuracy", "f1"], custom_metric_funcs={"pred_sum": pred_sum}
        )
        self.assertEqual(scorer.vocabulary, OPERATION)
        results = scorer.score(self.golds, self.preds, self.probs)
        self.assertAlmostEqual(results["accuracy"], 0.6)
        self.assertAlmostEqual(results["f1"], 2 / 3)
        self.assertEqual(results["pred_sum"], 3)
        self.assertEqual(list(scorer.metrics), ["accuracy", "f1", "pred_sum"])

    def test_dict_returning_custom_metric_merges(self):
        scorer = Scorer(custom_metric_funcs={"sums": golds_and_preds_sums})
        self.assertEqual(
            scorer.score(self.golds, self.preds), {"gold_sum": 3, "pred_sum": 3}
        )

    def test_errors_and_empty(self):
        with self.assertRaisesRegex(ValueError, "Unrecognized metric"):
            Scorer(metrics=["cheese"])
        self.assertEqual(Scorer().score(self.golds, self.preds, self.probs), {})
        with self.assertRaisesRegex(ValueError, "Cannot score empty labels"):
            Scorer(metrics=["accuracy"]).score(np.array([]), np.array([]))

    def test_probs_optional(self):
        results = Scorer(metrics=["accuracy"]).score(golds=self.golds, preds=self.preds)
        self.assertAlmostEqual(results["accuracy"], 0.6)

    def test_abstain_handling(self):
        golds = np.array([1, 0, 1, 0, -1])
        preds = np.array([1, 0, 1, 1, 0])
        self.assertAlmostEqual(
            Scorer(metrics=["accuracy"], abstain_label=None).score(golds, preds)[
                "accuracy"
            ],
            0.6,
        )
        self.assertAlmostEqual(
            Scorer(metrics=["accuracy"]).score(golds, preds)["accuracy"], 0.75
        )
        abstaining = np.array([1, 0, -1, -1, 0])
        scorer = Scorer(metrics=["accuracy", "coverage"])
        results = scorer.score(np.array([1, 0, 1, 1, 1]), abstaining)
        self.assertAlmostEqual(results["accuracy"], 2 / 3)
        self.assertAlmostEqual(results["coverage"], 0.6)
        self.assertAlmostEqual(
            Scorer(metrics=["accuracy"], abstain_label=10).score(golds, preds)[
                "accuracy"
            ],
            0.6,
        )

    def test_scores_one_indexed_task_labels(self):
        """A seed-style scorer on a v0.5 task (classes 1..k, 0 = no label)."""
        scorer = Scorer(metrics=["accuracy"])
        results = scorer.score_task(
            self.golds + 1, self.preds + 1, self.probs, ONE_BASED
        )
        self.assertAlmostEqual(results["accuracy"], 0.6)
        golds = np.array([2, 1, 2, 1, 0])  # last one unlabelled
        results = scorer.score_task(golds, self.preds + 1, self.probs, ONE_BASED)
        self.assertAlmostEqual(results["accuracy"], 0.75)


def token_sum(Y, Y_preds, probs=None):
    return {"gold_total": float(sum(np.sum(y) for y in Y)), "ignored": 1.0}


class V05ScorerTest(unittest.TestCase):
    """``Scorer(standard_metrics=...)``: labels 1..k, gold 0 = inactive."""

    Y = [np.array([2]), np.array([1]), np.array([2]), np.array([1]), np.array([0])]
    Y_probs = [np.array([0.2, 0.8])] * 5
    Y_preds = [2, 1, 1, 1, 2]

    def test_standard_metrics_drop_inactive(self):
        scorer = Scorer(standard_metrics=["accuracy"])
        self.assertEqual(scorer.vocabulary, V05)
        results = scorer.score(self.Y, self.Y_probs, self.Y_preds)
        self.assertAlmostEqual(results["accuracy"], 0.75)
        self.assertEqual(scorer.metrics, ["accuracy"])

    def test_custom_metrics_and_targets(self):
        scorer = Scorer(
            standard_metrics=["accuracy", "precision"],
            custom_metric_funcs={token_sum: ["gold_total", "ignored"]},
        )
        self.assertEqual(
            scorer.metrics, ["accuracy", "precision", "gold_total", "ignored"]
        )
        results = scorer.score(
            self.Y, self.Y_probs, self.Y_preds, target_metrics=["gold_total"]
        )
        self.assertEqual(results, {"gold_total": 6.0})
        everything = scorer.score(Y=self.Y, Y_probs=self.Y_probs, Y_preds=self.Y_preds)
        self.assertEqual(
            set(everything), {"accuracy", "precision", "gold_total", "ignored"}
        )

    def test_validation(self):
        with self.assertRaisesRegex(ValueError, "Unrecognized metric"):
            Scorer(standard_metrics=["task/accuracy"])
        with self.assertRaisesRegex(ValueError, "Unrecognized metric"):
            Scorer(standard_metrics=["f2"])
        with self.assertRaisesRegex(ValueError, "list of metric names"):
            Scorer(custom_metric_funcs={token_sum: "gold_total"})
        with self.assertRaisesRegex(ValueError, "simple"):
            Scorer(custom_metric_funcs={token_sum: ["a/b"]})
        scorer = Scorer(standard_metrics=["accuracy"])
        scorer.validate_target_metrics(None)
        with self.assertRaisesRegex(ValueError, "simple"):
            scorer.validate_target_metrics(["t/p/l/accuracy"])
        with self.assertRaisesRegex(ValueError, "Unrecognized target metric"):
            scorer.validate_target_metrics(["f1"])

    def test_scores_zero_indexed_task_labels(self):
        scorer = Scorer(standard_metrics=["accuracy"])
        golds = np.array([1, 0, 1, 0, -1])  # last one unlabelled
        preds = np.array([1, 0, 0, 0, 1])
        results = scorer.score_task(golds, preds, np.ones((5, 2)) / 2, ZERO_BASED)
        self.assertAlmostEqual(results["accuracy"], 0.75)


if __name__ == "__main__":
    unittest.main()
