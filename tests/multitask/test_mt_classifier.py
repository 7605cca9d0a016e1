import contextlib
import io
import unittest

import numpy as np
import torch
from torch.utils.data import DataLoader

from metal.classifier import Classifier
from metal.multitask import MTClassifier, MultiXYDataset, MultiYDataset

# Two tasks (K = [2, 3]) over 6 items; item 5 ties on both tasks.
PROBS = [
    np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7], [0.8, 0.2], [0.5, 0.5]]),
    np.array(
        [
            [0.7, 0.2, 0.1],
            [0.1, 0.8, 0.1],
            [0.1, 0.1, 0.8],
            [0.6, 0.3, 0.1],
            [0.2, 0.2, 0.6],
            [0.4, 0.4, 0.2],
        ]
    ),
]
ITEMS = torch.arange(6)


class FixedMT(MTClassifier):
    """Looks up stored per-task probabilities; X holds item indices."""

    def __init__(self):
        config = {
            "seed": None,
            "verbose": False,
            "device": "cpu",
            "train_config": {"data_loader_config": {"batch_size": 4}},
        }
        super().__init__(K=[2, 3], config=config)
        self.t = 2

    def predict_proba(self, X, **kwargs):
        index = np.asarray(Classifier._to_numpy(X)).astype(int).reshape(-1)
        return [P[index] for P in PROBS]


