import math
import unittest

import numpy as np
import torch

from metal.contrib.modules.sparse_linear_module import SparseLinearModule


class SparseLinearModuleTest(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(0)

    def test_matches_dense_linear_map(self):
        module = SparseLinearModule(embed_size=3, vocab_size=10, padding_idx=0)
        X = torch.tensor([[4, 7, 0, 0], [1, 2, 3, 9], [5, 0, 0, 0]])
        one_hot = torch.zeros(3, 10)
        for row, ids in enumerate(X):
            for i in ids:
                if i != 0:
                    one_hot[row, i] += 1
        expected = one_hot @ module.W.weight + module.b
        torch.testing.assert_close(module(X), expected)
        self.assertEqual(tuple(module(X).shape), (3, 3))

    def test_initialisation(self):
        module = SparseLinearModule(embed_size=4, vocab_size=25, padding_idx=3)
        bound = 1 / math.sqrt(25)
        weight = module.W.weight.detach()
        self.assertEqual(weight[3].abs().sum().item(), 0.0)
        self.assertLessEqual(weight.abs().max().item(), bound)
        self.assertLessEqual(module.b.abs().max().item(), bound)
        self.assertEqual(tuple(module.b.shape), (4,))
        self.assertTrue(module.W.sparse)
        self.assertEqual(module.vocab_size, 25)
        self.assertEqual(module.padding_idx, 3)
        with torch.no_grad():
            module.W.weight.fill_(1.0)
        module.reset_parameters()
        self.assertEqual(module.W.weight[3].abs().sum().item(), 0.0)
        self.assertLessEqual(module.W.weight.abs().max().item(), bound)

    def test_sparse_gradient_skips_padding(self):
        module = SparseLinearModule(embed_size=2, vocab_size=6)
        module(torch.tensor([[1, 2, 0], [2, 0, 0]])).sum().backward()
        grad = module.W.weight.grad
        self.assertTrue(grad.is_sparse)
        dense = grad.to_dense()
        self.assertEqual(dense[0].abs().sum().item(), 0.0)
        torch.testing.assert_close(dense[2], torch.tensor([2.0, 2.0]))
        torch.testing.assert_close(module.b.grad, torch.tensor([2.0, 2.0]))

    def test_numpy_integer_sizes(self):
        module = SparseLinearModule(np.int64(2), np.int64(5), padding_idx=np.int32(1))
        self.assertEqual((module.vocab_size, module.padding_idx), (5, 1))
        self.assertEqual(tuple(module(torch.tensor([[1, 4]])).shape), (1, 2))

    def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, "vocab_size"):
            SparseLinearModule(2, 0)
        with self.assertRaisesRegex(ValueError, "embed_size"):
            SparseLinearModule(2.5, 3)
        with self.assertRaisesRegex(
            ValueError, "padding_idx must be an integer in 0..2"
        ):
            SparseLinearModule(2, 3, padding_idx=3)
        module = SparseLinearModule(2, 3)
        with self.assertRaisesRegex(ValueError, r"\[n, h\]"):
            module(torch.tensor([1, 2]))


if __name__ == "__main__":
    unittest.main()
