"""Data-parallel training (``metal.distributed``).

The single-process pieces are tested in this process; ``DistributedTrainingTest``
launches ``tests/distributed_worker.py`` on two gloo processes on 127.0.0.1
(``torch.distributed.run``) once and checks what each rank recorded, for
EndModel (``(X, Y)`` tuples and a DataLoader), the mmtl ``Trainer.fit`` and
``MultitaskTrainer.train_model``.
"""

import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import unittest

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

from metal._data import TensorBatches
from metal.distributed import (
    DataParallel,
    ShardedTensorBatches,
    all_gather_objects,
    broadcast_object,
    data_parallel,
    get_rank,
    get_world_size,
    is_distributed,
    is_main_process,
    rank_device,
    shard_indices,
    shard_loader,
)
from metal.end_model import EndModel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N_TRAIN = 240  # tests/distributed_worker.py's training set size
WORLD = 2
LAUNCH_TIMEOUT_S = 240


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _separable(n: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    X = torch.rand(n, 2, generator=generator) * 2 - 1
    Y = (X[:, 0] + X[:, 1] > 0).long() + 1
    return X, Y


class SingleProcessTest(unittest.TestCase):
    """Without a process group nothing changes."""

    def test_no_group(self):
        self.assertFalse(is_distributed())
        self.assertEqual((get_rank(), get_world_size()), (0, 1))
        self.assertTrue(is_main_process())
        self.assertIsNone(data_parallel())
        self.assertEqual(rank_device("cpu"), torch.device("cpu"))
        self.assertEqual(broadcast_object({"a": 1}), {"a": 1})
        self.assertEqual(all_gather_objects(3), [3])
        with self.assertRaisesRegex(ValueError, "process group"):
            DataParallel()

    def _train(self) -> dict:
        X, Y = _separable(200, 0)
        model = EndModel([2, 8, 2], seed=3, verbose=False)
        model.train_model((X, Y), valid_data=(X, Y), n_epochs=2, batch_size=16)
        return model.state_dict()

    def test_group_of_one_trains_exactly_as_without(self):
        reference = self._train()
        with tempfile.TemporaryDirectory() as tmp:
            dist.init_process_group(
                "gloo",
                init_method="file://" + os.path.join(tmp, "store"),
                rank=0,
                world_size=1,
            )
            try:
                self.assertFalse(is_distributed())
                in_group = self._train()
            finally:
                dist.destroy_process_group()
        for name, tensor in reference.items():
            self.assertTrue(torch.equal(tensor, in_group[name]), name)


class ShardingTest(unittest.TestCase):
    def test_shards_are_disjoint_and_cover(self):
        for n in (10, 11, 1, 7):
            for shuffle in (True, False):
                shards = [
                    shard_indices(n, 0, 5, shuffle, rank, 3).tolist()
                    for rank in range(3)
                ]
                self.assertEqual({len(s) for s in shards}, {math.ceil(n / 3)})
                flat = sum(shards, [])
                self.assertEqual(set(flat), set(range(n)))
                # only the padding repeats
                self.assertEqual(len(flat) - len(set(flat)), len(flat) - n)

    def test_epochs_reshuffle_deterministically(self):
        first = shard_indices(100, 0, 5, True, 0, 2)
        self.assertTrue(torch.equal(first, shard_indices(100, 0, 5, True, 0, 2)))
        self.assertFalse(torch.equal(first, shard_indices(100, 1, 5, True, 0, 2)))
        self.assertFalse(torch.equal(first, shard_indices(100, 0, 6, True, 0, 2)))
        fixed = shard_indices(9, 3, 5, False, 1, 2).tolist()
        self.assertEqual(fixed, [1, 3, 5, 7, 0])

    def test_bad_rank(self):
        with self.assertRaisesRegex(ValueError, "rank"):
            shard_indices(10, 0, 0, True, 2, 2)

    def test_sharded_tensor_batches_in_one_process(self):
        X = torch.arange(10.0).reshape(10, 1)
        base = TensorBatches((X, X), batch_size=4, shuffle=True)
        sharded = ShardedTensorBatches(base, seed=1)
        self.assertEqual(len(sharded), 3)
        epoch0 = torch.cat([b[0] for b in sharded]).reshape(-1).tolist()
        sharded.set_epoch(1)
        epoch1 = torch.cat([b[0] for b in sharded]).reshape(-1).tolist()
        self.assertEqual(sorted(epoch0), list(range(10)))
        self.assertEqual(sorted(epoch1), list(range(10)))
        self.assertNotEqual(epoch0, epoch1)
        with self.assertRaisesRegex(ValueError, "batches"):
            ShardedTensorBatches([X], seed=1)

    def test_shard_loader_keeps_settings(self):
        def collate(items):
            return torch.stack([x for x, in items])

        dataset = TensorDataset(torch.arange(10.0))
        loader = DataLoader(dataset, batch_size=3, shuffle=True, collate_fn=collate)
        sharded = shard_loader(loader, seed=2)
        self.assertEqual(sharded.batch_size, 3)
        self.assertIs(sharded.collate_fn, collate)
        self.assertEqual(sharded.sampler.seed, 2)
        self.assertTrue(sharded.sampler.shuffle)
        self.assertEqual(sorted(torch.cat(list(sharded)).tolist()), list(range(10)))

    def test_unshardable_loaders(self):
        class Stream(IterableDataset):
            def __iter__(self):
                return iter(range(3))

        with self.assertRaisesRegex(ValueError, "IterableDataset"):
            shard_loader(DataLoader(Stream()), seed=0)
        dataset = TensorDataset(torch.arange(4.0))
        with self.assertRaisesRegex(ValueError, "batch_sampler"):
            shard_loader(DataLoader(dataset, batch_sampler=[[0, 1], [2, 3]]), seed=0)
        with self.assertRaisesRegex(ValueError, "loader"):
            shard_loader([1, 2], seed=0)


class LaunchedRunChecks:
    """Launches two ranks of ``tests/distributed_worker.py`` (backend
    ``BACKEND``) once and checks what they recorded; mixed into a TestCase
    (here for gloo, in ``tests/gpu`` for NCCL)."""

    BACKEND = "gloo"

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        out = cls.tmp.name
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            f"--nproc_per_node={WORLD}",
            "--nnodes=1",
            "--master_addr=127.0.0.1",
            f"--master_port={_free_port()}",
            "-m",
            "tests.distributed_worker",
            out,
            cls.BACKEND,
        ]
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT)
        done = subprocess.run(
            command,
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=LAUNCH_TIMEOUT_S,
        )
        if done.returncode != 0:
            raise AssertionError(
                f"the distributed worker failed:\n{done.stdout[-3000:]}\n"
                f"{done.stderr[-5000:]}"
            )
        cls.ranks = []
        for rank in range(WORLD):
            with open(os.path.join(out, f"rank{rank}.json")) as f:
                cls.ranks.append(json.load(f))
        cls.stdout = []
        for rank in range(WORLD):
            with open(os.path.join(out, f"stdout_r{rank}.txt")) as f:
                cls.stdout.append(f.read())

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    SCENARIOS = ("end_model_tuples", "end_model_loader", "trainer", "multitask_trainer")

    def _each(self):
        for name in self.SCENARIOS:
            with self.subTest(name):
                yield name, [rank[name] for rank in self.ranks]

    def _epochs(self, seen):
        per_rank = math.ceil(N_TRAIN / WORLD)
        self.assertEqual(len(seen) % per_rank, 0)
        return [seen[i : i + per_rank] for i in range(0, len(seen), per_rank)]

    def test_world(self):
        self.assertEqual([r["world_size"] for r in self.ranks], [WORLD] * WORLD)

    def test_gradients_are_averaged_over_ranks(self):
        # One SGD step with 4 examples per rank equals the step on all 8.
        for rank in self.ranks:
            result = rank["gradient_average"]
            for name, expected in result["reference"].items():
                actual = result["weights"][name]
                for a, b in zip(actual, expected):
                    self.assertAlmostEqual(a, b, places=5, msg=name)

    def test_shards_are_disjoint_cover_and_reshuffle(self):
        for name, ranks in self._each():
            seen = [r["seen"] for r in ranks]
            streams = [{"all": s} for s in seen] if isinstance(seen[0], list) else seen
            for key in streams[0]:
                epochs = [self._epochs(s[key]) for s in streams]
                self.assertGreaterEqual(len(epochs[0]), 3)
                self.assertEqual(len({len(e) for e in epochs}), 1)
                for epoch in range(len(epochs[0])):
                    parts = [set(e[epoch]) for e in epochs]
                    self.assertEqual(set.intersection(*parts), set(), key)
                    self.assertEqual(set.union(*parts), set(range(N_TRAIN)), key)
                # each rank sees a new shard (in a new order) every epoch
                self.assertNotEqual(epochs[0][0], epochs[0][1], key)

    def test_same_weights_metrics_and_best_model_on_every_rank(self):
        for name, ranks in self._each():
            first, *others = ranks
            self.assertGreaterEqual(len(first["logs"]), 3)
            self.assertTrue(any("valid" in m for log in first["logs"] for m in log))
            for other in others:
                self.assertEqual(other["weights"], first["weights"])
                self.assertEqual(other["logs"], first["logs"])
                self.assertEqual(other["result"], first["result"])
            if "best_file_weights" in first:
                self.assertTrue(first["result"]["best_restored"])
                self.assertEqual(first["best_file_weights"], first["weights"])

    def test_only_rank_zero_writes_and_prints(self):
        for name, ranks in self._each():
            for other in ranks[1:]:
                self.assertEqual(other["files"], {"ckpt": [], "logs": []})
            if name != "end_model_loader":
                self.assertTrue(ranks[0]["files"]["ckpt"])
                self.assertTrue(ranks[0]["files"]["logs"])
        self.assertIn("Finished Training", self.stdout[0])
        self.assertIn("Beginning train loop", self.stdout[0])
        self.assertEqual(self.stdout[1], "")

    def test_models_learn(self):
        for name, ranks in self._each():
            for rank in ranks:
                self.assertGreater(rank["accuracy"], 0.85)


