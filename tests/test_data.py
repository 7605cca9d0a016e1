import unittest

import numpy as np
import scipy.sparse as sparse
import torch
from torch.utils.data import (
    DataLoader,
    Dataset,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
    TensorDataset,
)

from metal._data import (
    TensorBatches,
    as_model_tensor,
    first_dim_size,
    hard_labels,
    is_array_like,
    is_pair,
    leading_dim,
    make_data_loader,
    n_examples,
    row_chunks,
    stack_batches,
    to_numpy,
    to_torch,
    unpack_pair,
)


class _Pairs(Dataset):
    def __init__(self, X, Y):
        self.X, self.Y = X, Y

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return self.X[i], self.Y[i]


class _Stream(IterableDataset):
    def __iter__(self):
        return iter(range(5))


# ------------------------------------------------------------------ pairs
class TestUnpackPair(unittest.TestCase):
    def test_tuple_and_list(self):
        X, Y = np.zeros(3), np.ones(3)
        for data in [(X, Y), [X, Y]]:
            with self.subTest(type=type(data).__name__):
                a, b = unpack_pair(data, "train_data")
                self.assertIs(a, X)
                self.assertIs(b, Y)

    def test_not_a_sequence(self):
        for data in [np.zeros((2, 2)), {"X": 1, "Y": 2}, None, "XY"]:
            with self.subTest(data=type(data).__name__):
                with self.assertRaises(ValueError) as ctx:
                    unpack_pair(data, "valid_data")
                self.assertIn("valid_data", str(ctx.exception))
                self.assertIn(type(data).__name__, str(ctx.exception))

    def test_a_loader_is_not_a_pair(self):
        loader = DataLoader(TensorDataset(torch.zeros(4)))
        with self.assertRaisesRegex(ValueError, "train_data"):
            unpack_pair(loader, "train_data")

    def test_wrong_length(self):
        for data in [(), (1,), (1, 2, 3), [1, 2, 3, 4]]:
            with self.subTest(n=len(data)):
                with self.assertRaises(ValueError) as ctx:
                    unpack_pair(data, "test_data")
                self.assertIn("test_data", str(ctx.exception))
                self.assertIn(f"length {len(data)}", str(ctx.exception))


class TestIsPairAndArrayLike(unittest.TestCase):
    def test_is_pair(self):
        self.assertTrue(is_pair((1, 2)))
        self.assertTrue(is_pair([np.zeros(2), np.zeros(2)]))
        self.assertFalse(is_pair(DataLoader(TensorDataset(torch.zeros(2)))))
        self.assertFalse(is_pair(TensorDataset(torch.zeros(2))))
        self.assertFalse(is_pair(np.zeros((2, 2))))
        self.assertFalse(is_pair(None))

    def test_is_array_like(self):
        for value in [
            torch.zeros(2),
            np.zeros(2),
            sparse.csr_matrix((2, 2)),
            sparse.coo_matrix((2, 2)),
        ]:
            with self.subTest(value=type(value).__name__):
                self.assertTrue(is_array_like(value))
        for value in [[1, 2], (1, 2), None, 3, "abc"]:
            with self.subTest(value=value):
                self.assertFalse(is_array_like(value))


# ------------------------------------------------------------- conversion
class TestToNumpy(unittest.TestCase):
    def test_none(self):
        self.assertIsNone(to_numpy(None))

    def test_array_unchanged(self):
        X = np.arange(6).reshape(2, 3)
        self.assertIs(to_numpy(X), X)

    def test_tensor(self):
        t = torch.arange(6.0).reshape(3, 2).requires_grad_()
        out = to_numpy(t)
        self.assertIsInstance(out, np.ndarray)
        self.assertEqual(out.dtype, np.float32)
        np.testing.assert_array_equal(out, np.arange(6.0).reshape(3, 2))

    def test_sparse_is_densified(self):
        for fmt in ["csr", "csc", "coo"]:
            with self.subTest(fmt=fmt):
                S = sparse.random(4, 3, density=0.5, format=fmt, random_state=0)
                out = to_numpy(S)
                self.assertIs(type(out), np.ndarray)
                np.testing.assert_array_equal(out, S.toarray())

    def test_list(self):
        out = to_numpy([[1, 2], [3, 4]])
        self.assertIsInstance(out, np.ndarray)
        np.testing.assert_array_equal(out, [[1, 2], [3, 4]])

    def test_other_types(self):
        for value in [(1, 2), 3, "abc", {"a": 1}]:
            with self.subTest(value=value):
                with self.assertRaises(ValueError) as ctx:
                    to_numpy(value)
                self.assertIn(type(value).__name__, str(ctx.exception))


