"""Train an EndModel data-parallel with torch.distributed, on one machine.

Start two processes (ranks) on this machine's CPUs with ``torchrun``:

    torchrun --standalone --nproc_per_node=2 tutorials/distributed_end_model.py

(or, naming the rendezvous address yourself:
``python -m torch.distributed.run --nproc_per_node=2 --master_addr=127.0.0.1
--master_port=29500 tutorials/distributed_end_model.py``). Run with plain
``python`` it trains in one process, the same code unchanged. An optional
argument names the folder of the best model (default ``checkpoints``).

Once this script has called ``torch.distributed.init_process_group``,
``EndModel.train_model`` trains data-parallel: each rank trains on its own
half of the training set (reshuffled every epoch), gradients are averaged
over the ranks (DistributedDataParallel), validation runs on the whole
validation set, and only rank 0 prints, writes logs and saves checkpoints.
At the end every rank holds the same (best) model. ``batch_size`` is per rank:
two ranks step on twice as many examples per optimizer step.

With GPUs, use the NCCL backend and ``device="cuda"``: rank ``r`` then trains
on ``cuda:LOCAL_RANK``.
"""

import os
import sys

import numpy as np
import torch
import torch.distributed as dist

from metal.distributed import get_rank, is_main_process
from metal.end_model import EndModel

# The best model's folder: the first argument, else ./checkpoints.
CHECKPOINT_DIR = sys.argv[1] if len(sys.argv) > 1 else "checkpoints"


def make_data(n: int, d: int = 20, seed: int = 0):
    """Features ``[n, d]`` and labels in {1, 2} from a random hyperplane."""
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d).astype(np.float32)
    w = rng.randn(d).astype(np.float32)
    Y = (X @ w > 0).astype(np.int64) + 1
    return torch.from_numpy(X), torch.from_numpy(Y)


def main() -> None:
    launched = "WORLD_SIZE" in os.environ  # set by torchrun
    if launched:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        dist.init_process_group(backend)
    torch.set_num_threads(1)  # one core per rank

    X, Y = make_data(3000)
    train = (X[:2000], Y[:2000])
    valid = (X[2000:2500], Y[2000:2500])
    test = (X[2500:], Y[2500:])
    model = EndModel(
        [20, 32, 2],
        seed=123,
        device="cuda" if torch.cuda.is_available() else "cpu",
        verbose=is_main_process(),  # train_model silences the others itself
    )
    model.train_model(
        train,
        valid_data=valid,
        n_epochs=5,
        batch_size=64,
        lr=0.01,
        checkpoint_dir=CHECKPOINT_DIR,  # written by rank 0 only
    )
    accuracy = model.score(test, verbose=False)
    if is_main_process():
        print(f"test accuracy: {accuracy:.3f}")
    else:
        # Every rank ends with rank 0's best model, so it scores the same.
        print(f"rank {get_rank()} test accuracy: {accuracy:.3f}", flush=True)
    if launched:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
