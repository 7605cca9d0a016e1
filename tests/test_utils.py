import argparse
import contextlib
import io
import random
import threading
import unittest
import warnings
from collections import namedtuple
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sparse
import torch

from metal.utils import (
    MetalDataset,
    _one_torch_thread,
    add_flags_from_config,
    arraylike_to_numpy,
    categorical_to_plusminus,
    convert_labels,
    label_matrix_to_one_hot,
    merge_config,
    move_to_device,
    padded_tensor,
    place_on_gpu,
    plusminus_to_categorical,
    pred_to_prob,
    rargmax,
    recursive_merge_dicts,
    recursive_transform,
    set_seed,
    split_data,
    warn_once,
    warnings_given,
)


def captured_stdout(func, *args, **kwargs):
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        result = func(*args, **kwargs)
    return result, buffer.getvalue()


class TestMetalDataset(unittest.TestCase):
    def test_pairs_items_with_labels(self):
        X = torch.arange(6).reshape(3, 2)
        Y = np.array([1, 2, 1])
        dataset = MetalDataset(X, Y)
        self.assertEqual(len(dataset), 3)
        x, y = dataset[1]
        self.assertTrue(torch.equal(x, torch.tensor([2, 3])))
        self.assertEqual(y, 2)

    def test_soft_labels(self):
        Y = torch.tensor([[0.2, 0.8], [1.0, 0.0]])
        dataset = MetalDataset(["a", "b"], Y)
        self.assertTrue(torch.equal(dataset[0][1], Y[0]))

    def test_length_mismatch_raises(self):
        with self.assertRaisesRegex(ValueError, "same number"):
            MetalDataset([1, 2, 3], [1, 2])


class TestRargmax(unittest.TestCase):
    def test_ties_broken_at_random(self):
        np.random.seed(1)
        draws = {rargmax(np.array([2, 1, 2])) for _ in range(10)}
        self.assertEqual(draws, {0, 2})

    def test_unique_max_and_eps(self):
        self.assertEqual(rargmax([0.1, 0.7, 0.2]), 1)
        np.random.seed(0)
        draws = {rargmax([1.0, 1.0 + 1e-10, 0.0]) for _ in range(20)}
        self.assertEqual(draws, {0, 1})
        draws = {rargmax([1.0, 1.1], eps=0.5) for _ in range(20)}
        self.assertEqual(draws, {0, 1})

    def test_bad_input_raises(self):
        with self.assertRaisesRegex(ValueError, "1-D"):
            rargmax(np.ones((2, 2)))
        with self.assertRaisesRegex(ValueError, "1-D"):
            rargmax([])


class TestPredToProb(unittest.TestCase):
    def test_one_hot(self):
        Y_h = torch.tensor([1, 2, 2, 1])
        Y_s = pred_to_prob(Y_h, 2)
        expected = torch.tensor([[1, 0], [0, 1], [0, 1], [1, 0]]).float()
        self.assertTrue(torch.equal(Y_s.float(), expected))
        self.assertEqual(Y_s.dtype, Y_h.dtype)

    def test_column_vector_and_single_item(self):
        Y_s = pred_to_prob(torch.tensor([[3], [1]]), 3)
        self.assertTrue(torch.equal(Y_s, torch.tensor([[0, 0, 1], [1, 0, 0]])))
        self.assertEqual(tuple(pred_to_prob(torch.tensor([[2]]), 2).shape), (1, 2))

    def test_float_input_keeps_dtype(self):
        Y_s = pred_to_prob(torch.tensor([2.0, 1.0]), 2)
        self.assertEqual(Y_s.dtype, torch.float32)
        self.assertTrue(torch.equal(Y_s, torch.tensor([[0.0, 1.0], [1.0, 0.0]])))

    def test_bad_labels_raise(self):
        with self.assertRaisesRegex(ValueError, "values in 1..2"):
            pred_to_prob(torch.tensor([0, 1]), 2)
        with self.assertRaisesRegex(ValueError, "values in 1..2"):
            pred_to_prob(torch.tensor([3, 1]), 2)
        with self.assertRaisesRegex(ValueError, "1-D"):
            pred_to_prob(torch.ones(2, 2, dtype=torch.long), 2)
        with self.assertRaisesRegex(ValueError, "integer"):
            pred_to_prob(torch.tensor([1.5]), 2)


