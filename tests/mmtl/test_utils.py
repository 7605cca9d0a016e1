import unittest

import numpy as np
import torch

from metal.mmtl.utils import (
    collect_flow_outputs_by_suffix,
    filter_labels,
    list_to_tensor,
    metrics_dict_to_dataframe,
    move_to_device,
    pad_batch,
    preds_to_probs,
    probs_to_preds,
    to_int_label_array,
)


class PadBatchTest(unittest.TestCase):
    def setUp(self):
        self.batch = [
            torch.LongTensor([1, 2]),
            torch.LongTensor([3]),
            torch.LongTensor([4, 5, 6]),
        ]

    def check(self, kwargs, padded, mask):
        out, out_mask = pad_batch(self.batch, **kwargs)
        self.assertTrue(torch.equal(out, torch.LongTensor(padded)))
        self.assertTrue(torch.equal(out_mask, torch.LongTensor(mask)))

    def test_default(self):
        self.check(
            {}, [[1, 2, 0], [3, 0, 0], [4, 5, 6]], [[0, 0, 1], [0, 1, 1], [0, 0, 0]]
        )

    def test_max_len(self):
        self.check({"max_len": 2}, [[1, 2], [3, 0], [4, 5]], [[0, 0], [0, 1], [0, 0]])

    def test_pad_value(self):
        self.check(
            {"pad_value": -1},
            [[1, 2, -1], [3, -1, -1], [4, 5, 6]],
            [[0, 0, 1], [0, 1, 1], [0, 0, 0]],
        )

    def test_left_padded(self):
        self.check(
            {"left_padded": True},
            [[0, 1, 2], [0, 0, 3], [4, 5, 6]],
            [[1, 0, 0], [1, 1, 0], [0, 0, 0]],
        )

    def test_left_padded_and_max_len(self):
        self.check(
            {"left_padded": True, "max_len": 2},
            [[1, 2], [0, 3], [5, 6]],
            [[0, 0], [1, 0], [0, 0]],
        )


class ListToTensorTest(unittest.TestCase):
    def test_scalars_stack_to_1d(self):
        out = list_to_tensor([torch.tensor(1), torch.tensor(2)])
        self.assertTrue(torch.equal(out, torch.tensor([1, 2])))

    def test_ragged_1d_is_padded(self):
        out = list_to_tensor([torch.LongTensor([1, 2]), torch.LongTensor([3])])
        self.assertTrue(torch.equal(out, torch.LongTensor([[1, 2], [3, 0]])))

    def test_equal_1d_is_stacked(self):
        out = list_to_tensor([torch.LongTensor([1, 2]), torch.LongTensor([3, 4])])
        self.assertTrue(torch.equal(out, torch.LongTensor([[1, 2], [3, 4]])))

    def test_equal_2d_stacks_to_3d(self):
        items = [torch.ones(2, 3), torch.zeros(2, 3)]
        self.assertEqual(list_to_tensor(items).shape, (2, 2, 3))

    def test_mixed_shapes_are_flattened_and_padded(self):
        items = [
            torch.LongTensor([[1, 2], [2, 3]]),
            torch.LongTensor([4, 5, 6]),
            torch.LongTensor([7, 8, 9]),
        ]
        expected = torch.LongTensor([[1, 2, 2, 3], [4, 5, 6, 0], [7, 8, 9, 0]])
        self.assertTrue(torch.equal(list_to_tensor(items), expected))


class LabelHelpersTest(unittest.TestCase):
    def test_probs_to_preds_hash_tie_break(self):
        preds = probs_to_preds(np.ones((10, 2)) * 0.5)
        np.testing.assert_array_equal(preds, [0, 1, 0, 1, 0, 0, 0, 0, 1, 1])

    def test_probs_to_preds_no_ties_and_policies(self):
        probs = np.array([[0.1, 0.9], [0.7, 0.3], [0.5, 0.5]])
        np.testing.assert_array_equal(probs_to_preds(probs)[:2], [1, 0])
        self.assertEqual(probs_to_preds(probs, tie_break_policy="abstain")[2], -1)
        self.assertIn(probs_to_preds(probs, tie_break_policy="true-random")[2], (0, 1))
        with self.assertRaisesRegex(ValueError, "tie_break_policy"):
            probs_to_preds(probs, tie_break_policy="coin")
        with self.assertRaisesRegex(ValueError, "k >= 2"):
            probs_to_preds(np.ones((3, 1)))

    def test_preds_to_probs(self):
        np.testing.assert_array_equal(preds_to_probs([1, 0], 2), [[0, 1], [1, 0]])
        with self.assertRaises(ValueError):
            preds_to_probs([-1, 0], 2)

    def test_to_int_label_array(self):
        np.testing.assert_array_equal(
            to_int_label_array(np.array([[1.0], [2.0]])), [1, 2]
        )
        np.testing.assert_array_equal(to_int_label_array(torch.tensor(3)), [3])
        with self.assertRaisesRegex(
            ValueError, "Input contains at least one non-integer"
        ):
            to_int_label_array(np.array([0.5, 1.0]))
        with self.assertRaisesRegex(ValueError, "Input could not be converted"):
            to_int_label_array(np.ones((2, 2)))

    def test_filter_labels(self):
        labels = {
            "golds": np.array([1, -1, 0]),
            "preds": np.array([1, 0, -1]),
            "probs": None,
        }
        out = filter_labels(labels, {"golds": [-1], "preds": [-1]})
        np.testing.assert_array_equal(out["golds"], [1])
        np.testing.assert_array_equal(out["preds"], [1])
        self.assertIsNone(out["probs"])

    def test_collect_flow_outputs_by_suffix(self):
        outputs = {"b_pred": 2, "a_pred": 1, "c_other": 3}
        self.assertEqual(collect_flow_outputs_by_suffix(outputs, "_pred"), [1, 2])

    def test_metrics_dict_to_dataframe(self):
        df = metrics_dict_to_dataframe({"task/data/valid/accuracy": 0.5})
        self.assertEqual(
            list(df.columns), ["label", "dataset", "split", "metric", "score"]
        )
        self.assertEqual(df["score"].tolist(), [0.5])
        with self.assertRaises(ValueError):
            metrics_dict_to_dataframe({"bad/name": 1.0})

    def test_move_to_device_cpu_is_identity(self):
        obj = {"a": [torch.ones(1)]}
        self.assertIs(move_to_device(obj, -1), obj)


if __name__ == "__main__":
    unittest.main()
