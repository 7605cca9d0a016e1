import unittest

import numpy as np
import torch
import torch.nn as nn

from metal.mmtl import (
    MetalModel,
    MmtlDataLoader,
    MmtlDataset,
    MultitaskTrainer,
    Payload,
    TokenClassificationTask,
)
from metal.mmtl.modules import MetalModule
from metal.mmtl.token_task import (
    tokenwise_accuracy,
    tokenwise_ce_loss,
    tokenwise_softmax,
)
from metal.utils import padded_tensor
from tests.mmtl.helpers import OneThreadTestCase


class TokenHead(MetalModule):
    """Embeds token ids (0 = padding) and classifies each token."""

    def __init__(self, vocab=6, k=3):
        super().__init__()
        self.embed = nn.Embedding(vocab, 8)
        self.out = nn.Linear(8, k)

    def forward(self, X):
        ids = X["data"].long()
        return self.out(self.embed(ids)), (ids != 0).long()


class TokenFunctionsTest(unittest.TestCase):
    def setUp(self):
        self.logits = torch.tensor(
            [[[4.0, 0.0], [0.0, 4.0], [0.0, 0.0]], [[0.0, 4.0], [9.0, 9.0], [9.0, 9.0]]]
        )
        self.mask = torch.tensor([[1, 1, 1], [1, 0, 0]])

    def test_softmax_drops_padding(self):
        probs = tokenwise_softmax((self.logits, self.mask))
        self.assertEqual([p.shape[0] for p in probs], [3, 1])

    def test_loss_ignores_padding(self):
        gold = torch.tensor([[1, 2, 1], [2, 0, 0]])
        loss = tokenwise_ce_loss((self.logits, self.mask), gold)
        real = torch.nn.functional.cross_entropy(
            torch.stack(
                [
                    self.logits[0, 0],
                    self.logits[0, 1],
                    self.logits[0, 2],
                    self.logits[1, 0],
                ]
            ),
            torch.tensor([0, 1, 0, 1]),
        )
        self.assertAlmostEqual(loss.item(), real.item(), 6)

    def test_accuracy_truncates_padded_gold(self):
        gold = [np.array([1, 2, 1]), np.array([2, 0, 0])]
        preds = [np.array([1, 2, 2]), np.array([2])]
        self.assertAlmostEqual(
            tokenwise_accuracy(gold, preds)["token_acc"], (2 / 3 + 1) / 2
        )


class TokenTaskTrainingTest(OneThreadTestCase):
    def test_learns_token_labels(self):
        torch.manual_seed(0)
        rng = np.random.RandomState(0)
        rows = [rng.randint(1, 6, size=rng.randint(2, 5)) for _ in range(60)]
        X = [torch.LongTensor(r) for r in rows]
        # labels 1..2, right-padded with 0 to one tensor [n, max_len]
        Y = padded_tensor([torch.LongTensor((r > 3).astype(int) + 1) for r in rows])
        dataset = MmtlDataset({"data": X}, {"tokens": Y})
        payload = Payload(
            "tokens_train",
            MmtlDataLoader(dataset, batch_size=8),
            {"tokens": "Tagger"},
            "train",
        )
        task = TokenClassificationTask("Tagger", head_module=TokenHead(k=2))
        model = MetalModel([task], verbose=False, device=-1, seed=1)
        trainer = MultitaskTrainer(
            verbose=False, n_epochs=15, lr=0.05, checkpoint=False
        )
        metrics = trainer.train_model(model, [payload])
        self.assertGreater(metrics["Tagger/tokens_train/tokens/token_acc"], 0.95)
        probs = model.predict_probs(payload)
        self.assertEqual(probs[0].shape, (len(rows[0]), 2))


if __name__ == "__main__":
    unittest.main()