class TestArraylikeToNumpy(unittest.TestCase):
    def test_conversions(self):
        expected = np.array([1, 2, 1])
        inputs = [
            [1, 2, 1],
            (1, 2, 1),
            np.array([1, 2, 1]),
            np.array([1.0, 2.0, 1.0]),
            torch.tensor([1, 2, 1]),
            torch.tensor([1.0, 2.0, 1.0], requires_grad=True),
            sparse.csr_matrix([[1, 2, 1]]),
            np.array([[1], [2], [1]]),
            np.array([[1, 2, 1]]),
        ]
        for value in inputs:
            with self.subTest(value=value):
                out = arraylike_to_numpy(value)
                self.assertIsInstance(out, np.ndarray)
                self.assertEqual(out.dtype, np.int64)
                np.testing.assert_array_equal(out, expected)

    def test_bad_inputs_raise(self):
        for bad in ("1 1 1 2 2", np.ones((2, 5)), [0.5, 1.0], [1.0, np.nan], ["a"]):
            with self.subTest(value=bad):
                with self.assertRaises(ValueError):
                    arraylike_to_numpy(bad)


class TestConvertLabels(unittest.TestCase):
    def test_numpy_conversions(self):
        Y = np.array([0, 1, 2, 1])
        np.testing.assert_array_equal(
            convert_labels(Y, "categorical", "plusminus"), [0, 1, -1, 1]
        )
        np.testing.assert_array_equal(
            convert_labels(Y, "categorical", "onezero"), [0, 1, 0, 1]
        )
        np.testing.assert_array_equal(
            convert_labels(np.array([0, 1, -1]), "plusminus", "categorical"), [0, 1, 2]
        )
        np.testing.assert_array_equal(
            convert_labels(np.array([0, 1]), "onezero", "plusminus"), [-1, 1]
        )
        np.testing.assert_array_equal(Y, [0, 1, 2, 1])  # input untouched

    def test_tensor_conversion_clones(self):
        Y = torch.tensor([1, 2, 0])
        out = convert_labels(Y, "categorical", "plusminus")
        self.assertTrue(torch.equal(out, torch.tensor([1, -1, 0])))
        self.assertTrue(torch.equal(Y, torch.tensor([1, 2, 0])))

    def test_wrappers(self):
        np.testing.assert_array_equal(
            categorical_to_plusminus(np.array([1, 2, 0])), [1, -1, 0]
        )
        np.testing.assert_array_equal(
            plusminus_to_categorical(np.array([1, -1, 0])), [1, 2, 0]
        )
        self.assertIsNone(categorical_to_plusminus(None))

    def test_none_passes_through(self):
        self.assertIsNone(convert_labels(None, "categorical", "plusminus"))

    def test_bad_inputs_raise(self):
        with self.assertRaisesRegex(ValueError, "Y"):
            convert_labels([1, 2], "categorical", "plusminus")
        with self.assertRaisesRegex(ValueError, "Y"):
            convert_labels(np.array([1.0, 2.0]), "categorical", "plusminus")
        with self.assertRaisesRegex(ValueError, "Y"):
            convert_labels(torch.tensor([1.0, 2.0]), "categorical", "plusminus")
        with self.assertRaisesRegex(ValueError, "source"):
            convert_labels(np.array([1]), "binary", "plusminus")
        with self.assertRaisesRegex(ValueError, "target"):
            convert_labels(np.array([1]), "categorical", "zeroone")


