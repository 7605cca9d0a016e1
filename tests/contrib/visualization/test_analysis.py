import os
import tempfile
import unittest
from contextlib import redirect_stdout
from io import StringIO
from unittest import mock

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import scipy.sparse as sparse
import torch

from metal.contrib.visualization.analysis import (
    _get_conflicts_matrix,
    _get_overlaps_matrix,
    plot_calibration_plot,
    plot_predictions_histogram,
    plot_probabilities_histogram,
    view_conflicts,
    view_label_matrix,
    view_overlaps,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

L = np.array([[1, 0, 2], [1, 2, 2], [0, 0, 1], [2, 2, 0]])
OVERLAPS = np.array([[3, 2, 2], [2, 2, 1], [2, 1, 3]])
CONFLICTS = np.array([[0, 1, 2], [1, 0, 0], [2, 0, 0]])


class PlotTestCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        # Drawing must never block: any call to plt.show fails the test.
        patcher = mock.patch.object(plt, "show", side_effect=AssertionError("show"))
        patcher.start()
        self.addCleanup(patcher.stop)
        self.addCleanup(self.tmp.cleanup)
        self.addCleanup(plt.close, "all")

    def assert_png(self, fig, name):
        path = os.path.join(self.tmp.name, name + ".png")
        fig.savefig(path)
        self.assertGreater(os.path.getsize(path), 1000)
        with open(path, "rb") as f:
            self.assertEqual(f.read(8), PNG_SIGNATURE)


class LabelMatrixPlotsTest(PlotTestCase):
    def test_view_label_matrix(self):
        for matrix in (L, sparse.csr_matrix(L), torch.tensor(L)):
            fig = view_label_matrix(matrix)
            self.assertIsInstance(fig, matplotlib.figure.Figure)
            ax, cbar_ax = fig.axes
            self.assertEqual(ax.get_title(), "Label Matrix")
            np.testing.assert_array_equal(ax.images[0].get_array(), L)
            np.testing.assert_array_equal(cbar_ax.get_yticks(), [0, 1, 2])
        self.assert_png(fig, "label_matrix")
        self.assertEqual(len(view_label_matrix(L, colorbar=False).axes), 1)

    def test_overlaps_matrix(self):
        np.testing.assert_array_equal(
            _get_overlaps_matrix(L, normalize=False), OVERLAPS
        )
        np.testing.assert_allclose(_get_overlaps_matrix(L), OVERLAPS / 4)
        np.testing.assert_array_equal(
            _get_overlaps_matrix(sparse.csr_matrix(L), normalize=False), OVERLAPS
        )

    def test_view_overlaps(self):
        fig = view_overlaps(L)
        ax = fig.axes[0]
        self.assertEqual(ax.get_title(), "Overlaps")
        expected = OVERLAPS / 4
        np.fill_diagonal(expected, 0)
        np.testing.assert_allclose(ax.images[0].get_array(), expected)
        self.assertEqual(len(fig.axes), 2)
        self.assert_png(fig, "overlaps")
        fig = view_overlaps(L, self_overlaps=True, normalize=False, colorbar=False)
        np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), OVERLAPS)
        self.assertEqual(len(fig.axes), 1)

    def test_conflicts(self):
        np.testing.assert_array_equal(
            _get_conflicts_matrix(L, normalize=False), CONFLICTS
        )
        fig = view_conflicts(L)
        ax = fig.axes[0]
        self.assertEqual(ax.get_title(), "Conflicts")
        np.testing.assert_allclose(ax.images[0].get_array(), CONFLICTS / 4)
        self.assert_png(fig, "conflicts")
        fig = view_conflicts(sparse.csr_matrix(L), normalize=False, colorbar=False)
        np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), CONFLICTS)

    def test_bad_label_matrix(self):
        for bad in (np.array([1, 2]), np.array([[1, -1]]), np.array([[0.5, 1]])):
            for plot in (view_label_matrix, view_overlaps, view_conflicts):
                with self.assertRaisesRegex(ValueError, "^L "):
                    plot(bad)


