import unittest

import numpy as np
import scipy.sparse as sparse
import torch

from metal._checks import (
    check_class_balance,
    check_int,
    check_label_matrix,
    check_label_vector,
    iter_dense_chunks,
)


class TestCheckLabelMatrix(unittest.TestCase):
    L = [[1, 0, 2], [0, 0, 1], [2, 2, 0]]

    def test_dense_inputs_become_narrow_ints(self):
        inputs = [
            np.array(self.L),
            np.array(self.L, dtype=np.float64),
            np.array(self.L, dtype=np.uint8),
            torch.tensor(self.L, dtype=torch.float32),
            self.L,
        ]
        for value in inputs:
            with self.subTest(type=type(value).__name__):
                out = check_label_matrix(value, k=2)
                self.assertIsInstance(out, np.ndarray)
                self.assertEqual(out.dtype, np.int8)
                np.testing.assert_array_equal(out, self.L)

    def test_dtype_grows_with_values(self):
        self.assertEqual(check_label_matrix(np.array([[300]])).dtype, np.int16)
        self.assertEqual(check_label_matrix(np.array([[70000]])).dtype, np.int32)
        self.assertEqual(check_label_matrix(np.array([[1]]), k=200).dtype, np.int16)

    def test_sparse_inputs_become_clean_csr(self):
        coo = sparse.coo_matrix(
            (np.array([2.0, 0.0, 1.0]), (np.array([0, 1, 0]), np.array([2, 0, 0]))),
            shape=(2, 3),
        )
        out = check_label_matrix(coo, k=2)
        self.assertIsInstance(out, sparse.csr_matrix)
        self.assertEqual(out.dtype, np.int8)
        self.assertEqual(out.nnz, 2)  # the explicit zero is dropped
        self.assertTrue(out.has_sorted_indices)
        np.testing.assert_array_equal(out.toarray(), [[1, 0, 2], [0, 0, 0]])

    def test_sparse_input_is_not_modified(self):
        L = sparse.csr_matrix(np.array(self.L, dtype=np.float64))
        out = check_label_matrix(L)
        out.data[:] = 0
        np.testing.assert_array_equal(L.toarray(), self.L)

    def test_sparse_tensor_input(self):
        out = check_label_matrix(torch.tensor(self.L).to_sparse())
        np.testing.assert_array_equal(out, self.L)

    def test_bool_matrix_accepted(self):
        out = check_label_matrix(np.array([[True, False]]))
        np.testing.assert_array_equal(out, [[1, 0]])

    def test_bad_shapes_raise(self):
        cases = [
            (None, "None"),
            (np.array([1, 2]), "shape"),
            (np.zeros((2, 2, 2)), "shape"),
            ([[1, 2], [1]], "L"),
            (np.zeros((0, 3)), "at least one row"),
            (sparse.csr_matrix((3, 0)), "at least one row"),
        ]
        for value, message in cases:
            with self.subTest(value=value):
                with self.assertRaisesRegex(ValueError, message):
                    check_label_matrix(value)

    def test_allow_empty(self):
        out = check_label_matrix(np.zeros((0, 3)), allow_empty=True)
        self.assertEqual(out.shape, (0, 3))

    def test_bad_values_raise(self):
        cases = [
            (np.array([[1, -1]]), "-1 is an abstain"),
            (np.array([[1, -2]]), "negative"),
            (np.array([[1, 3]]), "larger than k=2"),
            (np.array([[1.5, 1]]), "fractional"),
            (np.array([[np.nan, 1]]), "NaN"),
            (np.array([["a", "b"]]), "dtype"),
            (np.array([[1, None]], dtype=object), "object"),
            (sparse.csr_matrix(np.array([[0, 3]])), "larger than k=2"),
            (sparse.csr_matrix(np.array([[0.5, 1]])), "fractional"),
        ]
        for value, message in cases:
            with self.subTest(value=value):
                with self.assertRaisesRegex(ValueError, message):
                    check_label_matrix(value, k=2)

    def test_name_in_message(self):
        with self.assertRaisesRegex(ValueError, "L_dev"):
            check_label_matrix(np.array([1, 2]), name="L_dev")


class TestIterDenseChunks(unittest.TestCase):
    def test_chunks_cover_rows_in_order(self):
        L = np.arange(14).reshape(7, 2) % 3
        for matrix in (L, sparse.csr_matrix(L)):
            chunks = list(iter_dense_chunks(matrix, chunk_rows=3))
            self.assertEqual([c.shape[0] for c in chunks], [3, 3, 1])
            self.assertTrue(all(isinstance(c, np.ndarray) for c in chunks))
            np.testing.assert_array_equal(np.vstack(chunks), L)

    def test_empty_matrix_gives_no_chunks(self):
        self.assertEqual(list(iter_dense_chunks(np.zeros((0, 2)))), [])


class TestCheckLabelVector(unittest.TestCase):
    def test_accepts_array_likes(self):
        for value in ([1, 2, 0], np.array([1.0, 2.0, 0.0]), torch.tensor([1, 2, 0])):
            out = check_label_vector(value, k=2)
            self.assertEqual(out.dtype, np.int64)
            np.testing.assert_array_equal(out, [1, 2, 0])

    def test_bad_vectors_raise(self):
        cases = [
            (dict(Y=None), "None"),
            (dict(Y=[1, 3], k=2), "0..2"),
            (dict(Y=[1, 0], k=2, allow_abstain=False), "1..2"),
            (dict(Y=[1, -1]), "0..k"),
            (dict(Y=[1, 2], n=3), "3 labels"),
            (dict(Y=np.ones((2, 2))), "1-D"),
            (dict(Y=[0.5]), "non-integral"),
        ]
        for kwargs, message in cases:
            with self.subTest(kwargs=kwargs):
                with self.assertRaisesRegex(ValueError, message):
                    check_label_vector(**kwargs)

    def test_name_in_message(self):
        with self.assertRaisesRegex(ValueError, "Y_dev"):
            check_label_vector([5], name="Y_dev", k=2)


class TestCheckClassBalance(unittest.TestCase):
    def test_valid_inputs(self):
        for value in ([0.25, 0.75], np.array([0.25, 0.75]), torch.tensor([0.25, 0.75])):
            out = check_class_balance(value, 2)
            self.assertEqual(out.dtype, np.float64)
            np.testing.assert_allclose(out, [0.25, 0.75])

    def test_bad_inputs_raise(self):
        cases = [
            ([0.5, 0.5, 0.0], "length k=2"),
            ([1.5, -0.5], "non-negative"),
            ([np.nan, 1.0], "finite"),
            ([0.5, 0.6], "sum to 1"),
            (["a", "b"], "probabilities"),
            (None, "class_balance"),
        ]
        for value, message in cases:
            with self.subTest(value=value):
                with self.assertRaisesRegex(ValueError, message):
                    check_class_balance(value, 2)

    def test_name_in_message(self):
        with self.assertRaisesRegex(ValueError, "balance"):
            check_class_balance([1.0], 2, name="balance")


class TestCheckInt(unittest.TestCase):
    def test_valid(self):
        self.assertEqual(check_int(3, "n"), 3)
        value = check_int(np.int64(4), "n", minimum=4)
        self.assertEqual(value, 4)
        self.assertIs(type(value), int)

    def test_bad_values_raise(self):
        for value in (True, 2.0, "3", None):
            with self.subTest(value=value):
                with self.assertRaisesRegex(ValueError, "n must be an integer"):
                    check_int(value, "n")
        with self.assertRaisesRegex(ValueError, "n must be >= 1"):
            check_int(0, "n", minimum=1)


if __name__ == "__main__":
    unittest.main()