class TestLabelMatrixToOneHot(unittest.TestCase):
    def test_shape_and_values(self):
        L = np.array([[1, 0, 2], [2, 2, 0]])
        one_hot = label_matrix_to_one_hot(L)
        self.assertEqual(tuple(one_hot.shape), (2, 3, 3))
        self.assertTrue(one_hot.is_floating_point())
        expected = torch.zeros(2, 3, 3)
        expected[0, 0, 0] = expected[0, 2, 1] = 1
        expected[1, 0, 1] = expected[1, 1, 1] = 1
        self.assertTrue(torch.equal(one_hot, expected))
        self.assertEqual(float(one_hot[..., 2].sum()), 0.0)

    def test_explicit_k_and_sparse_input(self):
        L = sparse.csr_matrix(np.array([[1, 0], [0, 3]]))
        one_hot = label_matrix_to_one_hot(L, k=4)
        self.assertEqual(tuple(one_hot.shape), (2, 2, 5))
        self.assertEqual(float(one_hot[1, 1, 2]), 1.0)
        self.assertEqual(float(one_hot.sum()), 2.0)

    def test_bad_inputs_raise(self):
        with self.assertRaisesRegex(ValueError, "k=2"):
            label_matrix_to_one_hot(np.array([[3, 1]]), k=2)
        with self.assertRaisesRegex(ValueError, "2-D"):
            label_matrix_to_one_hot(np.array([1, 2]))
        with self.assertRaisesRegex(ValueError, "integer"):
            label_matrix_to_one_hot(np.array([[-1, 1]]))


class TestRecursiveTransform(unittest.TestCase):
    def test_transforms_nested_values_in_place(self):
        x = {"a": 1, "b": {"c": 2, "d": "s", "e": {"f": 3}}}
        out = recursive_transform(x, lambda v: isinstance(v, int), lambda v: v * 10)
        self.assertIs(out, x)
        self.assertEqual(x, {"a": 10, "b": {"c": 20, "d": "s", "e": {"f": 30}}})


class TestAddFlagsFromConfig(unittest.TestCase):
    CONFIG = {
        "verbose": True,
        "seed": None,
        "lr": 0.01,
        "n_epochs": 10,
        "use_cuda": False,
        "name": "model",
        "layers": [10, 20],
        "tags": [],
        "train_config": {"optimizer": "sgd", "momentum": 0.9},
    }

    def parser(self):
        return add_flags_from_config(argparse.ArgumentParser(), self.CONFIG)

    def test_defaults_and_flattening(self):
        args = self.parser().parse_args([])
        self.assertFalse(hasattr(args, "verbose"))
        self.assertIsNone(args.seed)
        self.assertEqual(args.lr, 0.01)
        self.assertEqual(args.optimizer, "sgd")
        self.assertEqual(args.momentum, 0.9)
        self.assertEqual(args.layers, [10, 20])

    def test_types(self):
        args = self.parser().parse_args(
            [
                "--lr",
                "0.5",
                "--n_epochs",
                "3",
                "--use_cuda",
                "TRUE",
                "--seed",
                "7",
                "--name",
                "None",
                "--layers",
                "30",
                "--tags",
                "x",
                "--momentum",
                "0",
            ]
        )
        self.assertEqual(args.lr, 0.5)
        self.assertEqual(args.n_epochs, 3)
        self.assertIsInstance(args.n_epochs, int)
        self.assertTrue(args.use_cuda)
        self.assertEqual(args.seed, "7")  # None default keeps the string
        self.assertIsNone(args.name)
        self.assertEqual(args.layers[-1], 30)
        self.assertEqual(args.tags, ["x"])
        self.assertEqual(args.momentum, 0.0)
        self.assertFalse(self.parser().parse_args(["--use_cuda", "0"]).use_cuda)

    def test_bad_bool_rejected(self):
        with contextlib.redirect_stderr(io.StringIO()):
            with self.assertRaises(SystemExit):
                self.parser().parse_args(["--use_cuda", "maybe"])

    def test_duplicate_flag_reported_and_skipped(self):
        parser = argparse.ArgumentParser()
        parser.add_argument("--lr", type=float, default=1.0)
        parser, printed = captured_stdout(add_flags_from_config, parser, {"lr": 0.1})
        self.assertIn("lr", printed)
        self.assertEqual(parser.parse_args([]).lr, 1.0)


