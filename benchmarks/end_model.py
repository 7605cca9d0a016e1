"""EndModel's training overhead against a hand-written PyTorch loop.

Both train the same MLP (``[d, hidden, k]``, ReLU, same initial weights) on the
same probabilistic labels with Adam, the same batch size and epochs, in one
process. EndModel runs with its default logging (a log line's worth of metrics
and a validation pass every epoch, best-model checkpointing into a temporary
folder, the plateau scheduler); the plain loop does nothing but train. Runs
alternate between the two and the median times are compared.

Usage: ``python3 benchmarks/end_model.py [--quick] [--hidden N]``. Prints the
ratio and a PASS/FAIL line for the target (EndModel within 1.1x of the plain
loop). The default MLP is ``[1000, 100, 2]``; with ``--hidden 10`` (the README's
``[1000, 10, 2]``) the per-batch compute is so small (~0.4 ms) that the fixed
per-batch cost of module calls, the soft-label loss and the bookkeeping shows
(about 1.13x on the development machine).
"""

import argparse
import statistics
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from metal.end_model import EndModel

TARGET_RATIO = 1.1


def make_data(n_train: int, n_valid: int, d: int, k: int, seed: int = 0):
    """Float32 features ``[n, d]``, soft train labels ``[n, k]``, gold valid labels."""
    rng = np.random.RandomState(seed)
    X = rng.randn(n_train + n_valid, d).astype(np.float32)
    W = rng.randn(d, k).astype(np.float32)
    logits = X @ W / np.sqrt(d) * 3
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    Y_gold = probs.argmax(axis=1) + 1
    X = torch.from_numpy(X)
    return (
        (X[:n_train], torch.from_numpy(probs[:n_train].astype(np.float32))),
        (X[n_train:], torch.from_numpy(Y_gold[n_train:])),
    )


def build_end_model(dims, n_epochs: int, batch_size: int, checkpoint_dir: str):
    return EndModel(
        dims,
        seed=123,
        verbose=False,
        n_epochs=n_epochs,
        batch_size=batch_size,
        checkpoint_dir=checkpoint_dir,
    )


def time_end_model(dims, train, valid, n_epochs, batch_size) -> float:
    with tempfile.TemporaryDirectory() as folder:
        model = build_end_model(dims, n_epochs, batch_size, folder)
        torch.manual_seed(0)
        start = time.perf_counter()
        model.train_model(train, valid_data=valid)
        return time.perf_counter() - start


def plain_network(dims) -> nn.Module:
    """The same architecture and initial weights as the EndModel."""
    with tempfile.TemporaryDirectory() as folder:
        reference = build_end_model(dims, 1, 32, folder)
    net = nn.Sequential(
        nn.Linear(dims[0], dims[1]), nn.ReLU(), nn.Linear(dims[1], dims[2])
    )
    net[0].load_state_dict(reference.network[1][0].state_dict())
    net[2].load_state_dict(reference.network[2].state_dict())
    return net


def time_plain_loop(dims, train, n_epochs, batch_size) -> float:
    net = plain_network(dims)
    X, Y = train
    optimizer = torch.optim.Adam(net.parameters(), lr=0.01, betas=(0.9, 0.999))
    torch.manual_seed(0)
    start = time.perf_counter()
    net.train()
    for _ in range(n_epochs):
        order = torch.randperm(X.shape[0])
        for begin in range(0, X.shape[0], batch_size):
            index = order[begin : begin + batch_size]
            optimizer.zero_grad()
            loss = F.cross_entropy(net(X[index]), Y[index])
            loss.backward()
            optimizer.step()
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--hidden", type=int, default=100, help="hidden layer width")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.quick:
        n_train, n_valid, d, epochs, repeats = 2000, 200, 100, 2, 2
    else:
        n_train, n_valid, d, epochs, repeats = 10000, 1000, 1000, 3, args.repeats
    dims, batch_size = [d, args.hidden, 2], 32
    train, valid = make_data(n_train, n_valid, d, dims[-1])
    print(
        f"MLP {dims}, {n_train} train / {n_valid} valid examples, batch {batch_size}, "
        f"{epochs} epochs, Adam, {repeats} alternating runs each (1 thread)"
    )
    time_end_model(dims, train, valid, 1, batch_size)  # warm-up
    time_plain_loop(dims, train, 1, batch_size)
    em_times, plain_times = [], []
    for _ in range(repeats):
        em_times.append(time_end_model(dims, train, valid, epochs, batch_size))
        plain_times.append(time_plain_loop(dims, train, epochs, batch_size))
    em, plain = statistics.median(em_times), statistics.median(plain_times)
    ratio = em / plain
    print(f"EndModel.train_model: {em:.3f} s (median; runs {_fmt(em_times)})")
    print(f"plain PyTorch loop:   {plain:.3f} s (median; runs {_fmt(plain_times)})")
    print(
        f"ratio EndModel / plain loop: {ratio:.3f}x (target <= {TARGET_RATIO}x; "
        f"best-of-runs ratio {min(em_times) / min(plain_times):.3f}x)"
    )
    if args.quick:
        print("quick run: sizes too small to judge the target")
    else:
        verdict = "PASS" if ratio <= TARGET_RATIO else "FAIL"
        print(f"{verdict}: EndModel training overhead target")
    return 0


def _fmt(times) -> str:
    return ", ".join(f"{t:.3f}" for t in times)


if __name__ == "__main__":
    sys.exit(main())