class OutputPlotsTest(PlotTestCase):
    def bar_heights(self, ax):
        return [patch.get_height() for patch in ax.patches]

    def test_probabilities_histogram(self):
        probs = np.array([0.0, 0.02, 0.5, 0.51, 0.97, 1.0, 1.0])
        fig = plot_probabilities_histogram(probs, title="P")
        ax = fig.axes[0]
        self.assertEqual(ax.get_title(), "P")
        self.assertEqual(ax.get_xlim(), (0, 1.025))
        self.assertEqual(ax.get_xlabel(), "Probability")
        self.assertEqual(ax.get_ylabel(), "# Predictions")
        expected, _ = np.histogram(probs, bins=20)
        self.assertEqual(self.bar_heights(ax), expected.tolist())
        self.assert_png(fig, "probabilities")
        two_columns = np.stack([probs, 1 - probs], axis=1)
        buffer = StringIO()
        with redirect_stdout(buffer):
            fig = plot_probabilities_histogram(two_columns)
        self.assertIn("first column", buffer.getvalue())
        self.assertEqual(self.bar_heights(fig.axes[0]), expected.tolist())
        self.assertEqual(fig.axes[0].get_title(), "")

    def test_predictions_histogram(self):
        preds = np.array([1, 1, 2, 3, 3, 3])
        gold = np.array([1, 2, 2, 2, 3, 3])
        fig = plot_predictions_histogram(preds, gold, title="Preds")
        ax = fig.axes[0]
        self.assertEqual(ax.get_title(), "Preds")
        heights = self.bar_heights(ax)
        self.assertEqual(heights, [2, 1, 3, 1, 3, 2])  # predicted 1..3, gold 1..3
        np.testing.assert_array_equal(ax.get_xticks(), [1, 2, 3])
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        self.assertEqual(legend, ["Predicted", "Gold"])
        self.assertEqual(ax.get_xlabel(), "Label")
        self.assert_png(fig, "predictions")

    def test_calibration_plot(self):
        probs = np.array([0.05, 0.05, 0.3, 0.72, 0.74, 0.9, 1.0, 1.0])
        gold = np.array([2, 1, 2, 1, 2, 1, 1, 2])
        fig = plot_calibration_plot(probs, gold, bins=4, title="Cal")
        ax = fig.axes[0]
        x, y = ax.lines[0].get_data()
        # bins [0, .25): 2 items, 1 right; [.25, .5): right; [.5, .75): 1 of 2;
        # [.75, 1): right; p == 1: 1 of 2.
        np.testing.assert_allclose(x, [0.125, 0.375, 0.625, 0.875, 1.125])
        np.testing.assert_allclose(y, [0.5, 1.0, 0.5, 1.0, 0.5])
        self.assertEqual(ax.get_xlim(), (0, 1.025))
        self.assertEqual(ax.get_ylabel(), "Accuracy")
        self.assertEqual(ax.get_title(), "Cal")
        self.assert_png(fig, "calibration")
        # [n, 2] probabilities use column 0; empty bins are left out
        with redirect_stdout(StringIO()):
            fig = plot_calibration_plot(np.stack([probs, 1 - probs], 1), gold)
        x, _ = fig.axes[0].lines[0].get_data()
        self.assertEqual(len(x), 5)

    def test_bad_inputs(self):
        with self.assertRaisesRegex(ValueError, r"Y_probs must lie in \[0, 1\]"):
            plot_probabilities_histogram(np.array([0.2, 1.5]))
        with self.assertRaisesRegex(ValueError, "Y_probs must be \\[n\\] or"):
            plot_probabilities_histogram(np.zeros((2, 2, 2)))
        with self.assertRaisesRegex(ValueError, "Y_probs must be finite"):
            plot_probabilities_histogram(np.array([np.nan]))
        with self.assertRaisesRegex(ValueError, "Y_probs must not be empty"):
            plot_probabilities_histogram([])
        with self.assertRaisesRegex(ValueError, "Y_gold must have 3 labels"):
            plot_predictions_histogram([1, 2, 1], [1, 2])
        with self.assertRaisesRegex(ValueError, "Y_preds must be a 1-D"):
            plot_predictions_histogram(np.ones((2, 2)), [1, 2])
        with self.assertRaisesRegex(ValueError, "binary labels.*\\[1, 3\\]"):
            plot_calibration_plot([0.2, 0.9], [1, 3])
        with self.assertRaisesRegex(ValueError, "bins must be a positive integer"):
            plot_calibration_plot([0.2, 0.9], [1, 2], bins=0)
        with self.assertRaisesRegex(ValueError, "Y_gold must have 2 labels"):
            plot_calibration_plot([0.2, 0.9], [1, 2, 1])


if __name__ == "__main__":
    unittest.main()