class TestRecursiveMergeDicts(unittest.TestCase):
    def test_spec_example(self):
        x = {"foo": {"Foo": {"FOO": 1}}, "bar": 2, "baz": 3}
        z = recursive_merge_dicts(x, {"FOO": 4, "bar": 5}, verbose=False)
        self.assertEqual(z, {"foo": {"Foo": {"FOO": 4}}, "bar": 5, "baz": 3})
        self.assertEqual(x["foo"]["Foo"]["FOO"], 1)  # x is deep-copied
        self.assertEqual(x["bar"], 2)

    def test_non_dict_over_dict_raises(self):
        x = {"foo": {"Foo": {"FOO": 1}}, "bar": 2}
        with self.assertRaisesRegex(ValueError, "foo"):
            recursive_merge_dicts(x, {"foo": 6}, verbose=False)

    def test_nested_dict_merge_and_empty_dict_replace(self):
        x = {"a": {"b": 1, "c": 2}, "d": {"e": 3}}
        z = recursive_merge_dicts(x, {"a": {"b": 10}, "d": {}}, verbose=False)
        self.assertEqual(z, {"a": {"b": 10, "c": 2}, "d": {}})

    def test_flat_key_search_order(self):
        # Depth-first in insertion order: the first sub-dict holding the key wins.
        x = {"a": {"b": {"key": 1}}, "c": {"key": 2}}
        z = recursive_merge_dicts(x, {"key": 5}, verbose=False)
        self.assertEqual(z, {"a": {"b": {"key": 5}}, "c": {"key": 2}})
        # A direct match at a level wins before descending further.
        x = {"a": {"sub": {"key": 1}, "key": 0}}
        z = recursive_merge_dicts(x, {"key": 5}, verbose=False)
        self.assertEqual(z, {"a": {"sub": {"key": 1}, "key": 5}})
        # A top-level key wins over nested ones.
        x = {"a": {"key": 1}, "key": 0}
        z = recursive_merge_dicts(x, {"key": 5}, verbose=False)
        self.assertEqual(z, {"a": {"key": 1}, "key": 5})

    def test_values_inserted_by_reference(self):
        value = [1, 2]
        z = recursive_merge_dicts({"a": {"b": None}}, {"b": value}, verbose=False)
        self.assertIs(z["a"]["b"], value)

    def test_misses_modes(self):
        x = {"a": {"b": 1}}
        z, printed = captured_stdout(
            recursive_merge_dicts, x, {"zz": 3}, misses="insert", verbose=False
        )
        self.assertEqual(z, {"a": {"b": 1}, "zz": 3})
        with self.assertRaisesRegex(ValueError, "zz"):
            recursive_merge_dicts(x, {"zz": 3}, misses="exception", verbose=False)
        z, printed = captured_stdout(
            recursive_merge_dicts, x, {"zz": 3}, misses="report", verbose=False
        )
        self.assertEqual(z, x)
        self.assertIn("zz", printed)
        z, printed = captured_stdout(
            recursive_merge_dicts, x, {"zz": 3}, misses="ignore", verbose=False
        )
        self.assertEqual(z, x)
        self.assertEqual(printed, "")
        with self.assertRaisesRegex(ValueError, "misses"):
            recursive_merge_dicts(x, {}, misses="drop")

    def test_default_misses_is_report(self):
        _, printed = captured_stdout(recursive_merge_dicts, {"a": 1}, {"b": 2})
        self.assertIn("b", printed)

    def test_misses_apply_inside_nested_dicts(self):
        x = {"a": {"b": 1}}
        z = recursive_merge_dicts(x, {"a": {"new": 2}}, misses="insert", verbose=False)
        self.assertEqual(z, {"a": {"b": 1, "new": 2}})
        with self.assertRaisesRegex(ValueError, "new"):
            recursive_merge_dicts(x, {"a": {"new": 2}}, misses="exception")

    def test_numpy_array_values_do_not_raise(self):
        x = {"train": {"prec_init": np.array([0.7, 0.8]), "l2": 0.0}, "verbose": 2}
        y = {"prec_init": np.array([0.9, 0.6]), "l2": np.array([0.1, 0.2])}
        z, printed = captured_stdout(recursive_merge_dicts, x, y)
        np.testing.assert_array_equal(z["train"]["prec_init"], [0.9, 0.6])
        np.testing.assert_array_equal(z["train"]["l2"], [0.1, 0.2])
        self.assertIn("Overwriting", printed)
        same = {"prec_init": np.array([0.7, 0.8])}
        _, printed = captured_stdout(recursive_merge_dicts, x, same, verbose=2)
        self.assertIn("Reaffirming", printed)

    def test_verbosity(self):
        x = {"a": 1, "verbose": 1}
        _, printed = captured_stdout(recursive_merge_dicts, x, {"a": 2})
        self.assertEqual(printed, "")
        _, printed = captured_stdout(recursive_merge_dicts, x, {"a": 2, "verbose": 2})
        self.assertIn("Overwriting", printed)
        self.assertNotIn("verbose", printed)
        _, printed = captured_stdout(
            recursive_merge_dicts, {"a": 1}, {"a": 2}, verbose=2
        )
        self.assertIn("Overwriting", printed)
        _, printed = captured_stdout(
            recursive_merge_dicts, {"a": 1, "verbose": 2}, {"a": 2}
        )
        self.assertIn("Overwriting", printed)

    def test_non_dict_arguments_raise(self):
        with self.assertRaisesRegex(ValueError, "dict"):
            recursive_merge_dicts([1], {"a": 1})


