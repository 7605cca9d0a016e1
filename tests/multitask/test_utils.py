import unittest

import numpy as np
import scipy.sparse as sparse
import torch
from torch.utils.data import DataLoader

from metal.multitask import MultiXYDataset, MultiYDataset, TaskGraph, TaskHierarchy
from metal.multitask.utils import (
    check_feasible,
    constrains_labels,
    feasible_array,
    stack_task_labels,
    to_feasible_index,
)


class TestMultiYDataset(unittest.TestCase):
    def setUp(self):
        self.X = torch.arange(10, dtype=torch.float32).reshape(5, 2)
        self.Y = [np.array([1, 2, 1, 2, 1]), torch.tensor([3, 2, 1, 1, 2])]

    def test_items_and_length(self):
        ds = MultiYDataset(self.X, self.Y)
        self.assertEqual(len(ds), 5)
        x, ys = ds[3]
        self.assertTrue(torch.equal(x, self.X[3]))
        self.assertEqual([int(y) for y in ys], [2, 1])

    def test_default_collation_groups_labels_by_task(self):
        loader = DataLoader(MultiYDataset(self.X, self.Y), batch_size=4)
        X_b, Y_b = next(iter(loader))
        self.assertTrue(torch.equal(X_b, self.X[:4]))
        self.assertEqual(len(Y_b), 2)
        self.assertEqual(Y_b[0].tolist(), [1, 2, 1, 2])
        self.assertEqual(Y_b[1].tolist(), [3, 2, 1, 1])

    def test_label_length_mismatch_names_the_task(self):
        Y = [self.Y[0], np.array([1, 2, 1])]
        with self.assertRaisesRegex(ValueError, r"Y\[1\] \(task 1\) has 3 items"):
            MultiYDataset(self.X, Y)

    def test_labels_must_be_a_list(self):
        with self.assertRaisesRegex(ValueError, "one entry per task"):
            MultiYDataset(self.X, np.array([1, 2, 1, 2, 1]))


class TestMultiXYDataset(unittest.TestCase):
    def setUp(self):
        self.X = [torch.arange(4.0), torch.arange(4.0) * 10]
        self.Y = [np.array([1, 2, 1, 2]), np.array([2, 2, 1, 1])]

    def test_items_are_per_task(self):
        ds = MultiXYDataset(self.X, self.Y)
        self.assertEqual(len(ds), 4)
        xs, ys = ds[2]
        self.assertEqual([float(x) for x in xs], [2.0, 20.0])
        self.assertEqual([int(y) for y in ys], [1, 1])

    def test_collation(self):
        X_b, Y_b = next(iter(DataLoader(MultiXYDataset(self.X, self.Y), batch_size=3)))
        self.assertEqual([x.tolist() for x in X_b], [[0, 1, 2], [0, 10, 20]])
        self.assertEqual([y.tolist() for y in Y_b], [[1, 2, 1], [2, 2, 1]])

    def test_sparse_inputs_are_densified(self):
        X = [sparse.csr_matrix(np.eye(4)), sparse.csr_matrix(2 * np.eye(4))]
        ds = MultiXYDataset(X, self.Y)
        self.assertTrue(all(isinstance(x, np.ndarray) for x in ds.X))
        xs, _ = ds[1]
        np.testing.assert_array_equal(xs[1], [0, 2, 0, 0])

    def test_length_mismatches_name_the_task(self):
        with self.assertRaisesRegex(ValueError, r"X\[1\] \(task 1\) has 3 items"):
            MultiXYDataset([self.X[0], self.X[1][:3]], self.Y)
        with self.assertRaisesRegex(ValueError, r"Y\[0\] \(task 0\) has 2 items"):
            MultiXYDataset(self.X, [self.Y[0][:2], self.Y[1]])


class TestFeasibility(unittest.TestCase):
    def setUp(self):
        self.hierarchy = TaskHierarchy([2, 3, 3], [(0, 1), (0, 2)])

    def test_feasible_array(self):
        np.testing.assert_array_equal(
            feasible_array(self.hierarchy),
            [[1, 1, 3], [1, 2, 3], [2, 3, 1], [2, 3, 2]],
        )
        self.assertEqual(feasible_array(TaskGraph([2, 2])).shape, (4, 2))

    def test_only_hierarchies_constrain_labels(self):
        self.assertTrue(constrains_labels(self.hierarchy))
        self.assertFalse(constrains_labels(TaskGraph([2, 3])))

    def test_stack_task_labels(self):
        labels = stack_task_labels(
            [[1, 2], np.array([3, 1]), torch.tensor([3, 2])],
            "Y",
            [2, 3, 3],
            allow_abstain=False,
        )
        np.testing.assert_array_equal(labels, [[1, 3, 3], [2, 1, 2]])
        self.assertEqual(labels.dtype, np.int64)

    def test_stack_task_labels_errors_name_the_task(self):
        K = [2, 3, 3]
        with self.assertRaisesRegex(ValueError, r"Y\[2\] \(task 2\).*1\.\.3.*4"):
            stack_task_labels([[1], [1], [4]], "Y", K, allow_abstain=False)
        with self.assertRaisesRegex(ValueError, r"Y\[1\] \(task 1\).*1\.\.3.*0"):
            stack_task_labels([[1], [0], [3]], "Y", K, allow_abstain=False)
        stack_task_labels([[1], [0], [3]], "Y", K, allow_abstain=True)
        with self.assertRaisesRegex(ValueError, r"Y\[1\] \(task 1\) has 2 items"):
            stack_task_labels([[1], [1, 2], [3]], "Y", K, allow_abstain=False)
        with self.assertRaisesRegex(ValueError, r"t=3.*found 2"):
            stack_task_labels([[1], [1]], "Y", K, allow_abstain=False)

    def test_check_feasible_accepts_feasible_and_partial_vectors(self):
        labels = np.array([[1, 1, 3], [2, 3, 2], [0, 2, 0], [2, 0, 0], [0, 0, 0]])
        check_feasible(labels, self.hierarchy)

    def test_check_feasible_names_item_and_task(self):
        labels = np.array([[1, 1, 3], [1, 2, 3], [2, 1, 3]])
        with self.assertRaisesRegex(ValueError, r"item 2.*task 0 has label 2"):
            check_feasible(labels, self.hierarchy, name="Y")
        # Zeros are "unknown": [0, 1, 1] cannot be completed either.
        with self.assertRaisesRegex(ValueError, r"\[0, 1, 1\].*task"):
            check_feasible(np.array([[0, 1, 1]]), self.hierarchy)

    def test_plain_task_graph_never_rejects(self):
        check_feasible(np.array([[2, 1], [1, 2]]), TaskGraph([2, 2]))

    def test_to_feasible_index(self):
        labels = np.array([[2, 3, 2], [1, 1, 3], [2, 3, 1], [1, 2, 3], [1, 1, 3]])
        np.testing.assert_array_equal(
            to_feasible_index(labels, self.hierarchy), [3, 0, 2, 1, 0]
        )
        plain = TaskGraph([2, 3])
        np.testing.assert_array_equal(
            to_feasible_index(np.array([[1, 1], [1, 3], [2, 1], [2, 3]]), plain),
            [0, 2, 3, 5],
        )
        with self.assertRaisesRegex(ValueError, "task"):
            to_feasible_index(np.array([[1, 3, 3]]), self.hierarchy)


if __name__ == "__main__":
    unittest.main()