class TestToTorch(unittest.TestCase):
    def test_none(self):
        self.assertIsNone(to_torch(None))
        self.assertIsNone(to_torch(None, torch.float32))

    def test_array_keeps_dtype(self):
        out = to_torch(np.array([[1, 2]], dtype=np.int32))
        self.assertEqual(out.dtype, torch.int32)
        self.assertTrue(torch.equal(out, torch.tensor([[1, 2]], dtype=torch.int32)))

    def test_list(self):
        out = to_torch([[1.5, 2.0], [3.0, 4.0]])
        self.assertEqual(out.dtype, torch.float64)
        self.assertEqual(tuple(out.shape), (2, 2))
        self.assertEqual(out[0, 0].item(), 1.5)

    def test_tensor_unchanged(self):
        t = torch.ones(3)
        self.assertIs(to_torch(t), t)

    def test_sparse_is_densified(self):
        S = sparse.csr_matrix(np.array([[0, 1.5], [2.0, 0]]))
        out = to_torch(S)
        self.assertIsInstance(out, torch.Tensor)
        self.assertFalse(out.is_sparse)
        self.assertTrue(
            torch.equal(out, torch.tensor([[0, 1.5], [2.0, 0]], dtype=torch.float64))
        )

    def test_dtype(self):
        inputs = [
            np.array([1, 2, 3]),
            [1, 2, 3],
            torch.tensor([1, 2, 3]),
            sparse.csr_matrix(np.array([[1, 2, 3]])),
        ]
        for value in inputs:
            with self.subTest(type=type(value).__name__):
                out = to_torch(value, torch.float32)
                self.assertEqual(out.dtype, torch.float32)
                self.assertEqual(out.reshape(-1).tolist(), [1.0, 2.0, 3.0])

    def test_other_types(self):
        for value in [(1, 2), 3, "abc", {"a": 1}]:
            with self.subTest(value=value):
                with self.assertRaises(ValueError) as ctx:
                    to_torch(value)
                self.assertIn(type(value).__name__, str(ctx.exception))

    def test_reversed_view(self):
        X = np.arange(5)[::-1]
        self.assertEqual(to_torch(X).tolist(), [4, 3, 2, 1, 0])