class TestMergeConfig(unittest.TestCase):
    """The one config merge of the MeTaL-vocabulary classes: unknown keys are
    accepted (as MeTaL accepted them) with one warning each."""

    def setUp(self):
        self.config = {
            "verbose": True,
            "layer": {"middle_batchnorm": False, "middle_dropout": 0.0},
            "train_config": {"n_epochs": 10, "optimizer_config": {"lr": 0.01}},
        }

    def merge(self, updates, insert=False):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            merged = merge_config(self.config, updates, "Model", insert=insert)
        return merged, [str(w.message) for w in caught if w.category is UserWarning]

    def test_known_keys_reach_any_depth_without_warning(self):
        merged, messages = self.merge({"lr": 0.1, "n_epochs": 3, "verbose": False})
        self.assertEqual(messages, [])
        self.assertEqual(merged["train_config"]["optimizer_config"]["lr"], 0.1)
        self.assertEqual(merged["train_config"]["n_epochs"], 3)
        self.assertFalse(merged["verbose"])
        self.assertEqual(self.config["train_config"]["n_epochs"], 10)  # untouched

    def test_one_warning_per_unknown_key_with_the_nearest_key(self):
        merged, messages = self.merge(
            {"batchnorm": True, "dropout": 0.1, "n_epoch": 2, "colour": "blue"}
        )
        self.assertEqual(
            messages,
            [
                "Model got the unknown config key 'batchnorm', which has no effect "
                "(did you mean 'middle_batchnorm'?).",
                "Model got the unknown config key 'dropout', which has no effect "
                "(did you mean 'middle_dropout'?).",
                "Model got the unknown config key 'n_epoch', which has no effect "
                "(did you mean 'n_epochs'?).",
                "Model got the unknown config key 'colour', which has no effect.",
            ],
        )
        # Dropped by default; the known keys are unchanged.
        self.assertEqual(merged, self.config)

    def test_insert_keeps_unknown_keys_where_they_were_given(self):
        merged, messages = self.merge(
            {"colour": "blue", "train_config": {"momentum_x": 0.5}}, insert=True
        )
        self.assertEqual(len(messages), 2)
        self.assertEqual(merged["colour"], "blue")
        self.assertEqual(merged["train_config"]["momentum_x"], 0.5)
        self.assertEqual(merged["train_config"]["n_epochs"], 10)

    def test_warning_points_at_the_callers_line(self):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            merge_config(self.config, {"colour": 1}, "Model")
        self.assertEqual(caught[0].filename, __file__)

    def test_updates_must_be_a_dict(self):
        with self.assertRaisesRegex(ValueError, "Model: config updates must be a dict"):
            merge_config(self.config, [("lr", 0.1)], "Model")


