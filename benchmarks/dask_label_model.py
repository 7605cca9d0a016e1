"""LabelModel on a dask array: scale-out throughput and memory per worker.

The label matrix (k=2, 30% coverage, int8) is generated block by block on the
workers, as a pass over shards read from disk would produce it, and is never
gathered: each fit + predict reads it twice (the overlap pass, then the lazy
posterior reduced to per-class label counts). Throughput (rows/s) on a
2-worker ``distributed.LocalCluster`` is reported as a ratio to a 1-worker
cluster measured in the same process (one thread per worker, processes).

Targets (from the project's scale-out issue):
  * n=20,000,000 x m=50 (``--quick``: 2,000,000 x 50): 2 workers >= 1.6x the
    rows/s of one worker;
  * peak memory per worker bounded by its chunks, not by n: the peak resident
    memory of a worker over a fit + predict of n rows is within 1.25x of its
    peak over n/4 rows (same chunks).
A pass that only generates the blocks (their sum) is timed too, to show how
much of the time is the data source rather than the label model.

Usage: ``python benchmarks/dask_label_model.py [--quick]``; needs ``dask`` and
``distributed`` (``pip install snorkel-metal[dask]``).
"""

import argparse
import logging
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

ROWS_PER_BLOCK = 250_000
M, K, COVERAGE = 50, 2, 0.3


def generate_block(block_id, rows, m, k, coverage, seed):
    """Votes of one row block: a per-row true label, each source voting with
    probability ``coverage``, correctly with a per-source accuracy in
    [0.6, 0.9]. One random byte per entry, so that generation stays a small
    part of a pass."""
    rng = np.random.default_rng([seed, block_id[0]])
    y = rng.integers(1, k + 1, (rows, 1), dtype=np.int8)
    accuracy = np.linspace(0.6, 0.9, m)
    u = rng.integers(0, 256, (rows, m), dtype=np.uint8)
    correct = u < np.floor(256 * coverage * accuracy).astype(np.uint8)
    wrong = (y % k) + 1  # another class (k=2: the other one)
    votes = np.where(u < int(256 * coverage), wrong, np.int8(0))
    return np.where(correct, y, votes).astype(np.int8)


def synthetic_votes(n, m=M, k=K, seed=0):
    import dask.array as da

    rows = [ROWS_PER_BLOCK] * (n // ROWS_PER_BLOCK)
    if n % ROWS_PER_BLOCK:
        rows.append(n % ROWS_PER_BLOCK)

    def block(block_id=None):
        return generate_block(block_id, rows[block_id[0]], m, k, COVERAGE, seed)

    return da.map_blocks(block, dtype=np.int8, chunks=(tuple(rows), (m,)))


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM"):
                return int(line.split()[1]) * 1024
    return 0


def fit_predict(L):
    """Fit, then reduce the lazy predictions to label counts (nothing of size
    n comes back to the client)."""
    from metal.label_model import LabelModel

    model = LabelModel(k=K, verbose=False, seed=0)
    model.train_model(L)
    labels = model.predict(L, break_ties="first")
    return (labels == 1).sum().compute()


def timed(fn, *args):
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def start_cluster(workers):
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        host="127.0.0.1",
        silence_logs=logging.ERROR,
    )
    client = Client(cluster, set_as_default=False)
    with client.as_current():
        fit_predict(synthetic_votes(2 * ROWS_PER_BLOCK))  # imports on the workers
    return cluster, client


def measure(clients, n, repeats):
    """``{workers: (best seconds of fit + predict, best seconds of a pass
    that only generates L, peak RSS of the busiest worker)}`` over n rows.
    The clusters take turns (each repeat visits every one), so that a load
    from other processes on the machine falls on all of them alike."""
    L = synthetic_votes(n)
    best = {w: [float("inf"), float("inf")] for w in clients}
    for client in clients.values():
        client.run(reset_peak)
    for _ in range(repeats):
        for workers, client in clients.items():
            with client.as_current():
                seconds = timed(fit_predict, L)
                generate = timed(lambda: L.sum().compute())
            best[workers][0] = min(best[workers][0], seconds)
            best[workers][1] = min(best[workers][1], generate)
    return {
        w: (*best[w], max(client.run(peak_rss).values()))
        for w, client in clients.items()
    }


def verdict(ok):
    return "PASS" if ok else "FAIL"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    args = parser.parse_args()
    try:
        import dask  # noqa: F401
        import distributed  # noqa: F401
    except ImportError:
        print("skipped: dask and distributed are not installed")
        return
    logging.getLogger("distributed").setLevel(logging.ERROR)
    n = 2_000_000 if args.quick else 20_000_000
    repeats = 3
    print(
        f"LabelModel on a dask array: n={n:,} x m={M}, k={K}, {COVERAGE:.0%} "
        f"coverage, blocks of {ROWS_PER_BLOCK:,} rows generated on the workers; "
        f"{os.cpu_count()} CPUs, best of {repeats}"
    )
    clusters = {workers: start_cluster(workers) for workers in (1, 2)}
    try:
        clients = {workers: client for workers, (_, client) in clusters.items()}
        small = measure({2: clients[2]}, n // 4, 1)
        large = measure(clients, n, repeats)
    finally:
        for cluster, client in clusters.values():
            client.close()
            cluster.close()
    print(
        f"\n  {'workers':>7s} {'fit+predict':>12s} {'rows/s':>12s} "
        f"{'generation only':>16s} {'peak RSS/worker':>16s}"
    )
    for workers, (seconds, generate, peak) in large.items():
        print(
            f"  {workers:7d} {seconds:10.2f} s {n / seconds:12,.0f} "
            f"{generate:14.2f} s {peak / 2**30:13.2f} GB"
        )
    speedup = large[1][0] / large[2][0]
    print(
        f"\n  2 workers / 1 worker throughput: {speedup:.2f}x "
        f"(target >= 1.6x: {verdict(speedup >= 1.6)})"
    )
    small_peak, large_peak = small[2][2], large[2][2]
    growth = large_peak / small_peak
    print(
        f"  peak RSS per worker, n={n // 4:,}: {small_peak / 2**30:.2f} GB; "
        f"n={n:,}: {large_peak / 2**30:.2f} GB -> {growth:.2f}x for 4x the rows "
        f"(target <= 1.25x, bounded by the chunks: {verdict(growth <= 1.25)})"
    )


if __name__ == "__main__":
    main()
