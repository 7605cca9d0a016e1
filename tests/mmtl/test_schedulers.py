import random
import unittest

import torch

from metal.mmtl import DictDataLoader, DictDataset
from metal.mmtl.schedulers import (
    SequentialScheduler,
    ShuffledScheduler,
    batch_schedulers,
)


def numbered_loaders():
    """Three loaders whose batches hold consecutive numbers 0..n-1 overall."""
    loaders, start = [], 0
    for size in (6, 4, 8):
        values = torch.arange(start, start + size)
        dataset = DictDataset(f"d{start}", "train", {"x": values}, {"task": values})
        loaders.append(DictDataLoader(dataset, batch_size=2))
        start += size
    return loaders


def first_values(batches):
    return [int(batch[0]["x"][0]) for batch, _ in batches]


class SchedulersTest(unittest.TestCase):
    def test_sequential_is_in_order(self):
        values = first_values(SequentialScheduler().get_batches(numbered_loaders()))
        self.assertEqual(values, sorted(values))
        self.assertEqual(len(values), 9)

    def test_shuffled_is_not_in_order_but_complete(self):
        random.seed(123)
        loaders = numbered_loaders()
        batches = list(ShuffledScheduler().get_batches(loaders))
        values = first_values(batches)
        self.assertNotEqual(values, sorted(values))
        self.assertEqual(sorted(values), list(range(0, 18, 2)))
        for batch, loader in batches:
            self.assertIn(int(batch[0]["x"][0]), loader.dataset.X_dict["x"].tolist())

    def test_registry(self):
        self.assertEqual(set(batch_schedulers), {"sequential", "shuffled"})


if __name__ == "__main__":
    unittest.main()