class TestAsModelTensor(unittest.TestCase):
    def check(self, out, dtype, values):
        self.assertIsInstance(out, torch.Tensor)
        self.assertEqual(out.dtype, dtype)
        self.assertEqual(out.tolist(), values)

    def test_float_tensors_take_the_model_dtype(self):
        t = torch.tensor([[0.5, 1.5]], dtype=torch.float64)
        self.check(as_model_tensor(t, torch.float32), torch.float32, [[0.5, 1.5]])
        t = torch.tensor([0.25], dtype=torch.float16)
        self.check(as_model_tensor(t, torch.float64), torch.float64, [0.25])
        t = torch.tensor([2.0])
        self.check(as_model_tensor(t, torch.float32), torch.float32, [2.0])

    def test_bool_tensors_become_floats(self):
        t = torch.tensor([True, False])
        self.check(as_model_tensor(t, torch.float32), torch.float32, [1.0, 0.0])
        self.check(as_model_tensor(t, torch.float64), torch.float64, [1.0, 0.0])

    def test_integer_tensors_kept(self):
        for dtype in [torch.int64, torch.int32, torch.uint8]:
            with self.subTest(dtype=dtype):
                t = torch.tensor([[1, 2]], dtype=dtype)
                self.check(as_model_tensor(t, torch.float32), dtype, [[1, 2]])

    def test_numpy_arrays(self):
        self.check(
            as_model_tensor(np.array([0.5, 1.0]), torch.float32),
            torch.float32,
            [0.5, 1.0],
        )
        self.check(
            as_model_tensor(np.array([True, False]), torch.float64),
            torch.float64,
            [1.0, 0.0],
        )
        self.check(
            as_model_tensor(np.array([3, 4], dtype=np.int32), torch.float32),
            torch.int32,
            [3, 4],
        )
        self.check(
            as_model_tensor(np.array([3, 4], dtype=np.uint8), torch.float32),
            torch.uint8,
            [3, 4],
        )

    def test_non_contiguous_and_reversed_arrays(self):
        X = np.arange(6.0).reshape(2, 3)
        self.check(
            as_model_tensor(X.T, torch.float32),
            torch.float32,
            [[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]],
        )
        self.check(
            as_model_tensor(np.arange(3)[::-1], torch.float32), torch.int64, [2, 1, 0]
        )

    def test_lists(self):
        self.check(
            as_model_tensor([[1.5, 2.5]], torch.float32), torch.float32, [[1.5, 2.5]]
        )
        self.check(as_model_tensor([1, 2, 3], torch.float32), torch.int64, [1, 2, 3])
        self.check(
            as_model_tensor([True, False], torch.float32), torch.float32, [1.0, 0.0]
        )

    def test_lists_of_tensors_are_stacked(self):
        rows = [
            torch.tensor([1.0, 2.0], dtype=torch.float64),
            torch.tensor([3.0, 4.0], dtype=torch.float64),
        ]
        self.check(
            as_model_tensor(rows, torch.float32),
            torch.float32,
            [[1.0, 2.0], [3.0, 4.0]],
        )
        self.check(
            as_model_tensor(tuple(rows), torch.float32),
            torch.float32,
            [[1.0, 2.0], [3.0, 4.0]],
        )
        ints = [torch.tensor([1, 2]), torch.tensor([3, 4])]
        self.check(as_model_tensor(ints, torch.float32), torch.int64, [[1, 2], [3, 4]])

    def test_sparse_stays_sparse_float32(self):
        S = sparse.coo_matrix(np.array([[0, 2], [1, 0]], dtype=np.int64))
        for value in [S, S.tocsr(), S.tocsc()]:
            with self.subTest(fmt=value.format):
                out = as_model_tensor(value, torch.float64)
                self.assertTrue(sparse.issparse(out))
                self.assertEqual(out.format, "csr")
                self.assertEqual(out.dtype, np.float32)
                np.testing.assert_array_equal(out.toarray(), [[0, 2], [1, 0]])

    def test_not_array_like_gives_none(self):
        for value in [
            None,
            5,
            "text",
            {"a": torch.ones(2)},
            ["a", "b"],
            np.array(["a", "b"]),
            np.array([{}, 1], dtype=object),
            [[1, 2], [3]],
            [torch.ones(2), torch.ones(3)],
            object(),
        ]:
            with self.subTest(value=repr(value)[:30]):
                self.assertIsNone(as_model_tensor(value, torch.float32))


class TestHardLabels(unittest.TestCase):
    def test_column_is_flattened(self):
        for Y in [
            np.array([[1], [2], [1]]),
            torch.tensor([[1], [2], [1]]),
            [[1], [2], [1]],
        ]:
            with self.subTest(type=type(Y).__name__):
                out = hard_labels(Y)
                self.assertEqual(out.shape, (3,))
                self.assertEqual(out.tolist(), [1, 2, 1])

    def test_probabilities_become_argmax_plus_first_class(self):
        probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.2, 0.6, 0.2]])
        self.assertEqual(hard_labels(probs).tolist(), [1, 3, 2])
        self.assertEqual(hard_labels(probs, first_class=0).tolist(), [0, 2, 1])
        self.assertEqual(hard_labels(torch.tensor(probs)).tolist(), [1, 3, 2])
        self.assertEqual(hard_labels(probs.tolist()).tolist(), [1, 3, 2])

    def test_1d_unchanged(self):
        Y = np.array([2, 0, 1])
        np.testing.assert_array_equal(hard_labels(Y), Y)
        np.testing.assert_array_equal(hard_labels(Y, first_class=0), Y)
        self.assertEqual(hard_labels(torch.tensor([3, 1])).tolist(), [3, 1])
        self.assertEqual(hard_labels([1, 2]).tolist(), [1, 2])