@unittest.skipUnless(dist.is_available(), "torch.distributed is not available")
class DistributedTrainingTest(LaunchedRunChecks, unittest.TestCase):
    """Two gloo ranks on the CPU train through every front door (one launch)."""


@unittest.skipUnless(dist.is_available(), "torch.distributed is not available")
class TutorialTest(unittest.TestCase):
    def test_tutorial_trains_on_two_ranks(self):
        tutorial = os.path.join(ROOT, "tutorials", "distributed_end_model.py")
        with tempfile.TemporaryDirectory() as tmp:
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "torch.distributed.run",
                    f"--nproc_per_node={WORLD}",
                    "--master_addr=127.0.0.1",
                    f"--master_port={_free_port()}",
                    tutorial,
                    os.path.join(tmp, "checkpoints"),
                ],
                cwd=tmp,
                env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT),
                capture_output=True,
                text=True,
                timeout=LAUNCH_TIMEOUT_S,
            )
            self.assertEqual(done.returncode, 0, done.stderr[-3000:])
            self.assertEqual(os.listdir(tmp), ["checkpoints"])
        lines = done.stdout.splitlines()
        main = [line for line in lines if line.startswith("test accuracy")]
        other = [line for line in lines if line.startswith("rank 1 test accuracy")]
        self.assertEqual(len(main), 1)
        self.assertEqual(len(other), 1)
        self.assertEqual(main[0].split(": ")[1], other[0].split(": ")[1])
        self.assertGreater(float(main[0].split(": ")[1]), 0.9)
        self.assertEqual(sum("Finished Training" in line for line in lines), 1)


if __name__ == "__main__":
    unittest.main()
