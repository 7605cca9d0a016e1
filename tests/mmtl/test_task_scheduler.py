import random
import unittest

import torch

from metal.mmtl import Payload
from metal.mmtl.task_scheduler import PayloadScheduler, ProportionalScheduler


class ProportionalSchedulerTest(unittest.TestCase):
    def test_every_batch_once_in_random_interleaving(self):
        payloads = [
            Payload.from_tensors(
                f"P{i}_{split}",
                torch.arange(n).float().view(-1, 1) + 100 * i,
                torch.ones(n).long(),
                f"task{i}",
                split,
                batch_size=2,
            )
            for i, (n, split) in enumerate(((8, "train"), (6, "train"), (4, "valid")))
        ]
        random.seed(1)
        scheduler = ProportionalScheduler(None, payloads, "train")
        self.assertIsInstance(scheduler, PayloadScheduler)
        batches = list(scheduler.get_batches(payloads, "train"))
        self.assertEqual(len(batches), 4 + 3)
        names = [name for _, name, _ in batches]
        self.assertEqual(sorted(set(names)), ["P0_train", "P1_train"])
        self.assertNotEqual(names, sorted(names))
        for (X, Y), name, labels_to_tasks in batches:
            self.assertEqual(int(X["data"][0, 0]) // 100, int(name[1]))
            self.assertEqual(labels_to_tasks, {"labels": f"task{name[1]}"})


if __name__ == "__main__":
    unittest.main()