class TestStackBatches(unittest.TestCase):
    def test_empty(self):
        out = stack_batches([])
        self.assertIsInstance(out, np.ndarray)
        self.assertEqual(out.size, 0)

    def test_1d_end_to_end(self):
        out = stack_batches([np.array([1, 2]), torch.tensor([3]), [4, 5]])
        self.assertEqual(out.tolist(), [1, 2, 3, 4, 5])
        # Later batches are flattened when the first is 1-D.
        out = stack_batches([np.array([1, 2]), np.array([[3], [4]])])
        self.assertEqual(out.tolist(), [1, 2, 3, 4])

    def test_2d_by_rows(self):
        out = stack_batches([np.ones((2, 3)), torch.zeros(1, 3)])
        self.assertEqual(out.shape, (3, 3))
        np.testing.assert_array_equal(out, [[1, 1, 1], [1, 1, 1], [0, 0, 0]])

    def test_3d_refused(self):
        with self.assertRaisesRegex(ValueError, "3-dimensional"):
            stack_batches([np.zeros((2, 2, 2))])


class TestRowChunks(unittest.TestCase):
    def test_tensor(self):
        X = torch.arange(20).reshape(10, 2)
        chunks = list(row_chunks(X, 3))
        self.assertEqual([c.shape[0] for c in chunks], [3, 3, 3, 1])
        self.assertTrue(torch.equal(torch.cat(chunks), X))

    def test_sparse(self):
        S = sparse.random(7, 4, density=0.5, format="csr", random_state=1)
        chunks = list(row_chunks(S, 4))
        self.assertEqual([c.shape[0] for c in chunks], [4, 3])
        self.assertTrue(all(sparse.issparse(c) for c in chunks))
        np.testing.assert_array_equal(sparse.vstack(chunks).toarray(), S.toarray())

    def test_size_at_least_rows_gives_one_chunk(self):
        X = torch.ones(5, 2)
        chunks = list(row_chunks(X, 5))
        self.assertEqual(len(chunks), 1)
        self.assertTrue(torch.equal(chunks[0], X))
        self.assertEqual(len(list(row_chunks(X, 100))), 1)

    def test_empty_tensor_gives_no_chunks(self):
        self.assertEqual(list(row_chunks(torch.zeros(0, 3), 2)), [])

    def test_other_inputs_whole(self):
        for X in [np.ones((10, 2)), [[1, 2]] * 10, {"a": 1}]:
            with self.subTest(type=type(X).__name__):
                chunks = list(row_chunks(X, 3))
                self.assertEqual(len(chunks), 1)
                self.assertIs(chunks[0], X)


# ---------------------------------------------------------------- counting
class TestLeadingDim(unittest.TestCase):
    def test_tensor(self):
        self.assertEqual(leading_dim(torch.zeros(4, 2)), 4)
        self.assertIsInstance(leading_dim(torch.zeros(4, 2)), int)
        self.assertIsNone(leading_dim(torch.tensor(1.0)))

    def test_nested(self):
        t5, t7 = torch.zeros(5), torch.zeros(7, 1)
        self.assertEqual(leading_dim((torch.tensor(2.0), t5)), 5)
        self.assertEqual(leading_dim([[(), {"a": t5}], t7]), 5)
        self.assertEqual(leading_dim({"x": {"y": [t7]}, "z": t5}), 7)
        self.assertEqual(leading_dim(("text", 3, [None, (t7,)], t5)), 7)

    def test_no_tensor(self):
        for obj in [None, 3, "abc", [1, 2], np.zeros((3, 2)), {"a": [1]}, ()]:
            with self.subTest(obj=repr(obj)[:30]):
                self.assertIsNone(leading_dim(obj))