class MTClassifierTestCase(unittest.TestCase):
    def setUp(self):
        self.model = FixedMT()
        # Gold: task 0 right on items 0-3, wrong on 4; task 1 has no gold on 0.
        self.Y = [np.array([1, 2, 1, 2, 2, 1]), np.array([0, 2, 3, 2, 3, 1])]

    def test_constructor(self):
        self.assertTrue(self.model.multitask)
        self.assertEqual(self.model.K, [2, 3])
        self.assertIsNone(self.model.k)

    def test_predict_proba_is_abstract(self):
        model = MTClassifier([2], {"seed": None, "verbose": False})
        with self.assertRaises(NotImplementedError):
            model.predict(ITEMS)

    def test_predict(self):
        Y_p = self.model.predict(ITEMS[:5])
        self.assertIsInstance(Y_p, list)
        self.assertEqual([y.dtype for y in Y_p], [np.int64, np.int64])
        self.assertEqual(Y_p[0].tolist(), [1, 2, 1, 2, 1])
        self.assertEqual(Y_p[1].tolist(), [1, 2, 3, 1, 3])
        Y_p, Y_s = self.model.predict(ITEMS[:2], return_probs=True)
        np.testing.assert_array_equal(Y_s[1], PROBS[1][:2])

    def test_tie_breaking_per_task(self):
        last = ITEMS[5:]
        self.assertEqual(
            [y.tolist() for y in self.model.predict(last, break_ties="abstain")],
            [[0], [0]],
        )
        self.assertEqual(
            [y.tolist() for y in self.model.predict(last, break_ties=2)], [[2], [2]]
        )
        np.random.seed(0)
        draws = {tuple(int(y[0]) for y in self.model.predict(last)) for _ in range(40)}
        self.assertEqual({d[0] for d in draws}, {1, 2})
        self.assertEqual({d[1] for d in draws}, {1, 2})
        with self.assertRaisesRegex(ValueError, "break_ties"):
            self.model.predict(last, break_ties="bogus")

    def test_predict_must_get_a_list_of_arrays(self):
        class Bad(FixedMT):
            def predict_proba(self, X, **kwargs):
                return PROBS[0]

        with self.assertRaisesRegex(ValueError, "list of NumPy arrays"):
            Bad().predict(ITEMS)

    def test_predict_task(self):
        np.testing.assert_array_equal(
            self.model.predict_task_proba(ITEMS, t=1), PROBS[1]
        )
        preds = self.model.predict_task(ITEMS[:5], t=1)
        self.assertEqual(preds.dtype, np.int64)
        self.assertEqual(preds.tolist(), [1, 2, 3, 1, 3])
        self.assertEqual(self.model.predict_task(ITEMS[5:], t=0, break_ties=2), [2])
        with self.assertRaisesRegex(ValueError, "t must be a task index in 0..1"):
            self.model.predict_task(ITEMS, t=2)

    def test_score_reductions(self):
        data = (ITEMS[:5], [y[:5] for y in self.Y])
        per_task = self.model.score(data, reduce=None, verbose=False)
        # Task 0: 4 of 5 right; task 1: gold 0 on item 0 ignored, 3 of 4 right.
        self.assertEqual(per_task, [0.8, 0.75])
        self.assertAlmostEqual(self.model.score(data, verbose=False), 0.775)
        for t in (0, 1):
            self.assertEqual(
                self.model.score(data, validation_task=t, verbose=False), per_task[t]
            )
            self.assertEqual(
                self.model.score_task(data[0], data[1], t=t, verbose=False),
                per_task[t],
            )
        self.assertEqual(
            self.model.score(data, metric=["accuracy"], reduce=None, verbose=False),
            per_task,
        )

    def test_score_with_probability_metric(self):
        # On items 0-3 the task-0 probabilities rank the gold labels perfectly
        # (roc-auc needs the probabilities, not only the predictions).
        data = (ITEMS[:4], [y[:4] for y in self.Y])
        auc = self.model.score(data, metric="roc-auc", validation_task=0, verbose=False)
        self.assertEqual(auc, 1.0)
        data = (ITEMS[:5], [y[:5] for y in self.Y])
        auc = self.model.score(data, metric="roc-auc", validation_task=0, verbose=False)
        self.assertAlmostEqual(auc, 5 / 6)

    def test_score_prints_per_task(self):
        data = (ITEMS[:5], [y[:5] for y in self.Y])
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            self.model.score(data, reduce=None)
            self.model.score(data, validation_task=1)
        text = out.getvalue()
        self.assertIn("[t=0] Accuracy: 0.800", text)
        self.assertIn("[t=1] Accuracy: 0.750", text)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            self.model.score(data, verbose=False)
        self.assertEqual(out.getvalue(), "")

    def test_score_through_loader_equals_tuple(self):
        Y = [y[:5] for y in self.Y]
        loader = DataLoader(MultiYDataset(ITEMS[:5], Y), batch_size=2)
        self.assertEqual(
            self.model.score(loader, reduce=None, verbose=False),
            self.model.score((ITEMS[:5], Y), reduce=None, verbose=False),
        )

    def test_score_argument_errors(self):
        data = (ITEMS[:5], [y[:5] for y in self.Y])
        with self.assertRaises(NotImplementedError):
            self.model.score(data, metric=["accuracy", "f1"], verbose=False)
        with self.assertRaisesRegex(ValueError, "Unknown metric"):
            self.model.score(data, metric="bogus", verbose=False)
        with self.assertRaisesRegex(ValueError, "reduce"):
            self.model.score(data, reduce="max", verbose=False)
        with self.assertRaisesRegex(ValueError, "validation_task"):
            self.model.score(data, validation_task=2, verbose=False)

    def test_score_data_errors_name_the_task(self):
        with self.assertRaisesRegex(ValueError, r"t=2\); found 1"):
            self.model.score((ITEMS[:5], [self.Y[0][:5]]), verbose=False)
        with self.assertRaisesRegex(ValueError, r"Y\[1\] \(task 1\) has 4 labels"):
            self.model.score((ITEMS[:5], [self.Y[0][:5], self.Y[1][:4]]), verbose=False)
        with self.assertRaisesRegex(ValueError, "one entry per task"):
            self.model.score((ITEMS[:5], self.Y[0][:5]), verbose=False)
        with self.assertRaisesRegex(ValueError, r"Y\[1\] \(task 1\) has 6 labels"):
            self.model.score_task(ITEMS[:5], self.Y, t=1, verbose=False)

    def test_list_helpers(self):
        stacked = MTClassifier._stack_batches(
            [[np.array([1, 2]), np.ones((2, 3))], [np.array([3]), np.zeros((1, 3))]]
        )
        self.assertEqual(stacked[0].tolist(), [1, 2, 3])
        self.assertEqual(stacked[1].shape, (3, 3))
        self.assertEqual(MTClassifier._stack_batches([]), [])
        self.assertEqual(
            MTClassifier._stack_batches([np.array([1]), np.array([2])]).tolist(),
            [1, 2],
        )
        arrays = MTClassifier._to_numpy([torch.tensor([1, 2]), np.array([3])])
        self.assertTrue(all(isinstance(a, np.ndarray) for a in arrays))
        tensors = MTClassifier._to_torch([np.array([1, 2]), np.array([3])], torch.float)
        self.assertEqual([t.dtype for t in tensors], [torch.float32] * 2)
        # The dtype is honoured for a single input too.
        self.assertEqual(
            MTClassifier._to_torch(np.array([1, 2]), dtype=torch.float64).dtype,
            torch.float64,
        )

    def test_create_dataset(self):
        Y = [np.array([1, 2]), np.array([2, 1])]
        self.assertIsInstance(
            self.model._create_dataset([np.zeros(2), np.ones(2)], Y), MultiXYDataset
        )
        self.assertIsInstance(
            self.model._create_dataset(np.zeros((2, 3)), Y), MultiYDataset
        )


if __name__ == "__main__":
    unittest.main()
