"""CUDA checks: models train on the GPU, use its memory, and agree with the CPU.

Every test skips cleanly when CUDA is not available.
"""

import tempfile
import unittest

import numpy as np
import torch
import torch.distributed

from metal.end_model import EndModel
from tests.test_distributed import LaunchedRunChecks

try:
    from metal.label_model import LabelModel
except ImportError:  # the label model may not be available in every checkout
    LabelModel = None

CUDA = torch.cuda.is_available()


def linear_data(n=3000, d=50, seed=0):
    """Features ``[n, d]`` and labels in {1, 2} from a random hyperplane."""
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d).astype(np.float32)
    w = rng.randn(d)
    Y = (X @ w > 0).astype(np.int64) + 1
    return X, Y


def label_matrix(n=4000, m=8, seed=0):
    """Labels in {1, 2} and an ``[n, m]`` label matrix of noisy, abstaining LFs."""
    rng = np.random.RandomState(seed)
    Y = rng.randint(1, 3, n)
    accuracies = rng.uniform(0.65, 0.9, m)
    L = np.zeros((n, m), dtype=np.int64)
    for j in range(m):
        votes = rng.rand(n) < 0.7
        correct = rng.rand(n) < accuracies[j]
        L[:, j] = np.where(votes, np.where(correct, Y, 3 - Y), 0)
    return L, Y


@unittest.skipUnless(CUDA, "CUDA is not available")
class EndModelGPUTestCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        X, Y = linear_data()
        self.train = (X[:2000], Y[:2000])
        self.valid = (X[2000:2500], Y[2000:2500])
        self.test = (X[2500:], Y[2500:])

    def tearDown(self):
        self.tmp.cleanup()

    def build(self, device, **kwargs):
        return EndModel(
            [50, 64, 2],
            seed=123,
            verbose=False,
            device=device,
            checkpoint_dir=self.tmp.name,
            **kwargs,
        )

    def test_trains_on_gpu_and_uses_its_memory(self):
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        em = self.build("cuda")
        self.assertEqual(next(em.parameters()).device.type, "cuda")
        em.train_model(self.train, valid_data=self.valid, n_epochs=3, batch_size=256)
        self.assertGreater(torch.cuda.max_memory_allocated(), before)
        self.assertEqual(next(em.parameters()).device.type, "cuda")
        self.assertGreater(em.score(self.test, verbose=False), 0.9)
        probs = em.predict_proba(self.test[0])
        self.assertIsInstance(probs, np.ndarray)

    def test_large_layer_memory(self):
        """A wide layer (as the original GPU test) really lives on the device."""
        torch.cuda.empty_cache()
        before = torch.cuda.memory_allocated()
        em = EndModel(
            [50, 100000, 2], seed=123, verbose=False, device="cuda", checkpoint=False
        )
        em.train_model(self.train, n_epochs=1, batch_size=256, l2=0.1)
        used_mb = (torch.cuda.memory_allocated() - before) / 2**20
        self.assertGreater(used_mb, 40)  # weights + Adam state, float32

    def test_gpu_matches_cpu(self):
        cpu = self.build("cpu")
        gpu = self.build("cuda:0")
        gpu.load_state_dict(cpu.state_dict())
        np.testing.assert_allclose(
            cpu.predict_proba(self.test[0]), gpu.predict_proba(self.test[0]), atol=1e-5
        )
        for model in (cpu, gpu):
            model.train_model(
                self.train,
                valid_data=self.valid,
                n_epochs=2,
                batch_size=128,
                checkpoint=False,
            )
        np.testing.assert_allclose(
            cpu.predict_proba(self.test[0]), gpu.predict_proba(self.test[0]), atol=1e-3
        )
        self.assertAlmostEqual(
            cpu.score(self.test, verbose=False),
            gpu.score(self.test, verbose=False),
            delta=0.01,
        )

    def test_integer_device_and_torch_device(self):
        for device in (0, torch.device("cuda")):
            em = self.build(device, checkpoint=False)
            em.train_model(self.train, n_epochs=1, batch_size=512)
            self.assertEqual(next(em.parameters()).device.type, "cuda")


@unittest.skipUnless(CUDA, "CUDA is not available")
@unittest.skipIf(LabelModel is None, "metal.label_model has no LabelModel")
class LabelModelGPUTestCase(unittest.TestCase):
    def fit(self, device):
        L, Y = label_matrix()
        model = LabelModel(k=2, seed=123, verbose=False, device=device)
        model.train_model(L, n_epochs=200)
        return model, L, Y

    def test_gpu_matches_cpu(self):
        cpu, L, Y = self.fit("cpu")
        gpu, _, _ = self.fit("cuda")
        self.assertEqual(next(gpu.parameters()).device.type, "cuda")
        np.testing.assert_allclose(
            cpu.predict_proba(L), gpu.predict_proba(L), atol=1e-3
        )
        self.assertGreater(gpu.score((L, Y), verbose=False), 0.8)


if __name__ == "__main__":
    unittest.main()


@unittest.skipUnless(
    torch.cuda.device_count() >= 2
    and torch.distributed.is_available()
    and torch.distributed.is_nccl_available(),
    "data-parallel NCCL training needs at least 2 CUDA devices",
)
class NCCLDataParallelTestCase(LaunchedRunChecks, unittest.TestCase):
    """Two NCCL ranks, one GPU each (``cuda:LOCAL_RANK``), train through every
    front door; the checks are those of the gloo run in
    ``tests/test_distributed.py``."""

    BACKEND = "nccl"