class TestFirstDimSize(unittest.TestCase):
    def test_tuple_of_tensors(self):
        self.assertEqual(first_dim_size((torch.zeros(8, 3), torch.zeros(8))), 8)
        self.assertEqual(first_dim_size([torch.zeros(2)]), 2)

    def test_nested_and_dicts(self):
        self.assertEqual(first_dim_size(((torch.zeros(6, 2),), torch.zeros(6))), 6)
        self.assertEqual(first_dim_size({"x": torch.zeros(4, 1), "y": [1]}), 4)
        self.assertEqual(first_dim_size(("ids", [torch.zeros(3)])), 3)
        self.assertEqual(first_dim_size(torch.zeros(9, 2)), 9)

    def test_without_tensors_length_or_one(self):
        self.assertEqual(first_dim_size([1, 2, 3]), 3)
        self.assertEqual(first_dim_size(np.zeros((5, 2))), 5)
        self.assertEqual(first_dim_size({"a": 1, "b": 2}), 2)
        self.assertEqual(first_dim_size(7), 1)
        self.assertEqual(first_dim_size(object()), 1)

    def test_scalar_first_tensor_is_skipped(self):
        batch = (torch.tensor(0.5), torch.zeros(5, 2))
        self.assertEqual(leading_dim(batch), 5)
        self.assertEqual(first_dim_size(batch), 5)

    def test_zero_dim_tensor_counts_one(self):
        self.assertEqual(first_dim_size(torch.tensor(3.0)), 1)


class TestNExamples(unittest.TestCase):
    def test_tensor_batches(self):
        X = torch.zeros(10, 2)
        self.assertEqual(n_examples(TensorBatches((X,), batch_size=3)), 10)
        self.assertEqual(
            n_examples(TensorBatches((X,), batch_size=3, drop_last=True)), 9
        )
        self.assertEqual(
            n_examples(TensorBatches((X,), batch_size=20, drop_last=True)), 0
        )

    def test_data_loader(self):
        loader = DataLoader(TensorDataset(torch.zeros(10)), batch_size=3)
        self.assertEqual(n_examples(loader), 10)

    def test_dataset_without_length(self):
        class NoLength(Dataset):
            def __getitem__(self, i):
                return i

        self.assertIsNone(n_examples(DataLoader(NoLength(), batch_size=2)))

    def test_unknown(self):
        self.assertIsNone(n_examples(DataLoader(_Stream(), batch_size=2)))
        self.assertIsNone(n_examples([(torch.zeros(2), torch.zeros(2))]))
        self.assertIsNone(n_examples(None))

    def test_data_loader_drop_last(self):
        loader = DataLoader(
            TensorDataset(torch.zeros(10)), batch_size=3, drop_last=True
        )
        self.assertEqual(sum(len(b[0]) for b in loader), 9)
        self.assertEqual(n_examples(loader), 9)


# ----------------------------------------------------------------- loaders
class TestMakeDataLoader(unittest.TestCase):
    def setUp(self):
        self.calls = []

        def factory(*args):
            self.calls.append(args)
            return _Pairs(*args)

        self.factory = factory
        self.X = torch.arange(10.0).reshape(5, 2)
        self.Y = torch.arange(5)

    def test_none(self):
        self.assertIsNone(make_data_loader(None, {"batch_size": 2}, self.factory))

    def test_data_loader_unchanged(self):
        loader = DataLoader(TensorDataset(self.X), batch_size=1)
        out = make_data_loader(loader, {"batch_size": 4}, self.factory, batch_size=3)
        self.assertIs(out, loader)
        self.assertEqual(out.batch_size, 1)
        self.assertEqual(self.calls, [])

    def test_dataset_wrapped_with_config(self):
        dataset = TensorDataset(self.X, self.Y)
        loader = make_data_loader(
            dataset, {"batch_size": 2, "shuffle": True}, self.factory
        )
        self.assertIsInstance(loader, DataLoader)
        self.assertIs(loader.dataset, dataset)
        self.assertEqual(loader.batch_size, 2)
        self.assertIsInstance(loader.sampler, RandomSampler)
        self.assertEqual(self.calls, [])

    def test_pair_goes_through_the_factory(self):
        for data in [(self.X, self.Y), [self.X, self.Y]]:
            with self.subTest(type=type(data).__name__):
                self.calls.clear()
                loader = make_data_loader(data, {"batch_size": 4}, self.factory)
                self.assertEqual(len(self.calls), 1)
                self.assertIs(self.calls[0][0], self.X)
                self.assertIs(self.calls[0][1], self.Y)
                self.assertIsInstance(loader.dataset, _Pairs)
                self.assertIsInstance(loader.sampler, SequentialSampler)
                batches = list(loader)
                self.assertEqual([len(b[1]) for b in batches], [4, 1])
                self.assertTrue(torch.equal(batches[0][0], self.X[:4]))

    def test_overrides_win_and_config_is_not_changed(self):
        config = {"batch_size": 4, "shuffle": False}
        loader = make_data_loader(
            (self.X, self.Y), config, self.factory, batch_size=2, shuffle=True
        )
        self.assertEqual(loader.batch_size, 2)
        self.assertIsInstance(loader.sampler, RandomSampler)
        self.assertEqual(config, {"batch_size": 4, "shuffle": False})

    def test_config_may_be_empty_or_none(self):
        for config in [None, {}]:
            with self.subTest(config=config):
                loader = make_data_loader((self.X, self.Y), config, self.factory)
                self.assertEqual(loader.batch_size, 1)

    def test_pin_memory(self):
        data = TensorDataset(self.X)
        self.assertFalse(make_data_loader(data, {}, self.factory).pin_memory)
        self.assertTrue(
            make_data_loader(data, {}, self.factory, pin_memory=True).pin_memory
        )
        # pin_memory is only the default: the loader config wins over it.
        config = {"pin_memory": False}
        loader = make_data_loader(data, config, self.factory, pin_memory=True)
        self.assertFalse(loader.pin_memory)
        loader = make_data_loader(data, {"pin_memory": True}, self.factory)
        self.assertTrue(loader.pin_memory)

    def test_other_types(self):
        for data in [np.zeros((3, 2)), {"X": 1}, 5, "data"]:
            with self.subTest(type=type(data).__name__):
                with self.assertRaises(ValueError) as ctx:
                    make_data_loader(data, {}, self.factory)
                self.assertIn(type(data).__name__, str(ctx.exception))