class TestSplitData(unittest.TestCase):
    def setUp(self):
        np.random.seed(0)
        self.X = np.arange(1000)
        self.Y = np.random.randint(0, 4, size=1000)

    def test_int_splits(self):
        splits = split_data(self.X, splits=[800, 100, 100])
        self.assertEqual([len(s) for s in splits], [800, 100, 100])
        np.testing.assert_array_equal(np.sort(np.concatenate(splits)), self.X)

    def test_float_splits_without_shuffle_are_identical(self):
        splits = split_data(self.X, splits=[0.8, 0.1, 0.1], shuffle=False)
        np.testing.assert_array_equal(splits[0], self.X[:800])
        np.testing.assert_array_equal(splits[1], self.X[800:900])
        np.testing.assert_array_equal(splits[2], self.X[900:])

    def test_float_sum_tolerance(self):
        splits = split_data(self.X, splits=[0.7, 0.2, 0.1], shuffle=False)
        self.assertEqual([len(s) for s in splits], [700, 200, 100])

    def test_seeded_shuffle(self):
        a = split_data(self.X, splits=[0.8, 0.1, 0.1], seed=123)
        self.assertNotEqual(a[0][0], self.X[0])
        b = split_data(self.X, splits=[0.8, 0.1, 0.1], seed=123)
        for part_a, part_b in zip(a, b):
            np.testing.assert_array_equal(part_a, part_b)
        c = split_data(self.X, splits=[0.8, 0.1, 0.1], seed=124)
        self.assertFalse(np.array_equal(a[0], c[0]))

    def test_unseeded_shuffle_uses_python_random(self):
        random.seed(5)
        a = split_data(self.X, splits=[0.5, 0.5])
        random.seed(5)
        b = split_data(self.X, splits=[0.5, 0.5])
        np.testing.assert_array_equal(a[0], b[0])

    def test_index_only(self):
        indices = split_data(self.X, splits=[0.8, 0.1, 0.1], index_only=True, seed=123)
        self.assertEqual(len(indices), 3)
        self.assertTrue(all(isinstance(idx, list) for idx in indices))
        self.assertEqual([len(idx) for idx in indices], [800, 100, 100])
        self.assertGreater(max(indices[0]), 4)
        self.assertEqual(sorted(sum(indices, [])), list(range(1000)))

    def test_multiple_inputs_stay_aligned(self):
        Xs, Ys = split_data(self.X, self.Y, splits=[0.8, 0.1, 0.1], seed=123)
        self.assertEqual(Ys[0][0], self.Y[Xs[0][0]])
        for X_part, Y_part in zip(Xs, Ys):
            np.testing.assert_array_equal(Y_part, self.Y[X_part])

    def test_list_inputs_in_assignment_order(self):
        X_list = self.X.tolist()
        Y_tuple = tuple(self.Y.tolist())
        Xs, Xl, Yt = split_data(
            self.X, X_list, Y_tuple, splits=[0.8, 0.1, 0.1], seed=123
        )
        for X_part, X_list_part, Y_part in zip(Xs, Xl, Yt):
            self.assertEqual(X_list_part, X_part.tolist())
            self.assertEqual(list(Y_part), self.Y[X_part].tolist())

    def test_stratified_splits_keep_proportions(self):
        Ys = split_data(self.Y, splits=[0.8, 0.1, 0.1], stratify_by=self.Y, seed=123)
        overall = np.bincount(self.Y, minlength=4) / len(self.Y)
        for part in Ys:
            proportions = np.bincount(part, minlength=4) / len(part)
            np.testing.assert_allclose(proportions, overall, atol=0.05)

    def test_stratified_with_tensor_labels(self):
        Y = torch.tensor(self.Y)
        parts = split_data(self.X, splits=[0.5, 0.5], stratify_by=Y, seed=1)
        self.assertEqual(sum(len(p) for p in parts), 1000)

    def test_sparse_and_tensor_inputs(self):
        M = sparse.csr_matrix(np.arange(16).reshape(4, 4))
        T = torch.arange(16).reshape(4, 4)
        Ms, Ts = split_data(M, T, splits=[0.75, 0.25], seed=1)
        self.assertEqual(Ms[0].shape, (3, 4))
        self.assertEqual(tuple(Ts[0].shape), (3, 4))
        self.assertTrue(sparse.issparse(Ms[0]))
        np.testing.assert_array_equal(Ms[0].toarray(), Ts[0].numpy())
        np.testing.assert_array_equal(Ms[1].toarray(), Ts[1].numpy())

    def test_bad_splits_raise(self):
        for bad in ([800, 100], [0.8, 0.1], [800, 0.2], [], [1100, -100]):
            with self.subTest(splits=bad):
                with self.assertRaisesRegex(ValueError, "splits"):
                    split_data(self.X, splits=bad)

    def test_bad_inputs_raise(self):
        with self.assertRaisesRegex(ValueError, "input"):
            split_data()
        with self.assertRaisesRegex(ValueError, "same length"):
            split_data(self.X, self.Y[:10])
        with self.assertRaisesRegex(ValueError, "stratify_by"):
            split_data(self.X, stratify_by=self.Y[:10])
        with self.assertRaisesRegex(ValueError, "lists"):
            split_data({i: i for i in range(4)}, splits=[2, 2])


