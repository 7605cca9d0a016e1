import contextlib
import io
import unittest

import torch

from metal.mmtl import MmtlDataLoader, MmtlDataset, Payload


class PayloadTest(unittest.TestCase):
    def setUp(self):
        self.X = torch.zeros(6, 2)
        self.Y = torch.LongTensor([1, 2, 1, 2, 0, 1])
        self.payload = Payload.from_tensors(
            "Payload0_train", self.X, self.Y, "CircleTask", "train", batch_size=2
        )

    def test_from_tensors_and_repr(self):
        self.assertEqual(
            repr(self.payload),
            "Payload(Payload0_train: labels_to_tasks=[{'labels': 'CircleTask'}], "
            "split=train)",
        )
        self.assertIsInstance(self.payload.data_loader, MmtlDataLoader)
        self.assertEqual(self.payload.data_loader.batch_size, 2)
        self.assertTrue(
            torch.equal(self.payload.data_loader.dataset.Y_dict["labels"], self.Y)
        )

    def test_add_labelset_from_list_and_fn(self):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            self.payload.add_labelset(
                "SquareTask",
                "squares",
                label_list=torch.LongTensor([[1], [0], [2], [2], [1], [0]]),
            )
        self.assertIn("4/6", out.getvalue())
        self.assertEqual(self.payload.labels_to_tasks["squares"], "SquareTask")
        self.payload.add_labelset(
            "CircleTask",
            "copies",
            label_fn=lambda example: example[1]["labels"].view(1),
            verbose=False,
        )
        Y_dict = self.payload.data_loader.dataset.Y_dict
        self.assertTrue(torch.equal(Y_dict["copies"].view(-1), self.Y))
        _, Y_batch = next(iter(self.payload.data_loader))
        self.assertEqual(set(Y_batch), {"labels", "squares", "copies"})

    def test_add_labelset_errors(self):
        with self.assertRaisesRegex(ValueError, "exactly one"):
            self.payload.add_labelset("T", "l")
        with self.assertRaisesRegex(ValueError, "torch.Tensor"):
            self.payload.add_labelset("T", "l", label_list=[[1]] * 6)
        with self.assertRaisesRegex(ValueError, r"\[n, \?\]"):
            self.payload.add_labelset("T", "l", label_list=torch.ones(6).long())
        with self.assertRaisesRegex(ValueError, "6 examples"):
            self.payload.add_labelset("T", "l", label_list=torch.ones(5, 1).long())

    def test_remove_labelset(self):
        self.payload.add_labelset(
            "T", "extra", label_list=torch.ones(6, 1).long(), verbose=False
        )
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            self.payload.remove_labelset("extra")
        self.assertIn("extra", out.getvalue())
        self.assertNotIn("extra", self.payload.labels_to_tasks)
        self.assertNotIn("extra", self.payload.data_loader.dataset.Y_dict)
        with self.assertRaisesRegex(ValueError, "no label set 'extra'"):
            self.payload.remove_labelset("extra", verbose=False)

    def test_routing_must_name_existing_label_sets(self):
        loader = MmtlDataLoader(MmtlDataset(self.X, self.Y))
        with self.assertRaisesRegex(ValueError, "'missing'"):
            Payload("p", loader, {"missing": "CircleTask"}, "train")


if __name__ == "__main__":
    unittest.main()
