"""Online weak-supervision loss benchmark.

An MLP is trained for one epoch (a) through ``WeakSupervisionLoss`` on raw votes
(buffer_capacity=10000, update_frequency=10) and (b) by the same loop on
probabilistic labels precomputed by an offline LabelModel with a plain soft
cross-entropy. Target: (a) within 1.5x the time of (b). Both loops run in this
process, best of three after a warm-up; the offline label-model fit is not
counted in (b). Test accuracies of both models are printed too.

Usage: ``python benchmarks/online_loss.py [--quick]``
"""

import argparse
import time

import numpy as np
import torch
import torch.nn as nn

from metal.label_model import LabelModel, WeakSupervisionLoss


def make_data(n, m, features, seed=0):
    rng = np.random.default_rng(seed)
    Y = rng.integers(1, 3, n)
    accuracy = rng.uniform(0.6, 0.85, m)
    votes = np.where(rng.random((n, m)) < accuracy, Y[:, None], 3 - Y[:, None])
    L = np.where(rng.random((n, m)) < 0.3, votes, 0).astype(np.int64)
    centers = rng.normal(size=(2, features)).astype(np.float32)
    X = centers[Y - 1] + rng.normal(scale=7.0, size=(n, features)).astype(np.float32)
    return torch.from_numpy(X), L, Y


def make_mlp(features, seed):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(features, 256),
        nn.ReLU(),
        nn.Linear(256, 256),
        nn.ReLU(),
        nn.Linear(256, 2),
    )


def run_epoch(X, batch, loss_fn, seed=0):
    net = make_mlp(X.shape[1], seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    start = time.perf_counter()
    for begin in range(0, len(X), batch):
        rows = slice(begin, begin + batch)
        loss = loss_fn(net(X[rows]), rows)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start, net


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    args = parser.parse_args()
    n = 20_000 if args.quick else 200_000
    m, features, batch = 20, 100, 256
    X_all, L_all, Y_all = make_data(n + 20_000, m, features)
    X, L = X_all[:n], L_all[:n]
    X_test, Y_test = X_all[n:], Y_all[n:]

    label_model = LabelModel(k=2, verbose=False, seed=0)
    label_model.train_model(L)
    probs = torch.from_numpy(label_model.predict_proba(L)).float()

    def offline(outputs, rows):
        return -(probs[rows] * torch.log_softmax(outputs, dim=1)).sum(dim=1).mean()

    def online_fn():
        criterion = WeakSupervisionLoss(
            m, k=2, buffer_capacity=10_000, update_frequency=10, seed=0
        )
        return lambda outputs, rows: criterion(outputs, L[rows])

    run_epoch(X[: 20 * batch], batch, online_fn())  # warm-up
    run_epoch(X[: 20 * batch], batch, offline)
    t_online, t_offline = [], []
    for _ in range(3):
        t, net_online = run_epoch(X, batch, online_fn())
        t_online.append(t)
        t, net_offline = run_epoch(X, batch, offline)
        t_offline.append(t)
    ratio = min(t_online) / min(t_offline)

    def accuracy(net):
        with torch.no_grad():
            return float(np.mean(net(X_test).argmax(1).numpy() + 1 == Y_test))

    print(f"Online weak-supervision loss, one epoch, n={n:,}, m={m}, batch={batch}")
    print(f"  plain soft cross-entropy on precomputed labels: {min(t_offline):.3f} s")
    print(f"  WeakSupervisionLoss (capacity 10000, every 10): {min(t_online):.3f} s")
    print(
        f"  ratio {ratio:.2f}x (target <= 1.5x): {'PASS' if ratio <= 1.5 else 'FAIL'}"
    )
    print(
        f"  test accuracy: online {accuracy(net_online):.4f}, "
        f"offline label model {accuracy(net_offline):.4f}"
    )


if __name__ == "__main__":
    main()
