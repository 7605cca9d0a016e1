import unittest

import torch
import torch.nn.functional as F

from metal.mmtl import cross_entropy_with_probs


class CrossEntropyWithProbsTest(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(0)
        self.logits = torch.randn(6, 3)
        self.labels = torch.tensor([0, 1, 2, 2, 1, 0])
        self.onehot = F.one_hot(self.labels, 3).float()

    def test_equals_hard_cross_entropy_on_one_hot(self):
        for reduction in ("none", "sum", "mean"):
            soft = cross_entropy_with_probs(
                self.logits, self.onehot, reduction=reduction
            )
            hard = F.cross_entropy(self.logits, self.labels, reduction=reduction)
            self.assertTrue(torch.allclose(soft, hard, atol=1e-6), reduction)

    def test_confident_logits_cost_nothing(self):
        logits = torch.tensor([[100.0, -100.0], [-100.0, 100.0]])
        target = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        self.assertAlmostEqual(cross_entropy_with_probs(logits, target).item(), 0.0, 5)

    def test_better_logits_lower_loss(self):
        target = torch.tensor([[0.8, 0.2]])
        good = cross_entropy_with_probs(torch.tensor([[2.0, 0.0]]), target)
        bad = cross_entropy_with_probs(torch.tensor([[0.0, 2.0]]), target)
        self.assertLess(good.item(), bad.item())

    def test_symmetric_cases_equal(self):
        a = cross_entropy_with_probs(
            torch.tensor([[1.0, 0.0]]), torch.tensor([[0.3, 0.7]])
        )
        b = cross_entropy_with_probs(
            torch.tensor([[0.0, 1.0]]), torch.tensor([[0.7, 0.3]])
        )
        self.assertAlmostEqual(a.item(), b.item(), 6)

    def test_bad_reduction(self):
        with self.assertRaisesRegex(ValueError, "Keyword 'reduction' must be"):
            cross_entropy_with_probs(self.logits, self.onehot, reduction="bad")

    def test_class_weights(self):
        ones = torch.ones(3)
        self.assertAlmostEqual(
            cross_entropy_with_probs(self.logits, self.onehot, weight=ones).item(),
            cross_entropy_with_probs(self.logits, self.onehot).item(),
            6,
        )
        weight = torch.tensor([1.0, 2.0, 3.0])
        base = cross_entropy_with_probs(self.logits, self.onehot, weight=weight)
        scaled = cross_entropy_with_probs(self.logits, self.onehot, weight=weight * 10)
        self.assertAlmostEqual(scaled.item(), base.item() * 10, 3)
        hard = F.cross_entropy(
            self.logits, self.labels, weight=weight, reduction="none"
        )
        self.assertAlmostEqual(base.item(), hard.mean().item(), 5)


if __name__ == "__main__":
    unittest.main()
