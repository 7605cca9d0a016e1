import unittest

import torch

from metal.mmtl import DictDataLoader, DictDataset, MmtlDataLoader, MmtlDataset
from metal.mmtl.data import collate_dicts, mmtl_collate_fn


class DictDatasetTest(unittest.TestCase):
    def test_indexing_and_repr(self):
        X = [torch.FloatTensor([1, 2]), torch.FloatTensor([3])]
        dataset = DictDataset(
            "new_data", "train", {"data1": X}, {"task1": torch.LongTensor([0, 1])}
        )
        x_dict, y_dict = dataset[1]
        self.assertTrue(torch.equal(x_dict["data1"], torch.FloatTensor([3])))
        self.assertEqual(y_dict["task1"].item(), 1)
        self.assertEqual(len(dataset), 2)
        self.assertEqual(
            repr(dataset),
            "DictDataset(name=new_data, X_keys=['data1'], Y_keys=['task1'])",
        )

    def test_from_tensors_defaults(self):
        dataset = DictDataset.from_tensors(
            torch.zeros(3, 2), torch.zeros(3).long(), "train"
        )
        self.assertEqual(dataset.name, "SnorkelDataset")
        self.assertEqual(list(dataset.X_dict), ["input_data"])
        self.assertEqual(list(dataset.Y_dict), ["task"])

    def test_empty_label_dict_has_no_examples(self):
        dataset = DictDataset("InvCircleDataset", "train", {}, {})
        self.assertEqual(len(dataset), 0)
        self.assertEqual(len(DictDataLoader(dataset, batch_size=32)), 0)

    def test_bad_input(self):
        with self.assertRaisesRegex(ValueError, "'task1' must be a torch.Tensor"):
            DictDataset("d", "train", {"x": torch.zeros(2, 1)}, {"task1": [0, 1]})
        with self.assertRaisesRegex(ValueError, r"Y_dict\['task1'\]"):
            DictDataset(
                "d", "train", {"x": torch.zeros(3, 1)}, {"task1": torch.zeros(2)}
            )
        with self.assertRaisesRegex(ValueError, "needs a DictDataset"):
            DictDataLoader(MmtlDataset(torch.zeros(2, 1), torch.zeros(2)))

    def test_collate_ragged_fields_and_scalar_labels(self):
        X = [
            torch.LongTensor([1, 2, 3]),
            torch.LongTensor([4]),
            torch.LongTensor([5, 6]),
        ]
        dataset = DictDataset(
            "d",
            "train",
            {"ids": X, "uid": ["a", "b", "c"]},
            {"task1": torch.LongTensor([0, 1, 1])},
        )
        X_batch, Y_batch = next(iter(DictDataLoader(dataset, batch_size=2)))
        self.assertTrue(
            torch.equal(X_batch["ids"], torch.LongTensor([[1, 2, 3], [4, 0, 0]]))
        )
        self.assertEqual(X_batch["uid"], ["a", "b"])
        self.assertTrue(torch.equal(Y_batch["task1"], torch.LongTensor([0, 1])))
        X_batch, _ = next(iter(DictDataLoader(dataset, batch_size=3)))
        self.assertEqual(X_batch["ids"].shape, (3, 3))

    def test_label_list_of_vectors(self):
        dataset = DictDataset(
            "d", "train", {"x": torch.zeros(2, 1)}, {"task1": torch.zeros(2).long()}
        )
        dataset.Y_dict["task1"] = [torch.LongTensor([2]), torch.LongTensor([2])]
        _, Y_batch = collate_dicts([dataset[0], dataset[1]])
        self.assertTrue(torch.equal(Y_batch["task1"], torch.LongTensor([[2], [2]])))


class MmtlDatasetTest(unittest.TestCase):
    def test_single_tensors_are_named(self):
        dataset = MmtlDataset(torch.zeros(4, 2), torch.ones(4).long())
        self.assertEqual(list(dataset.X_dict), ["data"])
        self.assertEqual(list(dataset.Y_dict), ["labels"])
        self.assertEqual(len(dataset), 4)

    def test_collation_is_two_dimensional(self):
        dataset = MmtlDataset(
            {"data": torch.zeros(3, 2), "uids": ["a", "b", "c"]},
            {
                "labels": torch.LongTensor([1, 2, 0]),
                "tokens": torch.LongTensor([[1, 2], [2, 2], [1, 0]]),
            },
        )
        X_batch, Y_batch = next(iter(MmtlDataLoader(dataset, batch_size=3)))
        self.assertEqual(X_batch["data"].shape, (3, 2))
        self.assertEqual(X_batch["uids"], ["a", "b", "c"])
        self.assertTrue(
            torch.equal(Y_batch["labels"], torch.LongTensor([[1], [2], [0]]))
        )
        self.assertEqual(Y_batch["tokens"].shape, (3, 2))

    def test_ragged_rows_are_padded(self):
        batch = [
            ({"x": torch.LongTensor([1, 2])}, {"y": torch.LongTensor([1])}),
            ({"x": torch.LongTensor([3])}, {"y": torch.LongTensor([2])}),
        ]
        X_batch, Y_batch = mmtl_collate_fn(batch)
        self.assertTrue(torch.equal(X_batch["x"], torch.LongTensor([[1, 2], [3, 0]])))
        self.assertTrue(torch.equal(Y_batch["y"], torch.LongTensor([[1], [2]])))

    def test_bad_input(self):
        with self.assertRaisesRegex(ValueError, "must be a torch.Tensor"):
            MmtlDataset(torch.zeros(2, 2), [1, 2])
        with self.assertRaisesRegex(ValueError, r"Y_dict\['labels'\]"):
            MmtlDataset(torch.zeros(3, 2), torch.ones(2))
        with self.assertRaisesRegex(ValueError, "needs an MmtlDataset"):
            MmtlDataLoader(DictDataset("d", "train", {}, {}))


if __name__ == "__main__":
    unittest.main()