class TestPaddedTensor(unittest.TestCase):
    ITEMS = [torch.tensor([1, 2, 3]), torch.tensor([4]), torch.tensor([5, 6])]

    def test_right_padding(self):
        out = padded_tensor(self.ITEMS)
        expected = torch.tensor([[1, 2, 3], [4, 0, 0], [5, 6, 0]])
        self.assertTrue(torch.equal(out, expected))
        self.assertEqual(out.dtype, torch.int64)

    def test_left_padding_and_pad_idx(self):
        out = padded_tensor(self.ITEMS, pad_idx=-1, left_padded=True)
        expected = torch.tensor([[1, 2, 3], [-1, -1, 4], [-1, 5, 6]])
        self.assertTrue(torch.equal(out, expected))

    def test_max_len_truncates(self):
        out = padded_tensor(self.ITEMS, max_len=2)
        self.assertTrue(torch.equal(out, torch.tensor([[1, 2], [4, 0], [5, 6]])))
        out = padded_tensor(self.ITEMS, max_len=2, left_padded=True)
        self.assertTrue(torch.equal(out, torch.tensor([[2, 3], [0, 4], [5, 6]])))
        out = padded_tensor(self.ITEMS, max_len=4)
        self.assertEqual(tuple(out.shape), (3, 4))

    def test_dtype_of_first_item(self):
        out = padded_tensor([torch.tensor([0.5]), torch.tensor([1.5, 2.5])])
        self.assertEqual(out.dtype, torch.float32)

    def test_bad_inputs_raise(self):
        with self.assertRaisesRegex(ValueError, "at least one"):
            padded_tensor([])
        with self.assertRaisesRegex(ValueError, "1-D"):
            padded_tensor([torch.ones(2, 2)])
        with self.assertRaisesRegex(ValueError, "1-D"):
            padded_tensor([[1, 2]])


class TestWarnOnce(unittest.TestCase):
    def test_warns_once_per_name(self):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warn_once(None, "test_utils message A")
            warn_once(None, "test_utils message A")
            warn_once(None, "other text", msg_name="test_utils name B")
            warn_once(None, "different text", msg_name="test_utils name B")
        self.assertEqual(
            [str(w.message) for w in caught], ["test_utils message A", "other text"]
        )
        self.assertIn("test_utils message A", warnings_given)
        self.assertIn("test_utils name B", warnings_given)