# ----------------------------------------------------------- tensor batches
def _rows(batches, leaf=lambda b: b[0]):
    return torch.cat([leaf(b) for b in batches]).tolist()


class TestTensorBatches(unittest.TestCase):
    def setUp(self):
        self.n = 50
        self.X = torch.arange(self.n * 2).reshape(self.n, 2)
        self.ids = torch.arange(self.n)

    def test_every_row_once_per_epoch_shuffled(self):
        batches = TensorBatches((self.ids,), batch_size=8)
        self.assertTrue(batches.shuffle)
        torch.manual_seed(0)
        first = _rows(batches)
        second = _rows(batches)
        for order in (first, second):
            self.assertEqual(sorted(order), list(range(self.n)))
        self.assertNotEqual(first, list(range(self.n)))
        self.assertNotEqual(first, second)

    def test_shuffle_reproducible_under_torch_seed(self):
        batches = TensorBatches((self.ids,), batch_size=8)
        torch.manual_seed(3)
        expected = torch.randperm(self.n).tolist()
        torch.manual_seed(3)
        self.assertEqual(_rows(batches), expected)
        torch.manual_seed(3)
        again = _rows(batches)
        self.assertEqual(again, expected)

    def test_rows_stay_aligned(self):
        batches = TensorBatches((self.X, self.ids), batch_size=7)
        torch.manual_seed(1)
        for X, ids in batches:
            self.assertTrue(torch.equal(X, self.X[ids]))

    def test_sequential(self):
        batches = TensorBatches((self.X, self.ids), batch_size=16, shuffle=False)
        self.assertEqual(len(batches), 4)
        out = list(batches)
        self.assertEqual([len(b[1]) for b in out], [16, 16, 16, 2])
        self.assertEqual(_rows(out, lambda b: b[1]), list(range(self.n)))
        self.assertTrue(torch.equal(out[1][0], self.X[16:32]))
        self.assertEqual(list(batches)[0][1].tolist(), list(range(16)))

    def test_batch_type_and_nesting_kept(self):
        data = (self.X, [self.ids, (self.ids * 2,)])
        batch = next(iter(TensorBatches(data, batch_size=5, shuffle=False)))
        self.assertIsInstance(batch, tuple)
        self.assertIsInstance(batch[1], list)
        self.assertIsInstance(batch[1][1], tuple)
        self.assertEqual(batch[1][1][0].tolist(), [0, 2, 4, 6, 8])
        batch = next(iter(TensorBatches([self.ids], batch_size=5, shuffle=False)))
        self.assertIsInstance(batch, list)

    def test_nested_rows_aligned_when_shuffled(self):
        data = [self.ids, [self.ids + 100, (self.ids + 200,)]]
        torch.manual_seed(2)
        for ids, (plus100, (plus200,)) in TensorBatches(data, batch_size=9):
            self.assertEqual((plus100 - 100).tolist(), ids.tolist())
            self.assertEqual((plus200 - 200).tolist(), ids.tolist())

    def test_len(self):
        X = torch.zeros(10)
        for batch_size, drop_last, expected in [
            (3, False, 4),
            (3, True, 3),
            (5, False, 2),
            (5, True, 2),
            (1, False, 10),
            (20, False, 1),
            (20, True, 0),
        ]:
            with self.subTest(batch_size=batch_size, drop_last=drop_last):
                batches = TensorBatches((X,), batch_size, drop_last=drop_last)
                self.assertEqual(len(batches), expected)
                self.assertEqual(len(list(batches)), expected)

    def test_drop_last(self):
        for shuffle in (False, True):
            with self.subTest(shuffle=shuffle):
                torch.manual_seed(0)
                batches = TensorBatches(
                    (self.ids,), batch_size=8, shuffle=shuffle, drop_last=True
                )
                out = list(batches)
                self.assertEqual([len(b[0]) for b in out], [8] * 6)
                rows = _rows(out)
                self.assertEqual(len(set(rows)), 48)

    def test_drop_last_with_too_few_rows_gives_nothing(self):
        batches = TensorBatches((torch.zeros(3),), batch_size=4, drop_last=True)
        self.assertEqual(list(batches), [])

    def test_sparse_rows_densified_to_float32(self):
        dense = np.arange(self.n * 3, dtype=np.int64).reshape(self.n, 3)
        dense[::2, 1] = 0
        for fmt in ["csr", "coo", "csc"]:
            with self.subTest(fmt=fmt):
                S = sparse.csr_matrix(dense).asformat(fmt)
                torch.manual_seed(4)
                for X, ids in TensorBatches((S, self.ids), batch_size=6):
                    self.assertIsInstance(X, torch.Tensor)
                    self.assertEqual(X.dtype, torch.float32)
                    expected = torch.from_numpy(dense[ids.numpy()]).float()
                    self.assertTrue(torch.equal(X, expected))
                ordered = list(TensorBatches((S,), batch_size=6, shuffle=False))
                self.assertTrue(
                    torch.equal(
                        torch.cat([b[0] for b in ordered]), torch.tensor(dense).float()
                    )
                )

    def test_mismatched_sizes(self):
        with self.assertRaises(ValueError) as ctx:
            TensorBatches((torch.zeros(5), [torch.zeros(4)]))
        self.assertIn("[4, 5]", str(ctx.exception))
        with self.assertRaises(ValueError):
            TensorBatches((torch.zeros(5), sparse.csr_matrix((6, 2))))

    def test_bad_batch_size(self):
        for batch_size in [0, -1, 2.5, 2.0, True, "3", None]:
            with self.subTest(batch_size=batch_size):
                with self.assertRaisesRegex(ValueError, "batch_size"):
                    TensorBatches((torch.zeros(5),), batch_size=batch_size)

    def test_numpy_integer_batch_size(self):
        batches = TensorBatches((torch.zeros(5),), batch_size=np.int64(2))
        self.assertEqual(batches.batch_size, 2)
        self.assertIs(type(batches.batch_size), int)
        self.assertEqual(len(batches), 3)

    def test_non_tensors_refused(self):
        for data in [
            (np.zeros(5),),
            ([1, 2, 3],),
            (torch.zeros(3), "labels"),
            (torch.zeros(3), None),
            {"x": torch.zeros(3)},
        ]:
            with self.subTest(data=repr(data)[:40]):
                with self.assertRaises(ValueError):
                    TensorBatches(data)

    def test_no_tensors(self):
        for data in [(), [], ([], ())]:
            with self.subTest(data=data):
                with self.assertRaises(ValueError):
                    TensorBatches(data)

    def test_single_tensor(self):
        batches = TensorBatches(self.ids, batch_size=20, shuffle=False)
        out = list(batches)
        self.assertEqual([b.tolist() for b in out][0], list(range(20)))
        self.assertEqual(n_examples(batches), self.n)


if __name__ == "__main__":
    unittest.main()
