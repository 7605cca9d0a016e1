import contextlib
import tracemalloc
import unittest
from unittest import mock

import numpy as np
import pandas as pd
import scipy.sparse as sparse
import torch

import metal.utils
from metal import _checks
from metal._checks import (
    arraylike_to_numpy,
    check_choice,
    check_class_balance,
    check_feasible_rows,
    check_features,
    check_float_array,
    check_gold_labels,
    check_int,
    check_int_vector,
    check_label_matrix,
    check_label_vector,
    check_pairs,
    check_positive_int,
    check_task_list,
    check_train_labels,
    is_int,
    is_number,
    iter_dense_chunks,
    labels_to_tensor,
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
        self.assertIsInstance(out, sparse.csr_matrix)  # never densified
        np.testing.assert_array_equal(out.toarray(), self.L)

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


def _label_forms(L):
    """The documented input forms of the int8 label matrix ``L`` (name, value)."""
    forms = [
        ("int8", L),
        ("int64", L.astype(np.int64)),
        ("int32", L.astype(np.int32)),
        ("uint8", L.astype(np.uint8)),
        ("float64", L.astype(np.float64)),
        ("float32", L.astype(np.float32)),
        ("int64 Fortran order", np.asfortranarray(L.astype(np.int64))),
        ("csr", sparse.csr_matrix(L.astype(np.float64))),
        ("csc", sparse.csc_matrix(L.astype(np.int64))),
        ("coo", sparse.coo_matrix(L)),
        ("lil", sparse.lil_matrix(L)),
        ("torch int64", torch.from_numpy(L.astype(np.int64))),
        ("torch float32", torch.from_numpy(L.astype(np.float32))),
        ("torch sparse", torch.from_numpy(L.astype(np.int64)).to_sparse()),
        ("list", L.tolist()),
    ]
    return forms


def bad_forms(L):
    """``L`` (float64 with a bad value) in dense, sparse and tensor forms; the
    integer forms only when its values are integers."""
    forms = [
        ("float64", L),
        ("csr", sparse.csr_matrix(L)),
        ("csc", sparse.csc_matrix(L)),
        ("coo", sparse.coo_matrix(L)),
        ("torch float64", torch.from_numpy(L)),
    ]
    if np.all(np.isfinite(L)) and np.all(L == np.round(L)):
        forms += [
            ("int64", L.astype(np.int64)),
            ("int16", L.astype(np.int16)),
            ("torch int64", torch.from_numpy(L.astype(np.int64))),
        ]
    return forms


class _SmallBlocks:
    """Validate and convert in blocks of a few rows (many blocks on small data)."""

    def setUp(self):
        patchers = [
            mock.patch.object(_checks, "_BLOCK_BYTES", 64),
            mock.patch.object(_checks, "CSC_BLOCK_ROWS", 3),
        ]
        for patcher in patchers:
            patcher.start()
            self.addCleanup(patcher.stop)


class TestLabelMatrixForms(_SmallBlocks, unittest.TestCase):
    """Every input form gives the int8 form's canonical matrix, block by block."""

    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(0)
        votes = rng.integers(1, 3, (40, 7)) * (rng.random((40, 7)) < 0.4)
        self.L = votes.astype(np.int8)

    def test_every_form_gives_the_same_matrix(self):
        dense = check_label_matrix(self.L, k=2)
        self.assertIs(dense, self.L)  # already canonical
        for name, value in _label_forms(self.L):
            with self.subTest(form=name):
                out = check_label_matrix(value, k=2)
                self.assertEqual(out.dtype, np.int8)
                if sparse.issparse(value) or name == "torch sparse":
                    self.assertIsInstance(out, sparse.csr_matrix)
                    self.assertTrue(out.has_sorted_indices)
                    self.assertTrue(np.all(out.data != 0))
                    reference = sparse.csr_matrix(self.L)
                    np.testing.assert_array_equal(out.indptr, reference.indptr)
                    np.testing.assert_array_equal(out.indices, reference.indices)
                    np.testing.assert_array_equal(out.data, reference.data)
                else:
                    self.assertIsInstance(out, np.ndarray)
                    self.assertTrue(out.flags.c_contiguous or out is value)
                    np.testing.assert_array_equal(out, self.L)

    def test_dtype_without_k_follows_the_largest_label(self):
        L = self.L.astype(np.float64)
        L[-1, -1] = 300  # in the last block: found after the int8 blocks
        for name, value in (("float64", L), ("csc", sparse.csc_matrix(L))):
            with self.subTest(form=name):
                out = check_label_matrix(value)
                self.assertEqual(out.dtype, np.int16)
                dense = out.toarray() if sparse.issparse(out) else out
                np.testing.assert_array_equal(dense, L)

    def test_many_sources_and_row_blocks_of_csc(self):
        rng = np.random.default_rng(1)
        L = rng.integers(1, 4, (50, 300)) * (rng.random((50, 300)) < 0.3)
        out = check_label_matrix(sparse.csc_matrix(L), k=3)
        reference = sparse.csr_matrix(L)
        np.testing.assert_array_equal(out.indptr, reference.indptr)
        np.testing.assert_array_equal(out.indices, reference.indices)
        np.testing.assert_array_equal(out.data, reference.data)

    def test_sparse_duplicates_are_summed_and_zeros_dropped(self):
        rows, cols = np.array([0, 0, 1, 2, 2]), np.array([1, 1, 0, 2, 0])
        data = np.array([1.0, 1.0, 0.0, 2.0, 1.0])
        expected = [[0, 2, 0], [0, 0, 0], [1, 0, 2]]
        coo = sparse.coo_matrix((data, (rows, cols)), shape=(3, 3))
        # CSR as given: row 0 stores column 1 twice, row 2 is unsorted
        csr = sparse.csr_matrix((data, cols, [0, 2, 3, 5]), shape=(3, 3))
        for value in (coo, csr, coo.tocsc(), csr.tocsc()):
            with self.subTest(format=value.format):
                out = check_label_matrix(value, k=2)
                self.assertIsInstance(out, sparse.csr_matrix)
                self.assertEqual(out.nnz, 3)
                np.testing.assert_array_equal(out.toarray(), expected)
        with self.assertRaisesRegex(ValueError, "found the value 4, larger than k=2"):
            doubled = sparse.coo_matrix(([2.0, 2.0], ([0, 0], [0, 0])), shape=(1, 1))
            check_label_matrix(doubled, k=2)

    def test_wide_dense_input_is_not_copied_whole(self):
        """A float64 matrix is checked and cast block by block: the peak of new
        memory is the int8 result plus a block, far below the input's size."""
        L = np.tile(self.L, (500, 8)).astype(np.float64)  # 20000 x 56, 8.96 MB
        with mock.patch.object(_checks, "_BLOCK_BYTES", 1 << 16):
            check_label_matrix(L[:10], k=2)  # warm-up
            tracemalloc.start()
            try:
                out = check_label_matrix(L, k=2)
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
        np.testing.assert_array_equal(out, L)
        self.assertLess(peak, out.nbytes + L.nbytes // 8)

    def test_sparse_input_is_never_densified(self):
        def refuse(self, *args, **kwargs):
            raise AssertionError(f"densified a {type(self).__name__}")

        patches = [
            mock.patch.object(cls, method, refuse)
            for cls in (sparse.csr_matrix, sparse.csc_matrix, sparse.coo_matrix)
            for method in ("toarray", "todense")
        ]
        patches.append(mock.patch.object(torch.Tensor, "to_dense", refuse))
        for patcher in patches:
            patcher.start()
            self.addCleanup(patcher.stop)
        for name, value in _label_forms(self.L):
            if name in ("csr", "csc", "coo", "torch sparse"):
                with self.subTest(form=name):
                    out = check_label_matrix(value, k=2)
                    self.assertEqual(out.nnz, np.count_nonzero(self.L))

    def test_bad_values_raise_the_same_error_in_every_form(self):
        cases = [
            (3, "L must have values in {0, 1, ..., 2}; found the value 3, larger"),
            (-1, "L must have values in {0, 1, ..., 2}; found the negative value -1"),
            (1.5, "L must hold integer labels .* found the fractional value 1.5"),
            (np.nan, "L must hold integer labels .* found NaN or infinite"),
            (np.inf, "L must hold integer labels .* found NaN or infinite"),
        ]
        for bad, message in cases:
            L = self.L.astype(np.float64)
            L[25, 3] = bad
            for name, value in bad_forms(L):
                with self.subTest(bad=bad, form=name):
                    with self.assertRaisesRegex(ValueError, message):
                        check_label_matrix(value, k=2)

    def test_the_first_problem_in_order_is_reported(self):
        """Non-finite before fractional before negative before too large, and
        the first fractional value, whatever block each lies in."""
        L = self.L.astype(np.float64)
        L[2, 0], L[30, 1], L[35, 2] = 2.5, 0.5, 7
        message = "found the fractional value 2.5"
        with self.assertRaisesRegex(ValueError, message):
            check_label_matrix(L, k=2)
        L[39, 6] = np.nan
        with self.assertRaisesRegex(ValueError, "NaN or infinite"):
            check_label_matrix(L, k=2)
        L = self.L.astype(np.int64)
        L[1, 1], L[38, 1] = 9, -4
        with self.assertRaisesRegex(ValueError, "negative value -4"):
            check_label_matrix(L, k=2)


@contextlib.contextmanager
def recorded_densifications():
    """Record the row count of every CSR block densified inside the block (a
    list, filled as ``toarray`` is called)."""
    rows = []
    original = sparse.csr_matrix.toarray

    def recording(self, *args, **kwargs):
        rows.append(self.shape[0])
        return original(self, *args, **kwargs)

    with mock.patch.object(sparse.csr_matrix, "toarray", recording):
        yield rows


class TestIterDenseChunksOfSparse(unittest.TestCase):
    def test_sparse_chunks_are_filled_one_block_at_a_time(self):
        """Only blocks of at most ``chunk_rows`` rows are ever densified, each
        into a new array (so collected chunks stay valid)."""
        rng = np.random.default_rng(2)
        L = (rng.integers(1, 3, (23, 5)) * (rng.random((23, 5)) < 0.5)).astype(np.int8)
        canonical = check_label_matrix(sparse.csc_matrix(L), k=2)
        with recorded_densifications() as densified:
            chunks = list(iter_dense_chunks(canonical, chunk_rows=4))
        self.assertEqual(densified, [4, 4, 4, 4, 4, 3])
        self.assertEqual([c.shape for c in chunks], [(4, 5)] * 5 + [(3, 5)])
        self.assertTrue(all(c.dtype == np.int8 for c in chunks))
        np.testing.assert_array_equal(np.vstack(chunks), L)


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

    def test_message_names_the_item(self):
        with self.assertRaisesRegex(
            ValueError, r"^Y must have values in 1\.\.2; found the value 3 at item 2\.$"
        ):
            check_label_vector([1, 2, 3], k=2, allow_abstain=False)

    def test_without_k_only_the_lower_bound_is_checked(self):
        np.testing.assert_array_equal(check_label_vector([0, 7]), [0, 7])


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


class TestIsInt(unittest.TestCase):
    def test_accepts_python_and_numpy_integers(self):
        for value in (0, -3, 2**70, np.int8(1), np.int64(5), np.uint16(7)):
            with self.subTest(value=value):
                self.assertTrue(is_int(value))

    def test_rejects_booleans_floats_and_others(self):
        for value in (True, False, np.bool_(True), 2.0, np.float32(1), "3", None, [1]):
            with self.subTest(value=value):
                self.assertFalse(is_int(value))


class TestIsNumber(unittest.TestCase):
    def test_accepts_reals(self):
        for value in (0, 2.5, np.int64(3), np.float32(0.5), float("nan"), np.inf):
            with self.subTest(value=value):
                self.assertTrue(is_number(value))

    def test_rejects_booleans_and_non_numbers(self):
        for value in (True, np.bool_(False), "1", None, [1.0], 1j):
            with self.subTest(value=value):
                self.assertFalse(is_number(value))


class TestCheckInt(unittest.TestCase):
    def test_valid(self):
        self.assertEqual(check_int(3, "n"), 3)
        value = check_int(np.int64(4), "n", minimum=4)
        self.assertEqual(value, 4)
        self.assertIs(type(value), int)
        self.assertEqual(check_int(2, "n", minimum=0, maximum=2), 2)

    def test_bad_values_raise(self):
        for value in (True, 2.0, "3", None):
            with self.subTest(value=value):
                with self.assertRaisesRegex(ValueError, "n must be an integer"):
                    check_int(value, "n")
        with self.assertRaisesRegex(ValueError, "n must be >= 1"):
            check_int(0, "n", minimum=1)

    def test_messages_state_the_bounds_and_what_was_found(self):
        cases = [
            (dict(value=2.5, minimum=1), r"^n must be an integer >= 1; found 2\.5\.$"),
            (dict(value=3, maximum=2), r"^n must be <= 2; found 3\.$"),
            (
                dict(value=-1, minimum=0, maximum=2),
                r"^n must be in 0\.\.2; found -1\.$",
            ),
            (
                dict(value="x", minimum=0, maximum=2),
                r"^n must be an integer in 0\.\.2; found 'x'\.$",
            ),
        ]
        for kwargs, message in cases:
            with self.subTest(kwargs=kwargs):
                with self.assertRaisesRegex(ValueError, message):
                    check_int(name="n", **kwargs)

    def test_allow_none(self):
        self.assertIsNone(check_int(None, "size", minimum=0, allow_none=True))
        with self.assertRaisesRegex(
            ValueError, r"^size must be None or an integer >= 0; found 1\.5\.$"
        ):
            check_int(1.5, "size", minimum=0, allow_none=True)
        with self.assertRaisesRegex(
            ValueError, r"^size must be None or an integer >= 0; found -1\.$"
        ):
            check_int(-1, "size", minimum=0, allow_none=True)

    def test_expected_replaces_the_description(self):
        for value in (5, 1.0):
            with self.subTest(value=value):
                with self.assertRaisesRegex(
                    ValueError, r"^t must be a task index in 0\.\.1; found"
                ):
                    check_int(value, "t", 0, 1, expected="a task index in 0..1")


class TestCheckPositiveInt(unittest.TestCase):
    def test_valid(self):
        self.assertEqual(check_positive_int(np.int32(1), "bins"), 1)
        self.assertIsNone(check_positive_int(None, "bins", allow_none=True))

    def test_bad_values_raise(self):
        for value in (0, -2, 1.0, True, "2", None):
            with self.subTest(value=value):
                with self.assertRaisesRegex(
                    ValueError, "^bins must be a positive integer; found"
                ):
                    check_positive_int(value, "bins")


class TestCheckChoice(unittest.TestCase):
    def test_valid_choice_is_returned(self):
        self.assertEqual(check_choice("min", ("min", "max"), "mode"), "min")
        self.assertIsNone(check_choice(None, (None, "mean"), "reduce"))

    def test_unknown_choice_raises(self):
        for value in ("MIN", "", None, 3):
            with self.subTest(value=value):
                with self.assertRaises(ValueError) as ctx:
                    check_choice(value, ("min", "max"), "mode")
                message = str(ctx.exception)
                self.assertIn("Unrecognized mode option", message)
                self.assertIn(repr(value), message)
                self.assertIn("['min', 'max']", message)

    def test_mapping_choices_list_their_keys(self):
        with self.assertRaisesRegex(ValueError, r"choose from \['a', 'b'\]"):
            check_choice("c", {"a": 1, "b": 2}, "scheduler")


class TestCheckFloatArray(unittest.TestCase):
    def test_accepted_forms(self):
        dense = [[0.5, 1.0], [2.0, 0.0]]
        for value in (
            dense,
            np.array(dense, dtype=np.float32),
            np.array([[1, 2], [3, 4]]),
            torch.tensor(dense, requires_grad=True),
            sparse.csr_matrix(dense),
        ):
            with self.subTest(type=type(value).__name__):
                out = check_float_array(value, "x")
                self.assertIsInstance(out, np.ndarray)
                self.assertEqual(out.dtype, np.float64)
                self.assertEqual(out.shape, (2, 2))
        self.assertEqual(check_float_array(0.5, "x").shape, ())

    def test_not_numeric_raises_naming_the_argument(self):
        for value in (None, "abc", [[1.0], [1.0, 2.0]], {"a": 1}):
            with self.subTest(value=value):
                with self.assertRaisesRegex(ValueError, "^probs must be an array"):
                    check_float_array(value, "probs", expected="an array")

    def test_finite(self):
        with self.assertRaisesRegex(ValueError, "^l2 must be finite; found NaN"):
            check_float_array([1.0, np.nan], "l2")
        with self.assertRaisesRegex(ValueError, "l2 must be finite"):
            check_float_array(np.inf, "l2")
        out = check_float_array([np.nan], "l2", finite=False)
        self.assertTrue(np.isnan(out[0]))

    def test_bounds(self):
        cases = [
            (
                dict(minimum=0),
                [1.0, -0.5],
                r"^x must be non-negative; found the value -0\.5",
            ),
            (dict(minimum=1), [0.5], r"^x must be >= 1; found the value 0\.5"),
            (dict(maximum=1), [2.0], r"^x must be <= 1; found the value 2\."),
            (dict(minimum=0, maximum=1), [0.2, 1.5], r"^x must be in \[0, 1\]; found"),
        ]
        for kwargs, value, message in cases:
            with self.subTest(kwargs=kwargs):
                with self.assertRaisesRegex(ValueError, message):
                    check_float_array(value, "x", **kwargs)
        np.testing.assert_array_equal(
            check_float_array([0.0, 1.0], "x", minimum=0, maximum=1), [0.0, 1.0]
        )

    def test_empty(self):
        self.assertEqual(check_float_array([], "x").shape, (0,))
        with self.assertRaisesRegex(ValueError, "^Y_probs must not be empty"):
            check_float_array([], "Y_probs", allow_empty=False)

    def test_shape(self):
        self.assertEqual(
            check_float_array(np.ones((4, 3)), "x", shape=(None, 3)).shape, (4, 3)
        )
        for value in (np.ones((4, 2)), np.ones(3), np.ones((1, 3, 1))):
            with self.subTest(shape=value.shape):
                with self.assertRaisesRegex(
                    ValueError, r"^x must have shape \(\*, 3\); found shape"
                ):
                    check_float_array(value, "x", shape=(None, 3))
        with self.assertRaisesRegex(ValueError, r"must have shape \(2,\)"):
            check_float_array([1.0], "p", shape=(2,))


class TestCheckPairs(unittest.TestCase):
    def test_valid_pairs_become_int_tuples(self):
        out = check_pairs([[0, 1], (np.int64(2), 0)], "deps", 3)
        self.assertEqual(out, [(0, 1), (2, 0)])
        self.assertTrue(all(type(i) is int for pair in out for i in pair))
        self.assertEqual(check_pairs([], "deps", 3), [])
        self.assertEqual(check_pairs(iter([(0, 1)]), "deps", 2), [(0, 1)])

    def test_bad_pairs_raise_naming_the_argument(self):
        cases = [
            (5, r"^deps must be a sequence of \(i, j\) pairs of source indices"),
            ([1, 2], r"^deps must be a sequence of \(i, j\) pairs"),
            ([(0, 1, 2)], r"^deps must contain \(i, j\) pairs .* \(0, 1, 2\)"),
            ([(0,)], r"^deps must contain \(i, j\) pairs"),
            ([(0, 3)], r"^deps must name sources 0\.\.2 \(m=3\); found source 3"),
            ([(-1, 0)], r"found source -1 in the pair \(-1, 0\)"),
            ([(0, 1.0)], r"found source 1\.0"),
            ([(True, 0)], r"found source True"),
            ([(1, 1)], r"^deps must join two different sources; found the self-loop"),
        ]
        for pairs, message in cases:
            with self.subTest(pairs=pairs):
                with self.assertRaisesRegex(ValueError, message):
                    check_pairs(pairs, "deps", 3, item="source", n_name="m")

    def test_pair_wording(self):
        with self.assertRaisesRegex(
            ValueError, r"^edges must contain \(parent, child\) pairs of task indices"
        ):
            check_pairs([(0, 1, 1)], "edges", 2, item="task", pair="(parent, child)")


class TestLabelVectorConversions(unittest.TestCase):
    def test_arraylike_to_numpy_is_the_utils_function(self):
        self.assertIs(metal.utils.arraylike_to_numpy, arraylike_to_numpy)
        np.testing.assert_array_equal(arraylike_to_numpy(np.array([[1], [2]])), [1, 2])

    def test_check_int_vector_accepts_any_sign(self):
        out = check_int_vector(torch.tensor([-1, 0, 3]), "gold")
        self.assertEqual(out.dtype, np.int64)
        np.testing.assert_array_equal(out, [-1, 0, 3])

    def test_check_int_vector_names_the_argument(self):
        cases = [
            (None, r"^pred must be a 1-D array of integer labels; found None"),
            (np.ones((2, 2)), r"^pred: Expected a 1-D array"),
            ([0.5], r"^pred: .*non-integral"),
            (["a"], r"^pred: .*dtype"),
        ]
        for value, message in cases:
            with self.subTest(value=value):
                with self.assertRaisesRegex(ValueError, message):
                    check_int_vector(value, "pred")
        with self.assertRaisesRegex(ValueError, "^pred must have 3 labels; found 2"):
            check_int_vector([1, 2], "pred", n=3)

    def test_labels_to_tensor(self):
        self.assertEqual(labels_to_tensor([1, 2], "Y").dtype, torch.int64)
        self.assertEqual(
            labels_to_tensor(np.ones(2, np.float32), "Y").dtype, torch.float32
        )
        dense = labels_to_tensor(sparse.csr_matrix([[1.0], [2.0]]), "Y")
        self.assertEqual(tuple(dense.shape), (2, 1))
        source = torch.ones(2, requires_grad=True)
        self.assertFalse(labels_to_tensor(source, "Y").requires_grad)
        with self.assertRaisesRegex(ValueError, r"^Y is missing \(found None\)"):
            labels_to_tensor(None, "Y")
        with self.assertRaisesRegex(ValueError, "^Y must be numeric labels"):
            labels_to_tensor(["a", "b"], "Y")


class TestCheckTrainLabels(unittest.TestCase):
    def test_hard_labels_become_long_vectors(self):
        for value in (
            [1, 2, 2],
            np.array([[1.0], [2.0], [2.0]]),
            torch.tensor([1, 2, 2]),
        ):
            with self.subTest(type=type(value).__name__):
                out = check_train_labels(value, 2, "train_data Y")
                self.assertEqual(out.dtype, torch.long)
                self.assertEqual(out.tolist(), [1, 2, 2])

    def test_probabilities_keep_their_shape_in_the_given_dtype(self):
        probs = np.array([[0.25, 0.75], [1.0, 0.0]])
        out = check_train_labels(probs, 2, "Y", dtype=torch.float64)
        self.assertEqual(out.dtype, torch.float64)
        np.testing.assert_allclose(out.numpy(), probs)
        self.assertEqual(check_train_labels(probs, 2, "Y").dtype, torch.float32)

    def test_k_of_one_reads_a_column_as_probabilities(self):
        out = check_train_labels(np.ones((3, 1)), 1, "Y")
        self.assertEqual(tuple(out.shape), (3, 1))

    def test_bad_labels_raise_naming_the_argument(self):
        cases = [
            (None, "^train_data Y is missing"),
            (
                [1, 0],
                r"^train_data Y: hard labels must be in 1\.\.2 .*values in 0\.\.1",
            ),
            ([1, 3], r"hard labels must be in 1\.\.2"),
            ([1.5, 1.0], "^train_data Y: hard labels must be integers"),
            (np.ones((2, 3)) / 3, "^train_data Y: probabilistic labels must have k=2"),
            (np.ones((2, 2, 2)), r"^train_data Y must be hard labels \[n\] or"),
            (np.array([[0.5, np.nan]]), "finite and non-negative"),
            (np.array([[1.5, -0.5]]), "finite and non-negative"),
            (np.array([[0.5, 0.6]]), "row 0 sums to 1.1"),
        ]
        for value, message in cases:
            with self.subTest(value=value):
                with self.assertRaisesRegex(ValueError, message):
                    check_train_labels(value, 2, "train_data Y")


class TestCheckGoldLabels(unittest.TestCase):
    def test_accepts_gold_vectors_and_probabilities(self):
        self.assertEqual(check_gold_labels([0, 1, 2], 2, "Y").tolist(), [0, 1, 2])
        out = check_gold_labels(np.array([[0.5, 0.5]]), 2, "Y")
        self.assertEqual(tuple(out.shape), (1, 2))

    def test_bad_gold_labels_raise_naming_the_argument(self):
        cases = [
            ([0, 3], r"^valid_data Y: gold labels must be in 0\.\.2 \(0 = no label\)"),
            ([-1, 1], r"found values in -1\.\.1"),
            (
                np.ones((2, 3)),
                r"^valid_data Y must be gold labels \[n\] or probabilities "
                r"\[n, k=2\]; found shape \(2, 3\)",
            ),
            (None, "^valid_data Y is missing"),
        ]
        for value, message in cases:
            with self.subTest(value=value):
                with self.assertRaisesRegex(ValueError, message):
                    check_gold_labels(value, 2, "valid_data Y")


class TestCheckTaskList(unittest.TestCase):
    def test_lists_and_tuples(self):
        Y = (np.ones(2), np.ones(2))
        out = check_task_list(Y, "Y", t=2)
        self.assertIsInstance(out, list)
        self.assertIs(out[1], Y[1])

    def test_bad_task_lists_raise_naming_the_argument(self):
        cases = [
            (
                np.ones(3),
                None,
                "^Y must be a list with one entry per task; found ndarray",
            ),
            ([np.ones(3)], 2, r"^Y must have one entry per task \(t=2\); found 1"),
            ([], None, "^Y must have at least one task"),
        ]
        for value, t, message in cases:
            with self.subTest(message=message):
                with self.assertRaisesRegex(ValueError, message):
                    check_task_list(value, "Y", t=t)


class TestCheckFeasibleRows(unittest.TestCase):
    feasible = np.array([[1, 1, 3], [1, 2, 3], [2, 3, 1], [2, 3, 2]])

    def test_feasible_and_partial_rows_pass(self):
        labels = np.array([[1, 2, 3], [2, 0, 1], [0, 0, 0]])
        check_feasible_rows(labels, self.feasible, "Y", "the hierarchy")
        check_feasible_rows(np.zeros((0, 3), int), self.feasible, "Y", "the hierarchy")

    def test_infeasible_row_names_item_task_and_source(self):
        labels = np.array([[1, 2, 3], [1, 1, 3], [2, 1, 1]])
        with self.assertRaisesRegex(
            ValueError,
            r"^Y_dev: the label vector \[2, 1, 1\] of item 2 is not feasible under "
            r"the hierarchy \(task 1 has label 1 where",
        ):
            check_feasible_rows(labels, self.feasible, "Y_dev", "the hierarchy")


class TestPandasInputs(unittest.TestCase):
    def setUp(self):
        self.L = np.array([[1, 0, 2], [0, 2, 2], [1, 1, 0]])

    def test_nullable_int_frame_is_accepted(self):
        for dtype in ("Int64", "Int8", "int64", "float64", "UInt16"):
            with self.subTest(dtype=dtype):
                frame = pd.DataFrame(self.L).astype(dtype)
                out = check_label_matrix(frame, k=2)
                np.testing.assert_array_equal(out, self.L)
                self.assertEqual(out.dtype, np.int8)

    def test_missing_values_are_named(self):
        frame = pd.DataFrame(self.L).astype("Int64")
        frame.iloc[2, 1] = pd.NA
        with self.assertRaisesRegex(
            ValueError, r"^L must not have missing values; found 1 .*row 2, column 1"
        ):
            check_label_matrix(frame, k=2)
        floats = pd.DataFrame(self.L.astype(float))
        floats.iloc[0, 0] = np.nan
        with self.assertRaisesRegex(ValueError, "row 0, column 0"):
            check_label_matrix(floats, k=2)

    def test_bad_values_in_a_frame_still_raise(self):
        frame = pd.DataFrame(self.L * 2).astype("Int64")
        with self.assertRaisesRegex(ValueError, "larger than k=2"):
            check_label_matrix(frame, k=2)

    def test_label_vectors(self):
        series = pd.Series([1, 0, 2], dtype="Int64")
        np.testing.assert_array_equal(check_label_vector(series, "Y"), [1, 0, 2])
        with self.assertRaisesRegex(ValueError, r"^Y: .*missing values.*item 1"):
            check_label_vector(pd.Series([1, None, 2], dtype="Int64"), "Y")


class TestCheckFeatures(unittest.TestCase):
    def test_good_inputs_pass(self):
        check_features(torch.rand(4, 3), "X", width=3, allow_empty=False)
        check_features(torch.rand(4, 6, 3), "X", width=3)  # sequences of vectors
        check_features(torch.zeros(0, 3), "X", width=3)
        check_features(torch.tensor([[1, 2]]), "X")  # integers: nothing to check
        check_features(sparse.csr_matrix(np.eye(3)), "X", width=3)

    def test_non_finite_values_name_the_first_row(self):
        X = torch.rand(6, 2)
        X[4, 0] = float("inf")
        X[5, 1] = float("nan")
        with self.assertRaisesRegex(ValueError, r"^X has NaN .*first in row 4"):
            check_features(X, "X")
        S = sparse.csr_matrix(np.array([[0, 1.0], [0, 0], [np.nan, 0]]))
        with self.assertRaisesRegex(ValueError, r"^S has NaN .*first in row 2"):
            check_features(S, "S")

    def test_width_and_emptiness(self):
        with self.assertRaisesRegex(ValueError, r"^X must have 3 features .*\(4, 2\)"):
            check_features(torch.rand(4, 2), "X", width=3)
        with self.assertRaisesRegex(ValueError, "^X must have 3 features"):
            check_features(torch.rand(3), "X", width=3)
        with self.assertRaisesRegex(ValueError, "^X must have at least one item"):
            check_features(torch.rand(0, 3), "X", allow_empty=False)


if __name__ == "__main__":
    unittest.main()
