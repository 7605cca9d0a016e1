import unittest

import torch
import torch.nn as nn

from metal.end_model import SoftCrossEntropyLoss
from metal.utils import pred_to_prob


class SoftCrossEntropyLossTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.manual_seed(1)

    def test_sce_equals_ce(self):
        # All correct predictions
        Y = torch.tensor([1, 2, 3], dtype=torch.long)
        Y_s = pred_to_prob(Y, k=4).float()
        for reduction in ["none", "sum", "mean"]:
            sce = SoftCrossEntropyLoss(reduction=reduction)
            ce = nn.CrossEntropyLoss(reduction=reduction)
            for _ in range(10):
                Y_p = torch.randn(Y_s.shape)
                Y_p = Y_p / Y_p.sum(dim=1).reshape(-1, 1)
                if reduction == "none":
                    self.assertTrue((sce(Y_p, Y_s) == ce(Y_p, Y - 1)).all())
                else:
                    self.assertAlmostEqual(
                        sce(Y_p, Y_s).item(), ce(Y_p, Y - 1).item(), places=5
                    )

    def test_sce_equals_weighted_ce_exactly(self):
        Y = torch.tensor([1, 2, 3, 4, 2], dtype=torch.long)
        Y_s = pred_to_prob(Y, k=4).float()
        weight = torch.tensor([1.0, 2.0, 0.5, 3.0])
        sce = SoftCrossEntropyLoss(weight=weight, reduction="none")
        ce = nn.CrossEntropyLoss(weight=weight, reduction="none")
        for _ in range(10):
            Y_p = torch.randn(Y_s.shape) * 5
            self.assertTrue(torch.equal(sce(Y_p, Y_s), ce(Y_p, Y - 1)))

    def test_perfect_predictions(self):
        Y = torch.tensor([1, 2, 3], dtype=torch.long)
        target = pred_to_prob(Y, k=4)
        Y_p = (pred_to_prob(Y, k=4).float() - 0.5) * 200
        sce = SoftCrossEntropyLoss()
        self.assertAlmostEqual(sce(Y_p, target).item(), 0.0, places=7)

    def test_prob_labels(self):
        loss_fn = SoftCrossEntropyLoss()
        # Stronger prediction should have lower loss
        Y = torch.tensor([[0.1, 0.9], [0.5, 0.5]])
        Y_p1 = torch.tensor([[0.1, 0.2], [1.0, 0.0]])
        Y_p2 = torch.tensor([[0.1, 0.3], [1.0, 0.0]])
        self.assertLess(loss_fn(Y_p2, Y), loss_fn(Y_p1, Y))
        # Identical predictions should have same loss
        Y = torch.tensor([[0.1, 0.9], [0.5, 0.5]])
        Y_p1 = torch.tensor([[0.1, 0.2], [1.0, 0.0]])
        Y_p2 = torch.tensor([[0.1, 0.2], [0.0, 1.0]])
        # Mirrored predictions: exactly equal per row; equal to float precision
        # after the mean (torch's fused mean sums all entries in one pass).
        per_row = SoftCrossEntropyLoss(reduction="none")
        self.assertTrue(torch.equal(per_row(Y_p2, Y), per_row(Y_p1, Y)))
        self.assertAlmostEqual(
            loss_fn(Y_p2, Y).item(), loss_fn(Y_p1, Y).item(), places=6
        )

    def test_loss_weights(self):
        # All incorrect predictions
        Y = torch.tensor([1, 1, 2], dtype=torch.long)
        Y_s = pred_to_prob(Y, k=3).float()
        Y_p = torch.tensor(
            [[-100.0, 100.0, -100.0], [-100.0, 100.0, -100.0], [-100.0, 100.0, -100.0]]
        )
        weight1 = torch.tensor([1, 2, 1], dtype=torch.float)
        weight2 = torch.tensor([10, 20, 10], dtype=torch.float)
        ce1 = nn.CrossEntropyLoss(weight=weight1, reduction="none")
        sce1 = SoftCrossEntropyLoss(weight=weight1)
        sce2 = SoftCrossEntropyLoss(weight=weight2)
        self.assertAlmostEqual(
            float(ce1(Y_p, Y - 1).mean()), float(sce1(Y_p, Y_s)), places=3
        )
        self.assertAlmostEqual(
            float(sce1(Y_p, Y_s)) * 10, float(sce2(Y_p, Y_s)), places=3
        )

    def test_weight_is_a_buffer(self):
        loss = SoftCrossEntropyLoss(weight=[1, 2])
        self.assertIn("weight", loss.state_dict())
        self.assertEqual(loss.weight.dtype, torch.float32)
        self.assertNotIn("weight", SoftCrossEntropyLoss().state_dict())

    def test_vectorised_formula_and_gradient(self):
        logits = torch.randn(6, 3, requires_grad=True)
        target = torch.softmax(torch.randn(6, 3), dim=1)
        weight = torch.tensor([0.5, 1.0, 2.0])
        loss = SoftCrossEntropyLoss(weight=weight, reduction="sum")(logits, target)
        expected = -(target * weight * torch.log_softmax(logits, dim=1)).sum()
        self.assertAlmostEqual(loss.item(), expected.item(), places=5)
        loss.backward()
        self.assertEqual(logits.grad.shape, (6, 3))

    def test_bad_reduction_and_shapes(self):
        with self.assertRaisesRegex(ValueError, "reduction"):
            SoftCrossEntropyLoss(reduction="max")(torch.zeros(2, 2), torch.zeros(2, 2))
        with self.assertRaisesRegex(ValueError, "same shape"):
            SoftCrossEntropyLoss()(torch.zeros(2, 2), torch.zeros(2, 3))


if __name__ == "__main__":
    unittest.main()