class TestDevices(unittest.TestCase):
    def test_place_on_gpu_rejects_other_types(self):
        with self.assertRaisesRegex(ValueError, "place_on_gpu"):
            place_on_gpu("text")

    def test_move_to_cpu_keeps_structure(self):
        Pair = namedtuple("Pair", ["a", "b"])
        obj = {
            "x": torch.ones(2),
            "list": [torch.zeros(1), "s"],
            "tuple": (torch.ones(1), 3),
            "pair": Pair(torch.ones(1), None),
        }
        out = move_to_device(obj, "cpu")
        self.assertIsInstance(out["list"], list)
        self.assertIsInstance(out["tuple"], tuple)
        self.assertIsInstance(out["pair"], Pair)
        self.assertEqual(out["list"][1], "s")
        self.assertEqual(out["tuple"][1], 3)
        self.assertTrue(torch.equal(out["x"], obj["x"]))

    def test_negative_device_returns_object_unchanged(self):
        obj = [torch.ones(1)]
        self.assertIs(move_to_device(obj, -1), obj)
        self.assertIs(move_to_device(obj), obj)

    @unittest.skipIf(torch.cuda.is_available(), "CUDA present")
    def test_cuda_request_without_cuda_is_a_no_op(self):
        obj = {"x": torch.ones(1)}
        self.assertIs(move_to_device(obj, 0), obj)

    @unittest.skipUnless(torch.cuda.is_available(), "needs CUDA")
    def test_cuda_move(self):
        out = move_to_device({"x": [torch.ones(1)]}, 0)
        self.assertEqual(out["x"][0].device.type, "cuda")
        self.assertEqual(place_on_gpu([torch.ones(1)])[0].device.type, "cuda")

    def test_bad_device_raises(self):
        with self.assertRaisesRegex(ValueError, "device"):
            move_to_device(torch.ones(1), "gpu please")
        with self.assertRaisesRegex(ValueError, "device"):
            move_to_device(torch.ones(1), 1.5)


class TestOneTorchThread(unittest.TestCase):
    def test_one_thread_inside_and_restored_on_exit(self):
        before = torch.get_num_threads()
        torch.set_num_threads(2)
        try:
            with _one_torch_thread():
                self.assertEqual(torch.get_num_threads(), 1)
                with _one_torch_thread():  # nested: stays at one
                    self.assertEqual(torch.get_num_threads(), 1)
                self.assertEqual(torch.get_num_threads(), 1)
            self.assertEqual(torch.get_num_threads(), 2)
        finally:
            torch.set_num_threads(before)

    def test_concurrent_threads_each_run_on_one_thread(self):
        before = torch.get_num_threads()
        torch.set_num_threads(2)
        try:
            entered = threading.Barrier(2)
            seen = []

            def user():
                with _one_torch_thread():
                    entered.wait(timeout=10)
                    seen.append(torch.get_num_threads())

            with ThreadPoolExecutor(2) as pool:
                for future in [pool.submit(user) for _ in range(2)]:
                    future.result(timeout=20)
            self.assertEqual(seen, [1, 1])
            self.assertEqual(torch.get_num_threads(), 2)  # the caller's count
        finally:
            torch.set_num_threads(before)


class TestSetSeed(unittest.TestCase):
    def draw(self):
        return (random.random(), np.random.rand(), torch.rand(1).item())

    def test_reproducible(self):
        set_seed(3)
        a = self.draw()
        set_seed(np.int64(3))
        b = self.draw()
        self.assertEqual(a, b)
        set_seed(4)
        self.assertNotEqual(self.draw(), a)

    def test_bad_seed_raises(self):
        with self.assertRaisesRegex(ValueError, "seed"):
            set_seed("abc")
        with self.assertRaisesRegex(ValueError, "seed"):
            set_seed(None)
        for bad in (2**70, -(2**64), 1.5, True, "3"):
            with self.subTest(seed=bad):
                with self.assertRaisesRegex(ValueError, r"^seed must be an integer"):
                    set_seed(bad)

    def test_extreme_seeds_work(self):
        for seed in (0, -1, 2**32, 2**64 - 1, -(2**63)):
            with self.subTest(seed=seed):
                set_seed(seed)
                a = self.draw()
                set_seed(seed)
                self.assertEqual(self.draw(), a)


if __name__ == "__main__":
    unittest.main()
