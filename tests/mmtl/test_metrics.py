import unittest

import numpy as np

from metal.mmtl.metrics import METRICS, metric_score


class MetricScoreTest(unittest.TestCase):
    """Operation-API metrics: labels 0..k-1, -1 filtered on request."""

    golds = np.array([0, 0, 1, 1, 1])
    preds = np.array([0, 1, 1, 1, 0])
    probs = np.array([[0.8, 0.2], [0.4, 0.6], [0.3, 0.7], [0.1, 0.9], [0.6, 0.4]])

    def test_accuracy_and_friends(self):
        self.assertAlmostEqual(
            metric_score(self.golds, self.preds, metric="accuracy"), 0.6
        )
        self.assertAlmostEqual(
            metric_score(self.golds, self.preds, metric="precision"), 2 / 3
        )
        self.assertAlmostEqual(
            metric_score(self.golds, self.preds, metric="recall"), 2 / 3
        )
        self.assertAlmostEqual(metric_score(self.golds, self.preds, metric="f1"), 2 / 3)
        self.assertAlmostEqual(
            metric_score(self.golds, self.preds, metric="fbeta", beta=1e-6), 2 / 3
        )
        self.assertAlmostEqual(
            metric_score(self.golds, self.preds, metric="matthews_corrcoef"), 1 / 6
        )
        self.assertAlmostEqual(
            metric_score(self.golds, probs=self.probs, metric="roc_auc"), 5 / 6
        )

    def test_coverage_and_filtering(self):
        preds = np.array([0, -1, 1, -1, 0])
        self.assertAlmostEqual(metric_score(preds=preds, metric="coverage"), 0.6)
        score = metric_score(
            self.golds, preds, metric="accuracy", filter_dict={"preds": [-1]}
        )
        self.assertAlmostEqual(score, 2 / 3)

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "The metric you provided"):
            metric_score(self.golds, self.preds, metric="nope")
        with self.assertRaisesRegex(ValueError, "requires access to"):
            metric_score(self.golds, metric="accuracy")
        with self.assertRaisesRegex(
            ValueError, "filter_dict must only include keys in"
        ):
            metric_score(self.golds, self.preds, filter_dict={"other": [1]})
        with self.assertRaisesRegex(ValueError, "f1 not supported for multiclass"):
            metric_score(np.array([0, 2]), np.array([0, 2]), metric="f1")
        with self.assertRaisesRegex(ValueError, "only defined for binary"):
            metric_score(self.golds, probs=np.ones((5, 3)) / 3, metric="roc_auc")

    def test_registry(self):
        self.assertEqual(
            set(METRICS),
            {
                "accuracy",
                "coverage",
                "precision",
                "recall",
                "f1",
                "f1_micro",
                "f1_macro",
                "fbeta",
                "matthews_corrcoef",
                "roc_auc",
            },
        )


if __name__ == "__main__":
    unittest.main()
