"""MeTaL's matrix-completion label model.

Notation (label conventions: votes 0 = abstain, 1..k = classes):

* ``L``: label matrix ``[n, m]`` (n items, m sources).
* ``L_ind``: one-hot of the non-abstain votes, ``[n, m*k]``; column ``i*k + y-1``
  is on iff source i voted y. Abstains have no column.
* ``O = L_aug^T L_aug / n``: the overlap matrix of the (augmented) indicator
  columns; ``O[a, b]`` is the empirical probability that columns a and b are both
  on.
* ``p``: the class balance, ``p[y-1] = P(Y = y)``; ``P = diag(p)``.
* ``mu [m*k, k]``: ``mu[i*k + l-1, y-1] = P(lambda_i = l | Y = y)``.

Without dependencies, ``mu`` minimises
``||(O - mu P mu^T)[mask]||^2 + ||mu p - diag(O)||^2 + l2 penalty`` where the mask
keeps the pairs of distinct sources. With dependencies the inverse form is used:
a rank-k ``Z`` is fitted so that ``O^-1 + Z Z^T`` vanishes on the pairs of columns
that share no maximal clique, ``Q = O Z (I + Z^T O Z)^-1 Z^T O`` recovers
``mu P mu^T`` and ``mu`` is fitted to ``Q``. For the posterior, the
class-conditional tables of the joint votes of every clique (and separator) of
the junction tree are then estimated by posterior-weighted counting with ``mu``
held fixed, so ``predict_proba`` uses the junction-tree factorisation.

Only statistics of ``L`` are used: ``O`` is accumulated in one chunked pass over
``L`` in its own narrow-integer (or sparse) form, and the objective is minimised
with full-batch ``torch.optim`` steps on analytic NumPy gradients (milliseconds
for typical m, k). Each statistic (``O``, ``O_inv``, ``mu_init``, ``Q``, ``P``) is
stored once, as a registered float64 buffer; the NumPy code reads views of it.

Many classes: from ``k = 16`` the passes read the votes cast, not their one-hot
(O counted by pairs of votes, posteriors by summed rows of log mu); beyond
``_DENSE_O_MAX_COLUMNS`` indicator columns O is a sparse COO buffer; and the mu
objective is evaluated from per-source ``k x k`` Gram matrices and products with
O (``_mu_objective``), never from a ``[d, d]`` residual.

A ``dask.array.Array`` L is never gathered: the same per-chunk code runs on
each of its row blocks on the active Dask scheduler (``metal._dask``), the
block results (counts ``[d, d]``, sparse for many classes, observed patterns,
weighted counts) are tree-reduced, and ``predict_proba``/``predict`` of it
return lazy dask arrays computed from the model's small weights
(``_Posterior``).
"""

import functools
import operator
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import scipy.optimize as optimize
import scipy.sparse as sparse
import scipy.sparse.linalg as sparse_linalg
import torch
import torch.nn as nn

from metal._checks import (
    FloatArrayLike,
    LabelMatrixLike,
    LabelVectorLike,
    check_choice,
    check_class_balance,
    check_float_array,
    check_int,
    check_label_matrix,
    check_label_vector,
    check_pairs,
    iter_dense_chunks,
)
from metal._dask import (
    dask_label_matrix,
    is_dask_array,
    label_counts,
    map_row_blocks,
    reduce_row_blocks,
)
from metal.classifier import Classifier
from metal.engine import build_optimizer
from metal.label_model.graph_utils import get_clique_tree
from metal.label_model.lm_defaults import lm_default_config
from metal.logging import LogWriter
from metal.run import (
    OPTIMIZER_SUBCONFIGS,
    WriterSpec,
    build_writer,
    finish_writer,
    optimizer_settings,
)
from metal.utils import _one_torch_thread, check_seed, merge_config

# ``objective(x) -> (loss, gradient)`` of a flat float64 iterate ``x``.
Objective = Callable[[np.ndarray], Tuple[float, np.ndarray]]

# ``precondition(x, gradient) -> step direction`` of a first-order fit.
Preconditioner = Callable[[np.ndarray, np.ndarray], np.ndarray]

# ``(log_mu, log_mu_vm, log_p, log_tables)`` of ``LabelModel._log_weights``.
LogWeights = Tuple[torch.Tensor, torch.Tensor, torch.Tensor, Optional[torch.Tensor]]

# Bounds applied to the learned probabilities when they are used as weights.
PROB_CLIP = (0.01, 0.99)

# Rows per chunk of the passes over L (small enough for the one-hot chunk to
# stay in cache between its construction and the matrix product).
_CHUNK_ROWS = 8192

# From this k on, the passes over L read the votes cast rather than their dense
# one-hot: the overlap counts are counted pair by pair (see _unary_overlaps)
# and the posterior sums the rows of log mu of the votes (_summed_rows).
_PAIRWISE_MIN_K = 16

# Entries of the scores a posterior computes at once (rows of a chunk times
# k): with many classes a chunk's float64 scores would otherwise rival the
# result in size.
_SCORE_ENTRIES = 1 << 21

# Keys of clique vote patterns stay below this (see _PatternIndex).
_MAX_PATTERN_KEY = 2**62

# The largest array the label model builds for the cliques of a dependency
# graph: the clique tables (observed vote patterns x k classes, in float64 and
# float32) and the dense augmented label matrix of
# ``_get_augmented_label_matrix(L, higher_order=True)``. A request beyond it is
# refused up front with a ValueError giving its size; raise it on a machine
# with more memory.
MAX_ARRAY_BYTES = 4 * 2**30

# The overlap matrix O is stored dense up to this many indicator columns
# (d = m*k; 128 MB of float64), beyond as a torch sparse COO tensor: O has at
# most n*m**2 non-zeros, while its dense form grows like (m*k)**2 (0.8 GB at
# m=10, k=1000). The mu fit reads O in the same form (``_FitTarget``).
_DENSE_O_MAX_COLUMNS = 4096

# ... and only while at most this share of its entries are non-zero: a sparse
# entry takes 24 bytes against 8, and a product reads it ~10x slower, so a
# well-filled O (many sources, few classes) stays dense.
_SPARSE_O_MAX_FILL = 0.1

# Column block of the sparse products of the mu fit (keeps the block of mu
# that the non-zeros of a row read in cache).
_SPARSE_PRODUCT_COLUMNS = 64

# Optimizer steps over fewer parameters than this run on one torch thread (for
# such small steps a parallel region costs more than it saves, and waits for a
# time slice on a busy machine).
_PARALLEL_STEP_MIN = 1 << 20

# Largest matrix whose eigenpairs are found by a dense solver (larger ones use
# Lanczos iterations, which need only matrix-vector products) ...
_DENSE_EIGEN_MAX = 512

# ... unless more than one in this many eigenpairs is wanted: Lanczos keeps
# about 2k vectors, and for k = d/10 it is several times slower than the dense
# solver (measured: d=3000, k=300: 23 s against 4 s).
_LANCZOS_MAX_SHARE = 20

# Rounds of hard impute giving the start of the Z fit (see _low_rank_completion).
_COMPLETION_ROUNDS = 30

# Stopping tolerances of the quasi-Newton solver (the objective is ~1e-3 at its
# optimum for typical data, so these are tight relative tolerances).
_FTOL = 1e-15
_GTOL = 1e-10


# The optimizers taking full-batch steps (besides "lbfgs"): torch.optim
# classes stepping a float64 tensor whose gradient is set from the analytic
# NumPy gradient of the objective.
FIRST_ORDER_OPTIMIZERS = ("sgd", "adam", "adamax", "rmsprop")

# The statistics of L kept as float64 buffers (NumPy views through ``_stat``).
_STATISTICS = ("O", "O_inv", "mu_init", "Q", "P")

# The buffers of the clique tables of a dependency model (the tables, and the
# observed vote patterns their rows belong to).
_CLIQUE_BUFFERS = ("mu_higher", "clique_patterns", "clique_pattern_counts")


def _check_run_settings(config: dict) -> None:
    """Refuse settings a label model fit cannot honour (rather than ignore them
    or fail inside an RNG): a seed out of range, checkpointing, and writers
    other than json/tensorboard."""
    if config.get("seed") is not None:
        check_seed(config["seed"])
    tc = config["train_config"]
    if tc.get("checkpoint"):
        raise ValueError(
            "checkpoint must be False for a label model: its fit has no "
            "validation data to pick a best model by (save the fitted model with "
            f"save()); found checkpoint={tc['checkpoint']!r}."
        )
    WriterSpec(kind=tc.get("writer"))  # raises naming `writer` for other kinds


def _cpu_float64(tensor: torch.Tensor) -> np.ndarray:
    """NumPy float64 form of ``tensor``: a view for a CPU float64 tensor, else a
    copy (another dtype, or a tensor on an accelerator)."""
    return tensor.detach().to(device="cpu", dtype=torch.float64).numpy()


def _top_eigenpairs(
    M: np.ndarray, k: int, v0: np.ndarray
) -> Tuple[np.ndarray, np.ndarray, float]:
    """``(values, vectors, norm)`` of the symmetric ``M [d, d]``: its (at most)
    k largest eigenvalues, ascending, their eigenvectors as columns and the
    spectral norm of ``M``. Dense up to ``_DENSE_EIGEN_MAX`` rows or when k
    is over ``1 / _LANCZOS_MAX_SHARE`` of them; Lanczos (started from ``v0``)
    beyond."""
    d = M.shape[0]
    if d > _DENSE_EIGEN_MAX and k * _LANCZOS_MAX_SHARE < d:
        try:
            values, vectors = sparse_linalg.eigsh(M, k=k, which="LA", v0=v0)
            extreme = sparse_linalg.eigsh(
                M, k=1, which="LM", v0=v0, return_eigenvectors=False
            )
        except sparse_linalg.ArpackError:
            pass  # no convergence: the dense solver below
        else:
            norm = max(float(np.abs(extreme).max()), float(np.abs(values).max()))
            return values, vectors, norm
    values, vectors = np.linalg.eigh(M)
    norm = float(max(abs(values[0]), abs(values[-1])))
    return values[-k:], vectors[:, -k:], norm


def _low_rank_completion(
    M: np.ndarray, holes: np.ndarray, k: int, v0: np.ndarray
) -> Tuple[np.ndarray, np.ndarray, float]:
    """Rank-k PSD completion of the symmetric ``M [d, d]`` whose entries at
    ``holes`` (bool) are unknown and read as 0.

    Returns ``(values, vectors, norm)``: ``W = vectors * sqrt(max(values, 0))``
    has ``W W^T`` close to M off the holes, and ``norm`` is the spectral norm of
    the zero-filled M. Hard impute: from the top k eigenpairs of M, each of
    ``_COMPLETION_ROUNDS`` rounds fills the holes from the current estimate and
    takes one step of subspace iteration (with Rayleigh-Ritz) on the filled
    matrix, shifted so that no negative eigenvalue outweighs the largest one.
    Each round costs a few ``d*d*k`` products.
    """
    values, vectors, norm = _top_eigenpairs(M, k, v0)
    if not holes.any() or values.size == 0:
        return values, vectors, norm
    shift = max(norm - float(values.max()), 0.0)
    holes_f = holes.astype(M.dtype)
    for _ in range(_COMPLETION_ROUNDS):
        W = vectors * np.sqrt(np.maximum(values, 0.0))
        filled = M + (W @ W.T) * holes_f
        basis, _ = np.linalg.qr(filled @ vectors + shift * vectors)
        values, rotation = np.linalg.eigh(basis.T @ (filled @ basis))
        vectors = basis @ rotation
    return values, vectors, norm


def _masked_gram_residual(
    target: "_FitTarget",
    blocks: Sequence[slice],
    excluded: np.ndarray,
    sign: float,
    k: int,
) -> Callable[[np.ndarray], Tuple[float, np.ndarray]]:
    """``W -> (f, grad)`` of ``f = ||(sign * T + W W^T)[mask]||^2`` for
    ``W [r, k]`` (float64; r rows, split into consecutive ``blocks``), where
    the mask is False exactly on the blocks ``(blocks[a], blocks[b])`` of rows
    with ``excluded[a, b]`` (bool, e.g. the
    pairs of sources sharing a clique, each source with itself), and the
    symmetric ``target`` T (``_FitTarget``) is 0 there.

    Never forms ``W W^T``: with ``G_a = W_a^T W_a`` (``W_a`` the rows of block
    a) and ``G = sum_a G_a``, ``||W_a W_b^T||^2 = <G_a, G_b>``, so
    ``f = ||T||^2 + 2 sign <T W, W> + ||G||^2 - sum_{(a,b) excluded} <G_a, G_b>``
    and the gradient is ``4 (sign T W + W_a (G - sum_{b: (a,b) excluded}
    G_b))`` on the rows of block a: one product of T with W and ``2 r k^2``
    multiply-adds per evaluation; the same values as the dense definition, up
    to rounding. Both fits use it: mu's (``W = mu P^(1/2)``, ``sign = -1``) and
    Z's (``sign = +1``)."""
    m = len(blocks)
    own = bool(np.diag(excluded).all())  # each block left out with itself
    others = (excluded & ~np.eye(m, dtype=bool) if own else excluded).astype(float)
    T_norm2 = target.squared_norm
    # Work arrays reused by every evaluation.
    TW, grams = np.empty((blocks[-1].stop, k)), np.empty((m, k, k))

    def residual(W):
        target.times(W, out=TW)
        for a, rows in enumerate(blocks):
            np.matmul(W[rows].T, W[rows], out=grams[a])
        gram = grams.sum(axis=0)
        # left_out[a]: the sum of the Grams of the blocks left out in row a
        left_out = grams.copy() if own else np.zeros_like(grams)
        if others.any():
            left_out += np.tensordot(others, grams, axes=1)
        f = T_norm2 + 2.0 * sign * np.vdot(TW, W) + np.vdot(gram, gram)
        f -= np.vdot(grams, left_out)
        g = TW * sign
        for a, rows in enumerate(blocks):
            if rows.stop > rows.start:
                g[rows] += W[rows] @ (gram - left_out[a])
        g *= 4.0
        return float(f), g

    return residual


def _share_chunks(
    job: Callable[[Iterator[Tuple[int, Any]]], Any],
    chunks: Iterator[Any],
    rows_of: Callable[[Any], int],
    workers: int = 1,
) -> List[Any]:
    """Run a pass over the row chunks of L on ``workers`` threads.

    ``job(shared)`` is called once per worker; ``shared`` yields ``(start,
    chunk)`` pairs (``start``: the chunk's first row, from ``rows_of(chunk)``),
    each chunk to whichever worker asks first, so a worker whose core is busy
    with another process simply takes fewer chunks. Torch runs on one thread
    inside the workers: its own parallel regions wait for all their threads at
    every operation, which on a machine with busy cores costs a time slice per
    operation (a pass 10x slower) instead of a proportional share. The thread
    count is restored on return. Returns the jobs' results (one per worker).
    """
    numbered = _numbered_chunks(chunks, rows_of)
    with _one_torch_thread():
        if workers <= 1:
            return [job(numbered)]
        lock = threading.Lock()

        def shared() -> Iterator[Tuple[int, Any]]:
            while True:
                with lock:  # one worker at a time advances the chunk iterator
                    item = next(numbered, None)
                if item is None:
                    return
                yield item

        with ThreadPoolExecutor(workers, thread_name_prefix="metal-L") as pool:
            futures = [pool.submit(job, shared()) for _ in range(workers)]
            return [future.result() for future in futures]


def _numbered_chunks(
    chunks: Iterator[Any], rows_of: Callable[[Any], int]
) -> Iterator[Tuple[int, Any]]:
    start = 0
    for chunk in chunks:
        yield start, chunk
        start += rows_of(chunk)


class _PatternIndex:
    """Exact lookup of a clique's joint vote patterns among those observed.

    ``patterns [P, s]`` (values 1..k, distinct rows in lexicographic order) are
    the joint votes of a clique's (or separator's) ``s`` members seen in L; row
    ``j`` of its table belongs to ``patterns[j]``. Each vote row is folded into
    one int64 key, first member most significant: ``sum (v_j - 1) k**(s-1-j)``
    while that fits in 62 bits; for larger cliques the running key is replaced
    by its rank among the observed prefixes (unseen ones rank last) whenever
    it would overflow. Keys of observed patterns are thus distinct, in the
    patterns' order, and memory and time grow with P, never with ``k**s``.
    """

    def __init__(self, patterns: torch.Tensor, k: int) -> None:
        self.k = k
        # the sorted prefix keys of each rank compression, in order
        self._levels: List[torch.Tensor] = []
        self.keys = self._fold(patterns.long(), build=True)

    @property
    def device(self) -> torch.device:
        return self.keys.device

    def to(self, device: torch.device) -> "_PatternIndex":
        """This index with its tensors on ``device`` (self when already there)."""
        if self.keys.device == torch.device(device):
            return self
        moved = _PatternIndex.__new__(_PatternIndex)
        moved.k = self.k
        moved._levels = [level.to(device) for level in self._levels]
        moved.keys = self.keys.to(device)
        return moved

    def _fold(self, votes: torch.Tensor, build: bool = False) -> torch.Tensor:
        key = torch.zeros(votes.shape[0], dtype=torch.long, device=votes.device)
        radix, level = 1, 0
        for j in range(votes.shape[1]):
            if radix * self.k > _MAX_PATTERN_KEY:
                if build:
                    self._levels.append(torch.unique(key))
                prefixes = self._levels[level]
                key = _rank_in(prefixes, key)
                radix, level = prefixes.numel() + 1, level + 1
            key = key * self.k + (votes[:, j] - 1)
            radix *= self.k
        return key

    def lookup(self, votes: torch.Tensor) -> torch.Tensor:
        """Row of each vote row's pattern (``votes [c, s]``, no abstains), or
        -1 for a pattern not observed."""
        if self.keys.numel() == 0:
            return torch.full((votes.shape[0],), -1, device=votes.device)
        key = self._fold(votes.long())
        row = torch.searchsorted(self.keys, key).clamp(max=self.keys.numel() - 1)
        return torch.where(self.keys[row] == key, row, torch.full_like(row, -1))


def _rank_in(sorted_keys: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
    """Position of each ``key`` in ``sorted_keys``; ``len(sorted_keys)`` for a
    key that is not there."""
    size = sorted_keys.numel()
    if size == 0:
        return torch.zeros_like(key)
    position = torch.searchsorted(sorted_keys, key)
    found = sorted_keys[position.clamp(max=size - 1)] == key
    return torch.where(found, position, torch.full_like(position, size))


def _gigabytes(size: float) -> str:
    return f"{size / 1e9:.3g} GB"


def _pattern_dtype(k: int) -> torch.dtype:
    """The narrowest integer dtype holding the votes 0..k."""
    return torch.int16 if k < 2**15 else torch.int32 if k < 2**31 else torch.int64


# ====================================================== per-chunk statistics
# The work of one chunk of L, shared by the in-memory passes (worker threads,
# see _share_chunks) and the dask passes (one row block per task, see
# metal._dask): functions of the chunk and of small picklable values, never
# of the model.
def _one_hot(
    Lc: torch.Tensor,
    k: int,
    source_major: bool = False,
    buffer: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """One-hot float32 ``[c, m*k]`` of a dense chunk ``Lc [c, m]`` (votes 0..k).

    Value-major column order (``v*m + i``) is the fast layout used internally;
    ``source_major`` gives the public ``i*k + v`` order. A ``buffer`` of at
    least ``c`` rows is reused when given (keeping the chunk in cache is what
    makes the pass fast).
    """
    c, m = Lc.shape
    if buffer is None:
        X = torch.empty(c, k * m, dtype=torch.float32, device=Lc.device)
    else:
        X = buffer[:c]
    for v in range(k):
        X[:, v * m : (v + 1) * m] = Lc == v + 1
    if source_major:
        X = X.view(c, k, m).transpose(1, 2).reshape(c, m * k)
    return X


def _summed_rows(Lc: torch.Tensor, table: torch.Tensor, m: int) -> torch.Tensor:
    """``one_hot(Lc) @ table`` for a value-major ``table [m*k, k]``, by summing
    the rows of the votes cast (``c * m * k`` work instead of the product's
    ``c * m * k**2``): row ``(v-1)*m + i`` for source i voting v."""
    votes = Lc.long()
    index = (votes - 1).clamp(min=0) * m + torch.arange(m, device=Lc.device)
    weights = (votes > 0).to(table.dtype)
    return nn.functional.embedding_bag(
        index, table, mode="sum", per_sample_weights=weights
    )


def _block_votes(
    Lc: torch.Tensor, members: Sequence[int]
) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(rows, votes)``: the rows of the chunk ``Lc`` where every one of
    ``members`` voted, and their votes ``[rows, len(members)]`` (int64)."""
    votes = Lc[:, list(members)].long()
    rows = torch.nonzero((votes > 0).all(dim=1)).squeeze(1)
    return rows, votes[rows]


def _unary_overlaps(
    chunks: Iterator[np.ndarray], k: int, m: int, device: torch.device
) -> Tuple[torch.Tensor, int]:
    """``(counts, rows)``: the value-major ``X^T X`` (float64 ``[m*k, m*k]``)
    of the one-hot ``X`` of the dense ``chunks`` (each < 2**24 rows, so each
    chunk's float32 product is exact), and their number of rows.

    For k up to ``_PAIRWISE_MIN_K - 1`` the product is one dense matrix
    product per chunk (``c * (m*k)**2`` work, fast for small k; a dense
    tensor); beyond, the co-occurring (source, value) pairs are counted
    directly (``_pairwise_overlaps``: ``c * m**2`` work whatever k, a
    ``scipy.sparse`` matrix). Both give the same integer counts."""
    if k >= _PAIRWISE_MIN_K:
        return _pairwise_overlaps(chunks, k, m, device)
    d = m * k
    counts = torch.zeros(d, d, dtype=torch.float64, device=device)
    buffer = torch.empty(_CHUNK_ROWS, d, dtype=torch.float32, device=device)
    n = 0
    for chunk in chunks:
        X = _one_hot(torch.from_numpy(chunk).to(device), k, buffer=buffer)
        counts += (X.T @ X).double()
        n += X.shape[0]
    return counts, n


def _pairwise_overlaps(
    chunks: Iterator[np.ndarray], k: int, m: int, device: torch.device
) -> Tuple[sparse.csr_matrix, int]:
    """``_unary_overlaps`` from the votes cast: each chunk's one-hot is built
    as a sparse ``[c, m*k]`` matrix X (value-major column ``(v-1)*m + i`` for
    source i voting v) and ``X^T X`` is a sparse product, whose work is the
    number of pairs of votes within rows (at most ``c * m**2``) and whose
    memory is that of its non-zeros, whatever k. The chunks' products are
    summed (exact integer counts in float64) a few at a time.

    Returns a float64 ``scipy.sparse.csr_matrix [m*k, m*k]`` of the counts and
    the number of rows. Runs on the CPU (``device`` is not used)."""
    d = m * k
    parts: List[sparse.csr_matrix] = [sparse.csr_matrix((d, d))]
    n = 0
    for chunk in chunks:
        rows, sources = np.nonzero(chunk)
        columns = (chunk[rows, sources].astype(np.int64) - 1) * m + sources
        X = sparse.csr_matrix(
            (np.ones(len(rows)), (rows, columns)), shape=(chunk.shape[0], d)
        )
        parts.append((X.T @ X).tocsr())
        n += chunk.shape[0]
        if len(parts) > 8:
            parts = [functools.reduce(operator.add, parts)]
    return functools.reduce(operator.add, parts).tocsr(), n


def _fill(O: Any) -> int:
    """The number of non-zero entries of a dense or ``scipy.sparse`` matrix."""
    return O.nnz if sparse.issparse(O) else int(np.count_nonzero(O))


def _host_counts(counts: Any) -> Any:
    """Overlap counts as a NumPy array (from a dense tensor) or a
    ``scipy.sparse`` matrix (as ``_pairwise_overlaps`` gives them)."""
    if isinstance(counts, torch.Tensor):
        return counts.cpu().numpy()
    return counts


def _equal_columns(O: np.ndarray) -> np.ndarray:
    """Bool ``[d, d]``: which pairs of indicator columns are equal on every
    item, read from the overlap matrix ``O`` (exact counts / n): columns i
    and j are equal iff ``O[i, j] = O[i, i] = O[j, j]``."""
    diag = np.diag(O)
    return (O == diag[:, None]) & (O == diag[None, :])


def _add_chunk_patterns(
    Lc: torch.Tensor,
    members: Sequence[Sequence[int]],
    dtype: torch.dtype,
    found: List[List[torch.Tensor]],
) -> None:
    """Append to ``found[b]`` the distinct joint votes (no abstain) of the
    members of block b in the chunk ``Lc``; merge a block's list when it grows
    long, so that it holds few duplicates."""
    for b, block_members in enumerate(members):
        _, votes = _block_votes(Lc, block_members)
        if votes.shape[0]:
            found[b].append(torch.unique(votes.to(dtype), dim=0))
        if len(found[b]) > 16:
            found[b] = [torch.unique(torch.cat(found[b]), dim=0)]


def _distinct_patterns(
    found: Sequence[Sequence[torch.Tensor]],
    members: Sequence[Sequence[int]],
    dtype: torch.dtype,
    device: torch.device,
) -> List[torch.Tensor]:
    """One ``[P_b, |members_b|]`` tensor of distinct patterns per block, in
    lexicographic order, from the parts ``found[b]``."""
    return [
        (
            torch.unique(torch.cat(list(parts)), dim=0)
            if len(parts)
            else torch.zeros(0, len(block), dtype=dtype, device=device)
        )
        for parts, block in zip(found, members)
    ]


class _Posterior:
    """What the log posterior of a chunk of L needs, without the model.

    ``k``, ``m``, the ``LogWeights`` of ``LabelModel._log_weights``, and for
    the junction-tree terms the higher-order blocks (``members``, ``weight``,
    ``distinct``), their ``_PatternIndex`` and first table rows. Small and
    picklable: a dask pass ships it to the workers instead of the model.
    """

    def __init__(
        self,
        k: int,
        m: int,
        weights: LogWeights,
        blocks: Sequence[dict],
        indices: Optional[List[_PatternIndex]],
        offsets: Optional[List[int]],
    ) -> None:
        self.k, self.m = k, m
        self.weights = weights
        self.blocks = [
            {key: block[key] for key in ("members", "weight", "distinct")}
            for block in blocks
        ]
        self.indices = indices
        self.offsets = offsets

    def to(self, device: torch.device) -> "_Posterior":
        """A copy with its tensors on ``device``."""
        weights = tuple(None if w is None else w.to(device) for w in self.weights)
        indices = self.indices
        if indices is not None:
            indices = [index.to(device) for index in indices]
        return _Posterior(
            self.k, self.m, weights, self.blocks, indices, self.offsets  # type: ignore
        )

    def log_scores(
        self,
        Lc: torch.Tensor,
        use_tables: bool = True,
        buffer: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Unnormalised log posterior ``[c, k]`` of a dense chunk ``Lc``."""
        _, log_mu_vm, log_p, log_tables = self.weights
        if self.k >= _PAIRWISE_MIN_K:
            scores = _summed_rows(Lc, log_mu_vm, self.m)
        else:
            scores = _one_hot(Lc, self.k, buffer=buffer) @ log_mu_vm
        if use_tables and log_tables is not None:
            scores += self.junction_tree_correction(Lc)
        return scores + log_p

    def probabilities(
        self,
        Lc: torch.Tensor,
        buffer: Optional[torch.Tensor] = None,
        out: Optional[np.ndarray] = None,
    ) -> np.ndarray:
        """Posterior ``P(Y = y | votes)`` of a dense chunk: float64 ``[c, k]``,
        written into ``out`` when given. Computed ``_SCORE_ENTRIES // k`` rows
        at a time, so that with many classes the intermediate scores stay
        small next to the result."""
        c = Lc.shape[0]
        if out is None:
            out = np.empty((c, self.k))
        rows = max(1, _SCORE_ENTRIES // self.k)
        for s in range(0, c, rows):
            scores = self.log_scores(Lc[s : s + rows], buffer=buffer)
            probs = torch.softmax(scores.double(), dim=1).cpu()
            torch.from_numpy(out[s : s + rows]).copy_(probs)
        return out

    def junction_tree_correction(self, Lc: torch.Tensor) -> torch.Tensor:
        """Junction-tree terms of the log posterior ``[c, k]``.

        For rows where every member of a clique/separator voted, the product of
        the members' unary factors is replaced by the block's pattern table,
        with the block's junction-tree weight (+1 for a maximal clique, minus
        the number of tree edges for a separator). Each source thus counts
        once. Table entries are floored at ``0.01**distinct`` (``distinct``:
        the block's number of sources, a group of exact copies counting as
        one); a pattern that did not occur in L takes the floor for every
        class.
        """
        k = self.k
        log_mu, _, _, log_tables = self.weights
        correction = torch.zeros(Lc.shape[0], k, dtype=torch.float32, device=Lc.device)
        for b, block in enumerate(self.blocks):
            members = list(block["members"])
            rows, votes = _block_votes(Lc, members)
            if rows.numel() == 0:
                continue
            floor = block["distinct"] * float(np.log(PROB_CLIP[0]))
            index = self.indices[b].lookup(votes)
            table = torch.full((rows.numel(), k), floor, device=Lc.device)
            seen = index >= 0
            if bool(seen.any()):
                found = log_tables[self.offsets[b] + index[seen]]
                table[seen] = found.clamp(min=floor)
            member_index = torch.tensor(members, device=Lc.device)
            unary_sum = log_mu[member_index * k + votes - 1].sum(dim=1)
            correction[rows] += block["weight"] * (table - unary_sum)
        return correction

    def add_weighted_counts(
        self,
        Lc: torch.Tensor,
        use_tables: bool,
        blocks: Sequence[int],
        counts: torch.Tensor,
        class_mass: torch.Tensor,
    ) -> None:
        """Add the posterior ``q [c, k]`` of the chunk ``Lc`` to ``class_mass``
        ``[k]`` and, for each block in ``blocks``, to the ``counts`` rows of
        the vote patterns its members cast (float64 ``[patterns, k]``)."""
        q = torch.softmax(self.log_scores(Lc, use_tables), dim=1).double()
        class_mass += q.sum(dim=0)
        for b in blocks:
            rows, votes = _block_votes(Lc, self.blocks[b]["members"])
            index = self.offsets[b] + self.indices[b].lookup(votes)
            counts.index_add_(0, index, q[rows])


# ============================================================ dask passes
# One row block of a dask L per call (see metal._dask.reduce_row_blocks and
# map_row_blocks): the block is validated like an in-memory L, then read in
# _CHUNK_ROWS chunks by the functions above. Results are small and on the CPU.
def _valid_block(block: np.ndarray, k: int) -> Any:
    return check_label_matrix(block, name="L", k=k, allow_empty=True)


def _dask_overlaps(block: np.ndarray, k: int, start: int = 0) -> Tuple[Any, int]:
    block = _valid_block(block, k)
    chunks = iter_dense_chunks(block, _CHUNK_ROWS)
    counts, n = _unary_overlaps(chunks, k, block.shape[1], torch.device("cpu"))
    return _host_counts(counts), n


def _dask_patterns(
    block: np.ndarray, k: int, members: List[Tuple[int, ...]], start: int = 0
) -> List[torch.Tensor]:
    found: List[List[torch.Tensor]] = [[] for _ in members]
    dtype = _pattern_dtype(k)
    for chunk in iter_dense_chunks(_valid_block(block, k), _CHUNK_ROWS):
        _add_chunk_patterns(torch.from_numpy(chunk), members, dtype, found)
    return _distinct_patterns(found, members, dtype, torch.device("cpu"))


def _merge_patterns(parts: List[List[torch.Tensor]]) -> List[torch.Tensor]:
    """The distinct patterns of every block over the results of row blocks
    (each a list with one tensor per block, possibly empty)."""
    return [torch.unique(torch.cat(found), dim=0) for found in zip(*parts)]


def _dask_weighted_counts(
    block: np.ndarray,
    posterior: _Posterior,
    use_tables: bool,
    blocks: List[int],
    start: int = 0,
) -> Tuple[np.ndarray, np.ndarray]:
    rows = posterior.offsets[-1]
    counts = torch.zeros(rows, posterior.k, dtype=torch.float64)
    class_mass = torch.zeros(posterior.k, dtype=torch.float64)
    for chunk in iter_dense_chunks(_valid_block(block, posterior.k), _CHUNK_ROWS):
        Lc = torch.from_numpy(chunk)
        posterior.add_weighted_counts(Lc, use_tables, blocks, counts, class_mass)
    return counts.numpy(), class_mass.numpy()


def _dask_probabilities(
    block: np.ndarray, posterior: _Posterior, start: int = 0
) -> np.ndarray:
    block = _valid_block(block, posterior.k)
    probs = np.empty((block.shape[0], posterior.k))
    buffer = None
    if posterior.k < _PAIRWISE_MIN_K:
        buffer = torch.empty(_CHUNK_ROWS, posterior.m * posterior.k)
    row = 0
    for chunk in iter_dense_chunks(block, _CHUNK_ROWS):
        end = row + chunk.shape[0]
        posterior.probabilities(torch.from_numpy(chunk), buffer, out=probs[row:end])
        row = end
    return probs


class _FitTarget:
    """The target of the mu fit with the entries the mask leaves out set to 0:
    ``T = target * mask`` (float64 ``[d, d]``, symmetric), dense (a NumPy array)
    or sparse (a torch CSR tensor). The fit needs only its squared norm and
    products ``T @ X`` with ``[d, k]`` arrays (``times``)."""

    def __init__(self, matrix: Any) -> None:
        self.matrix = matrix
        if isinstance(matrix, np.ndarray):
            self.squared_norm = float(np.vdot(matrix, matrix))
        else:
            values = matrix.values()
            self.squared_norm = float(torch.dot(values, values))

    def times(self, X: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``T @ X`` for a float64 ``[d, k]`` array, written into ``out``."""
        if isinstance(self.matrix, np.ndarray):
            return np.matmul(self.matrix, X, out=out)
        # A sparse product reads a row of X for each non-zero: by column
        # blocks, the block of X stays in cache.
        X_t, out_t = torch.from_numpy(X), torch.from_numpy(out)
        width = _SPARSE_PRODUCT_COLUMNS
        for c in range(0, X.shape[1], width):
            out_t[:, c : c + width] = self.matrix @ X_t[:, c : c + width].contiguous()
        return out


class _LowRankTarget(_FitTarget):
    """A ``_FitTarget`` of the form ``T = B K B^T`` (``B [d, r]``, ``K [r, r]``;
    nothing masked out): the dependency form's
    ``Q = O Z (I + Z^T O Z)^-1 Z^T O``, whose products cost ``3 d r k``
    instead of ``d**2 k``."""

    def __init__(self, B: np.ndarray, K: np.ndarray) -> None:
        self.B, self.K = B, K
        C = B.T @ B
        # ||B K B^T||^2 = trace(K^T C K C)
        self.squared_norm = float(np.vdot(K.T @ C, (K @ C).T))

    def times(self, X: np.ndarray, out: np.ndarray) -> np.ndarray:
        return np.matmul(self.B, self.K @ (self.B.T @ X), out=out)


class LabelModel(Classifier):
    """A label model that learns the class-conditional accuracies of the sources.

    Args:
        k: the number of classes (labels 1..k; 0 means abstain).
        **kwargs: config overrides, nested or by leaf name (e.g. ``seed=123``,
            ``n_epochs=500``, ``prec_init=0.8``, ``verbose=False``); see
            ``metal.label_model.lm_defaults.lm_default_config``. An unknown key
            is dropped with a ``UserWarning`` saying it has no effect.

    The fit takes ``n_epochs`` full-batch steps of the configured
    ``torch.optim`` optimizer (``"sgd"``, ``"adam"``, ``"adamax"`` or
    ``"rmsprop"``; MeTaL's default: SGD with momentum 0.9, lr 0.01) on analytic
    gradients of the objective. ``lr`` comes from ``optimizer_common``, the
    other torch settings from ``sgd_config``, ``adam_config`` (also used by
    adamax) or ``rmsprop_config``. ``optimizer="lbfgs"`` instead solves the
    objective to its optimum (with ``n_epochs`` as the iteration cap).
    """

    implements_l2 = True
    _config_defaults = lm_default_config

    def __init__(self, k: int = 2, **kwargs: Any) -> None:
        k = check_int(k, "k", minimum=2)
        config = merge_config(self._config_defaults, kwargs, type(self).__name__)
        _check_run_settings(config)
        super().__init__(k, config)
        self._record_init_kwargs(k=k, **kwargs)
        self.is_trained = False
        self._log_writer = None
        self._blocks: List[dict] = []
        self._folds: Dict[int, int] = {}  # exact copy -> original (_find_copies)
        self._indices: Optional[List[_PatternIndex]] = None

    # ============================================================ validation
    def _check_L(self, L: LabelMatrixLike) -> Any:
        """Validate ``L [n, m]`` (values in 0..k); return its compact form (a
        ``LabelMatrix``; subclasses return their own validated form, which the
        hooks taking ``L`` below receive). A dask array is checked for its
        shape and dtype and kept lazy, in row blocks of whole rows; its values
        are checked block by block by the passes that read it."""
        if is_dask_array(L):
            return dask_label_matrix(L, name="L")
        return check_label_matrix(L, name="L", k=self.k)

    def _set_constants(self, L: Any) -> None:
        self.n, self.m = L.shape
        self.t = 1

    def _set_dependencies(self, deps: Optional[Sequence[Tuple[int, int]]]) -> None:
        self.deps = self._check_deps(deps)
        self.c_tree = get_clique_tree(range(self.m), self.deps)

    def _check_deps(
        self, deps: Optional[Sequence[Tuple[int, int]]]
    ) -> List[Tuple[int, int]]:
        if deps is None:
            return []
        return check_pairs(deps, "deps", self.m, item="source", n_name="m")

    def _set_class_balance(
        self,
        class_balance: Optional[FloatArrayLike],
        Y_dev: Optional[LabelVectorLike],
    ) -> None:
        """Class balance from ``class_balance``, else ``Y_dev``, else uniform."""
        if class_balance is not None:
            p = check_class_balance(class_balance, self.k)
        elif Y_dev is not None:
            # 0 marks an item without a gold label: only labels 1..k count.
            if is_dask_array(Y_dev):
                counts, size = label_counts(Y_dev, "Y_dev", self.k)
            else:
                Y = check_label_vector(
                    Y_dev, name="Y_dev", k=self.k, allow_abstain=True
                )
                counts, size = np.bincount(Y, minlength=self.k + 1), Y.size
            counts = counts[1:]
            if counts.sum() == 0:
                raise ValueError(
                    f"Y_dev must contain at least one gold label in 1..{self.k} "
                    f"(0 = no label); found {size} item(s), none labeled."
                )
            p = counts / counts.sum()
        else:
            p = np.full(self.k, 1.0 / self.k)
        self.p = p

    @property
    def p(self) -> np.ndarray:
        """The class balance, float64 ``[k]`` with ``p[y-1] = P(Y = y)``: the
        diagonal of the ``P`` buffer (a view of it on CPU, a copy on an
        accelerator). Assigning a length-k array sets ``P = diag(p)``."""
        if "P" not in self._buffers:
            raise AttributeError(
                f"{type(self).__name__} has no class balance p before training."
            )
        return self._stat("P").diagonal()

    @p.setter
    def p(self, value: FloatArrayLike) -> None:
        values = torch.tensor(np.asarray(value, dtype=np.float64))
        self._set_tensor("P", torch.diag(values))

    # ================================================== augmented label matrix
    def _create_L_ind(self, L: Any) -> np.ndarray:
        """One-hot of the non-abstain votes: float array ``[n, m*k]`` with column
        ``i*k + y-1`` on iff ``L[r, i] == y``."""
        L = check_label_matrix(L, name="L", k=self.k, allow_empty=True)
        with _one_torch_thread():  # see _share_chunks
            chunks = [
                self._unary_chunk(torch.from_numpy(c), source_major=True)
                for c in iter_dense_chunks(L)
            ]
        if not chunks:
            return np.zeros((0, L.shape[1] * self.k), dtype=np.float32)
        return torch.cat(chunks).numpy()

    def _unary_chunk(
        self,
        Lc: torch.Tensor,
        source_major: bool = False,
        buffer: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """One-hot float32 ``[c, m*k]`` of a dense chunk ``Lc [c, m]``.

        Value-major column order (``v*m + i``) is the fast layout used
        internally; ``source_major`` gives the public ``i*k + v`` order. A
        ``buffer`` of at least ``c`` rows is reused when given (keeping the
        chunk in cache is what makes the pass fast).
        """
        return _one_hot(Lc, self.k, source_major=source_major, buffer=buffer)

    def _chunk_buffer(self) -> torch.Tensor:
        return torch.empty(
            _CHUNK_ROWS, self.m * self.k, dtype=torch.float32, device=self._device()
        )

    def _higher_order_blocks(self) -> List[dict]:
        """Column blocks of the cliques and separators with >= 2 sources.

        Each block is a dict with ``members`` (sorted sources), ``start``/``end``
        (its columns in the dense augmented matrix, after the ``m*k`` unary
        ones), ``max_cliques`` (clique-tree node ids it belongs to), ``weight``
        (+1 for a maximal clique, minus the number of junction-tree edges for a
        separator) and ``distinct`` (its number of sources once exact copies
        are folded into their originals, see ``_find_copies``).
        """
        k, m = self.k, self.m
        folds = getattr(self, "_folds", {})
        blocks: List[dict] = []
        by_members: Dict[tuple, dict] = {}
        next_start = m * k

        def add(members, max_cliques, weight):
            nonlocal next_start
            key = tuple(members)
            if key in by_members:
                block = by_members[key]
                block["max_cliques"] |= set(max_cliques)
                block["weight"] += weight
                return block
            width = k ** len(members)
            block = {
                "members": key,
                "start": next_start,
                "end": next_start + width,
                "max_cliques": set(max_cliques),
                "weight": weight,
                "distinct": len({folds.get(i, i) for i in key}),
            }
            next_start += width
            blocks.append(block)
            by_members[key] = block
            return block

        for node, attrs in self.c_tree.nodes(data=True):
            members = sorted(attrs["members"])
            if len(members) > 1:
                add(members, {node}, 1)
        for u, v, attrs in self.c_tree.edges(data=True):
            members = sorted(attrs["members"])
            if len(members) > 1:
                add(members, {u, v}, -1)
        return blocks

    def _build_c_data(self, blocks: Sequence[dict] = ()) -> None:
        """``c_data``: column ranges and maximal cliques of every column block."""
        self.c_data = {}
        for i in range(self.m):
            self.c_data[i] = {
                "start_index": i * self.k,
                "end_index": (i + 1) * self.k,
                "max_cliques": {
                    node
                    for node, attrs in self.c_tree.nodes(data=True)
                    if i in attrs["members"]
                },
            }
        for block in blocks:
            self.c_data[block["members"]] = {
                "start_index": block["start"],
                "end_index": block["end"],
                "max_cliques": set(block["max_cliques"]),
            }

    def _higher_order_chunk(
        self, Lc: torch.Tensor, blocks: Sequence[dict]
    ) -> torch.Tensor:
        """Pattern one-hots ``[c, sum of block widths]`` of a dense chunk: the
        column of a block's vote pattern (first member most significant) is on
        iff every member voted (no abstain)."""
        c = Lc.shape[0]
        width = sum(b["end"] - b["start"] for b in blocks)
        X = torch.zeros(c, width, dtype=torch.float32, device=Lc.device)
        offset = 0
        for block in blocks:
            code, voted = self._pattern_codes(Lc, block["members"])
            rows = torch.nonzero(voted).squeeze(1)
            X[rows, offset + code[rows]] = 1
            offset += block["end"] - block["start"]
        return X

    def _pattern_codes(
        self, Lc: torch.Tensor, members: Sequence[int]
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Index of each row's joint vote pattern over ``members`` and whether all
        members voted."""
        votes = Lc[:, list(members)].long()
        voted = (votes > 0).all(dim=1)
        weights = self.k ** torch.arange(
            len(members) - 1, -1, -1, device=Lc.device, dtype=torch.long
        )
        code = ((votes - 1).clamp(min=0) * weights).sum(dim=1)
        return code, voted

    def _get_augmented_label_matrix(
        self, L: Any, higher_order: bool = False
    ) -> np.ndarray:
        """The indicator matrix ``[n, d]`` of ``L``: the unary one-hot
        (``higher_order=False``), or with one block of ``k**|C|`` pattern columns
        per clique and separator of >= 2 sources appended, in clique-tree node
        order then edge order. With ``higher_order`` the column ranges are also
        written into the clique tree's node/edge attributes and ``c_data``.

        The dense matrix has ``k**|C|`` columns per clique, so a large clique or
        k makes it huge; one over ``MAX_ARRAY_BYTES`` is refused up front (a
        ValueError giving its size). Training and prediction never build it.
        """
        if not higher_order:
            L_ind = self._create_L_ind(L)
            self._build_c_data()
            return L_ind
        blocks = self._higher_order_blocks()
        L_dense = check_label_matrix(L, name="L", k=self.k)
        self._check_augmented_size(L_dense.shape[0], blocks)
        L_ind = self._create_L_ind(L)
        self._build_c_data(blocks)
        self._annotate_clique_tree(blocks)
        if not blocks:
            return L_ind
        with _one_torch_thread():
            chunks = [
                self._higher_order_chunk(torch.from_numpy(c), blocks)
                for c in iter_dense_chunks(L_dense)
            ]
        return np.hstack([L_ind, torch.cat(chunks).numpy()])

    def _check_augmented_size(self, n: int, blocks: Sequence[dict]) -> None:
        width = self.m * self.k + sum(b["end"] - b["start"] for b in blocks)
        size = n * width * 4  # float32
        if size <= MAX_ARRAY_BYTES:
            return
        largest = max(blocks, key=lambda b: b["end"] - b["start"])
        raise ValueError(
            "The augmented label matrix with higher_order=True would be a dense "
            f"float32 array of {n} x {width} ({_gigabytes(size)}), over the "
            f"{_gigabytes(MAX_ARRAY_BYTES)} limit "
            "(metal.label_model.label_model.MAX_ARRAY_BYTES); its largest block "
            f"is the clique of sources {list(largest['members'])}, with "
            f"k**{len(largest['members'])} = {largest['end'] - largest['start']} "
            "vote patterns. Build it for fewer rows of L or with smaller cliques "
            "(training and prediction never build it: they keep only the vote "
            "patterns that occur in L)."
        )

    def _annotate_clique_tree(self, blocks: Sequence[dict]) -> None:
        by_members = {b["members"]: b for b in blocks}
        items = [(attrs, attrs["members"]) for _, attrs in self.c_tree.nodes(data=True)]
        items += [
            (attrs, attrs["members"]) for _, _, attrs in self.c_tree.edges(data=True)
        ]
        for attrs, members in items:
            members = sorted(members)
            if len(members) == 1:
                attrs["start_index"] = members[0] * self.k
                attrs["end_index"] = (members[0] + 1) * self.k
            else:
                block = by_members[tuple(members)]
                attrs["start_index"], attrs["end_index"] = block["start"], block["end"]

    # ============================================================ statistics
    def _uses_custom_indicators(self) -> bool:
        return type(self)._create_L_ind is not LabelModel._create_L_ind

    def _iter_L_chunks(self, L: Any) -> Iterator[Any]:
        """Consecutive dense row blocks of the (validated) label matrix."""
        return iter_dense_chunks(L, _CHUNK_ROWS)

    def _pass_workers(self, L: Any) -> int:
        """Worker threads for a pass over the validated ``L`` (see
        ``_share_chunks``): as many as torch's intra-op threads, at most one per
        chunk; one on an accelerator, or when a subclass's ``_create_L_ind``
        makes the indicators (it is called from one thread)."""
        if self._device().type != "cpu" or self._uses_custom_indicators():
            return 1
        n_chunks = -(-self._n_rows(L) // _CHUNK_ROWS)
        return max(1, min(torch.get_num_threads(), n_chunks))

    def _overlap_matrix(self, L: Any) -> Any:
        """``O = L_ind^T L_ind / n`` (float64 ``[m*k, m*k]``, source-major
        columns), accumulated chunk by chunk without materialising the one-hot
        of all of L. A dask L is reduced block by block on the active Dask
        scheduler (its values are validated there).

        Returns a dense NumPy array for ``k < _PAIRWISE_MIN_K`` (and for a
        subclass's own indicators), else a ``scipy.sparse.csr_matrix``: O has
        at most ``n * m**2`` non-zeros however large k is."""
        device = self._device()
        d = self.m * self.k
        custom = self._uses_custom_indicators()

        def overlaps(chunks: Iterator[Tuple[int, Any]]) -> Tuple[Any, int]:
            if not custom:
                dense = (chunk for _, chunk in chunks)
                counts, n = _unary_overlaps(dense, self.k, self.m, device)
                return _host_counts(counts), n
            total = torch.zeros(d, d, dtype=torch.float64, device=device)
            n = 0
            for _, chunk in chunks:
                X = torch.as_tensor(self._create_L_ind(chunk), dtype=torch.float32)
                X = X.to(device)
                # Per-chunk counts are exact in float32 (chunks < 2**24 rows).
                total += (X.T @ X).double()
                n += X.shape[0]
            return total.cpu().numpy(), n

        if is_dask_array(L) and not custom:
            parts = [reduce_row_blocks(L, _dask_overlaps, self.k)]
        else:
            parts = _share_chunks(
                overlaps, self._iter_L_chunks(L), self._n_rows, self._pass_workers(L)
            )
        # Sums of integer counts: exact, so the same however the chunks were shared.
        counts = parts[0][0]
        for part, _ in parts[1:]:
            counts = counts + part
        n = max(sum(rows for _, rows in parts), 1)
        if custom:
            return counts / n
        order = self._value_major_to_source_major(d)
        if not sparse.issparse(counts):
            return counts[np.ix_(order, order)] / n
        # The same reordering of a sparse O: value-major index order[j] becomes j.
        position = np.empty(d, dtype=np.int64)
        position[order] = np.arange(d)
        counts = counts.tocoo()
        return sparse.csr_matrix(
            (counts.data / n, (position[counts.row], position[counts.col])),
            shape=(d, d),
        )

    def _value_major_to_source_major(self, d_unary: int) -> np.ndarray:
        """Index array mapping source-major column ``i*k + v`` to ``v*m + i``."""
        i, v = np.divmod(np.arange(d_unary), self.k)
        return v * self.m + i

    def _generate_O(self, L: Any) -> None:
        """Compute the unary overlap matrix ``self.O`` (float64 ``[d, d]``)."""
        self._set_O(self._overlap_matrix(L))

    def _set_O(self, O: Any) -> None:
        """Store a copy of the overlap matrix ``O [d, d]`` (a NumPy array or a
        ``scipy.sparse`` matrix) as the float64 buffer ``self.O`` and set
        ``self.d``: dense up to ``_DENSE_O_MAX_COLUMNS`` columns, beyond a
        coalesced torch sparse COO tensor (``O.to_dense()`` gives the matrix)
        unless more than ``_SPARSE_O_MAX_FILL`` of its entries are non-zero."""
        self.d = d = O.shape[0]
        if d <= _DENSE_O_MAX_COLUMNS or _fill(O) > _SPARSE_O_MAX_FILL * d * d:
            dense = O.toarray() if sparse.issparse(O) else O
            self._set_tensor("O", torch.tensor(dense, dtype=torch.float64))
            return
        coo = sparse.coo_matrix(O)
        coo.sum_duplicates()
        indices = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
        values = torch.from_numpy(coo.data.astype(np.float64))
        tensor = torch.sparse_coo_tensor(
            indices, values, (d, d), check_invariants=False
        ).coalesce()
        self._set_tensor("O", tensor)

    def _diag_O(self) -> np.ndarray:
        """``diag(O)`` (float64 ``[d]``, the propensity of each column)."""
        O = self._buffers["O"]
        if O.layout == torch.strided:
            return np.diag(self._stat("O")).copy()
        indices, values = O.indices().cpu().numpy(), _cpu_float64(O.values())
        diag = np.zeros(O.shape[0])
        on = indices[0] == indices[1]
        diag[indices[0][on]] = values[on]
        return diag

    def _fit_target(self, excluded: np.ndarray) -> _FitTarget:
        """O with the blocks of the source pairs ``excluded[a, b]`` (bool
        ``[m, m]``) set to 0, in the form O is stored in (see ``_set_O``)."""
        k = self.k
        O = self._buffers["O"]
        if O.layout == torch.strided:
            return _FitTarget(self._stat("O") * ~self._source_blocks(excluded))
        O = O.cpu()
        indices, values = O.indices(), O.values()
        rows, cols = indices[0], indices[1]
        keep = ~torch.from_numpy(excluded)[rows // k, cols // k]
        rows, cols, values = rows[keep], cols[keep], values[keep]
        # Coalesced COO indices are sorted by row: the CSR row pointers count them.
        pointers = torch.zeros(self.d + 1, dtype=torch.int64)
        pointers[1:] = torch.cumsum(torch.bincount(rows, minlength=self.d), 0)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support")
            matrix = torch.sparse_csr_tensor(
                pointers,
                cols,
                values.double(),
                (self.d, self.d),
                check_invariants=False,
            )
        return _FitTarget(matrix)

    def _excluded_pairs(self) -> np.ndarray:
        """Bool ``[m, m]``: the pairs of sources that share a maximal clique of
        the clique tree (each source with itself included); the mask leaves
        out their blocks of O."""
        shares = np.eye(self.m, dtype=bool)
        for _, attrs in self.c_tree.nodes(data=True):
            members = list(attrs["members"])
            shares[np.ix_(members, members)] = True
        return shares

    def _generate_O_inv(self, L: Any) -> None:
        """Compute ``self.O`` and ``self.O_inv``."""
        self._generate_O(L)
        self._set_O_inv()

    def _set_O_inv(self) -> None:
        """``self.O_inv``: the inverse of O on the columns that occur in L (a
        value a source never emits has an all-zero row in O and a zero row in
        ``O_inv``; its ``mu`` and ``Z`` rows stay 0)."""
        O = self._stat("O")
        columns = np.ix_(*(2 * [self._fit_columns()]))
        O_inv = np.zeros_like(O)
        O_inv[columns] = self._invert_O(O[columns])
        self._set_tensor("O_inv", torch.from_numpy(O_inv))

    def _fit_columns(self) -> np.ndarray:
        """Bool ``[d]``: the columns the inverse form works on (``O_inv``,
        ``Z``): those that occur in L, less those of exact copies folded into
        their originals (``_find_copies``)."""
        columns = self._active_columns()
        for copy in getattr(self, "_folds", {}):
            columns[copy * self.k : (copy + 1) * self.k] = False
        return columns

    def _find_copies(self) -> Dict[int, int]:
        """``{copy: original}`` for the sources that vote exactly as another
        source on every item (same value, same abstains) and are dependent on
        it in the clique tree; the original is the group's lowest source.

        Such a pair's indicator columns are equal, so O is singular; but a copy
        carries no information beyond its original, and the fit leaves it out
        (its O, ``O_inv`` and Z rows) and gives it the original's mu rows. Read
        from O: sources a and b are copies iff ``O[a_v, b_v] = O[a_v, a_v] =
        O[b_v, b_v]`` for every value v (O holds exact counts / n). Copies that
        are not dependent are left in; ``_invert_O`` names them.
        """
        k, m = self.k, self.m
        if self._uses_custom_indicators() or self.d != m * k or m < 2:
            return {}
        O = self._stat("O")
        equal = _equal_columns(O).reshape(m, k, m, k)
        same = np.all(np.diagonal(equal, axis1=1, axis2=3), axis=2)  # [m, m]
        voted = np.diag(O).reshape(m, k).sum(axis=1) > 0
        same &= voted[:, None]  # a source that never votes is no copy
        adjacent = self._excluded_pairs()
        folds: Dict[int, int] = {}
        for a in range(m):
            if a in folds:
                continue
            group, frontier = {a}, [a]
            while frontier:  # copies of a reached through dependent copies
                b = frontier.pop()
                for c in np.flatnonzero(same[b] & adjacent[b]).tolist():
                    if c not in group:
                        group.add(c)
                        frontier.append(c)
            for c in group - {a}:
                folds[c] = a
        return folds

    def _folded_mask(self, mask: np.ndarray) -> np.ndarray:
        """The mask of the fit with each copy's dependencies moved onto its
        original (an entry is fitted only if neither source's copies share a
        clique with the other)."""
        if not self._folds:
            return mask
        mask = mask.copy()
        k = self.k
        for copy, original in self._folds.items():
            c = slice(copy * k, (copy + 1) * k)
            o = slice(original * k, (original + 1) * k)
            mask[o, :] &= mask[c, :]
            mask[:, o] &= mask[:, c]
        return mask

    def _active_columns(self) -> np.ndarray:
        """Bool ``[d]``: the indicator columns that are on for some item of L
        (``diag(O) > 0``)."""
        return self._diag_O() > 0

    def _invert_O(self, O: np.ndarray) -> np.ndarray:
        cond = 1.0
        if O.size:
            # O is symmetric: its singular values are |eigenvalues| (eigvalsh
            # is ~3x faster than the SVD np.linalg.cond would take).
            spectrum = np.abs(np.linalg.eigvalsh(O))
            smallest = spectrum.min()
            cond = spectrum.max() / smallest if smallest > 0 else np.inf
        if not np.isfinite(cond) or cond > 1e12:
            raise ValueError(
                "The overlap matrix O is singular, so the dependency-aware fit "
                f"(deps={[tuple(e) for e in self.deps]}) cannot invert it: "
                + self._singularity_causes()
            )
        return np.linalg.inv(O)

    def _singularity_causes(self) -> str:
        """What makes O singular, naming the sources: pairs of sources whose
        votes determine each other (equal indicator columns, e.g. exact copies
        not declared dependent, or copies up to relabelling), and sources that
        never abstain (their indicator columns sum to the all-ones column)."""
        k, m = self.k, self.m
        if self._uses_custom_indicators() or self.d != m * k:
            return "some combination of the indicator columns is linearly dependent."
        O = self._stat("O")
        diag = np.diag(O)
        columns = np.flatnonzero(self._fit_columns())
        causes = []
        equal: Dict[Tuple[int, int], List[Tuple[int, int]]] = {}
        tied = _equal_columns(O)[np.ix_(columns, columns)]
        rows, cols = np.nonzero(tied & (columns[:, None] // k < columns[None, :] // k))
        for i, j in zip(columns[rows].tolist(), columns[cols].tolist()):
            # pairs of equal indicator columns of two sources
            equal.setdefault((i // k, j // k), []).append((i % k, j % k))
        active = self._fit_columns().reshape(m, k).sum(axis=1)
        rare = []
        for (a, b), values in sorted(equal.items()):
            if len(values) < max(active[a], active[b]):
                rare += [(a, v + 1, b, w + 1) for v, w in values]
            elif all(v == w for v, w in values):
                causes.append(
                    f"sources {a} and {b} vote exactly alike on every item ({b} is "
                    f"a copy of {a}); declare them dependent, deps=[..., ({a}, "
                    f"{b})], or drop one"
                )
            else:
                causes.append(
                    f"sources {a} and {b} determine each other's votes (a copy up "
                    "to relabelling); drop one of them"
                )
        if rare:
            shown = ", ".join(
                f"source {a} voting {v} and source {b} voting {w}"
                for a, v, b, w in rare[:5]
            )
            more = f" (and {len(rare) - 5} more pairs)" if len(rare) > 5 else ""
            causes.append(
                f"some votes occur on exactly the same few items ({shown}{more}), "
                f"too few among n={self.n} items to tell them apart; fit on more "
                "items, or with fewer dependencies"
            )
        coverage = diag.reshape(m, k).sum(axis=1)
        full = [
            s for s in range(m) if np.isclose(coverage[s], 1.0) and s not in self._folds
        ]
        if len(full) > 1:
            causes.append(
                f"sources {full} never abstain, so their indicator columns each sum "
                "to the all-ones column; fit without deps, or drop the "
                "dependencies on all but one of them"
            )
        if not causes:
            return (
                "some combination of the sources' indicator columns is linearly "
                "dependent (check for sources whose votes are a function of "
                "others')."
            )
        return "; ".join(causes) + "."

    def _build_mask(self) -> None:
        """``self.mask [d, d]`` (bool): True on the pairs of column blocks that
        share no maximal clique (the entries the objective fits)."""
        self._set_tensor("mask", torch.from_numpy(self._mask_from_c_data()))

    def _mask_from_c_data(self) -> np.ndarray:
        entries = list(self.c_data.values())
        if len(entries) == self.m and self.d == self.m * self.k:
            return self._unary_mask()
        mask = np.ones((self.d, self.d), dtype=bool)
        for a, ci in enumerate(entries):
            for cj in entries[a:]:
                if ci["max_cliques"] & cj["max_cliques"]:
                    si, ei = ci["start_index"], ci["end_index"]
                    sj, ej = cj["start_index"], cj["end_index"]
                    mask[si:ei, sj:ej] = False
                    mask[sj:ej, si:ei] = False
        return mask

    def _unary_mask(self) -> np.ndarray:
        """The mask for unary columns only: False between sources that share a
        maximal clique (including each source with itself)."""
        return ~self._source_blocks(self._excluded_pairs())

    def _source_blocks(self, pairs: np.ndarray) -> np.ndarray:
        """``[d, d]``: each entry of the ``[m, m]`` ``pairs`` repeated over the
        ``k x k`` block of its two sources' indicator columns."""
        source = np.repeat(np.arange(self.m), self.k)
        return pairs[np.ix_(source, source)]

    # ======================================================== initialisation
    def _prec_init_vector(self) -> np.ndarray:
        values = check_float_array(
            self.config["train_config"]["prec_init"],
            "prec_init",
            expected=f"a number or an array of shape ({self.m},)",
            minimum=0,
            maximum=1,
        )
        if values.ndim == 0:
            values = np.full(self.m, float(values))
        if values.shape != (self.m,):
            raise ValueError(
                f"prec_init must be a number or have shape ({self.m},) (one value "
                f"per source); found shape {values.shape}."
            )
        return values

    def _l2_rows(self, l2: FloatArrayLike) -> np.ndarray:
        """Per-row strengths (length m*k) of the l2 penalty on ``mu``."""
        values = check_float_array(l2, "l2", expected="a number or an array", minimum=0)
        m, k = self.m, self.k
        if values.ndim == 0:
            return np.full(m * k, float(values))
        if values.shape == (m,):
            return np.repeat(values, k)
        if values.shape == (m * k,):
            return values
        raise ValueError(
            f"l2 must be a number or an array of length m={m} (per source) or "
            f"m*k={m * k} (per row of mu); found shape {values.shape}."
        )

    def _init_params(self, warm_start: Optional[dict] = None) -> np.ndarray:
        """Set ``mu_init`` from the propensities and ``prec_init``, and start ``mu``
        at ``u * mu_init`` with one scalar ``u ~ U[0, 1)`` (MeTaL's rule), or at
        ``warm_start["mu"]`` (and ``warm_start["Z"]``) when given.

        Returns the float64 start of ``mu`` ``[d, k]`` (the fit starts from it;
        the ``mu`` parameter holds it rounded to float32).
        """
        prec = self._prec_init_vector()
        lps = self._diag_O().reshape(self.m, self.k)
        with np.errstate(divide="ignore", invalid="ignore"):
            diag = np.clip(lps * prec[:, None] / self.p[None, :], 0.0, 1.0)
        diag = np.nan_to_num(diag, nan=0.0)
        mu_init = np.zeros((self.d, self.k))
        rows = np.arange(self.m)[:, None] * self.k + np.arange(self.k)[None, :]
        mu_init[rows, np.arange(self.k)[None, :]] = diag
        self._set_tensor("mu_init", torch.from_numpy(mu_init))
        warm_start = warm_start or {}
        warm_mu = warm_start.get("mu")
        warm_Z = warm_start.get("Z")
        rng = None
        if warm_mu is not None and warm_mu.shape == mu_init.shape:
            mu_start = np.array(warm_mu, dtype=np.float64)
        else:
            rng = self._rng()
            mu_start = mu_init * rng.random()
        self._set_mu(mu_start)
        self._warm_Z = False
        if self.inv_form:
            if warm_Z is not None and warm_Z.shape == (self.d, self.k):
                Z = torch.as_tensor(warm_Z, dtype=torch.float32)
                self._warm_Z = True
            else:
                # Drawn even though the fit starts from a spectral estimate
                # (see _fit_Z), so that a seed gives the same mu start as ever.
                rng = rng if rng is not None else self._rng()
                gen = torch.Generator().manual_seed(int(rng.randint(2**31)))
                Z = torch.randn(self.d, self.k, generator=gen)
            self.Z = nn.Parameter(Z)
        self._build_mask()
        return mu_start

    def _rng(self) -> np.random.RandomState:
        seed = self.config.get("seed")
        return (
            np.random.RandomState(seed % 2**32)
            if seed is not None
            else np.random.mtrand._rand
        )

    # =============================================================== training
    def train_model(
        self,
        L_train: LabelMatrixLike,
        Y_dev: Optional[LabelVectorLike] = None,
        deps: Optional[Sequence[Tuple[int, int]]] = [],
        class_balance: Optional[FloatArrayLike] = None,
        log_writer: Optional[LogWriter] = None,
        **kwargs: Any,
    ) -> None:
        """Fit the class-conditional accuracies ``mu`` of the sources.

        Args:
            L_train: label matrix ``[n, m]`` with values in 0..k (0 = abstain);
                dense (any integer dtype or integral floats), scipy.sparse (any
                format), a torch tensor, or a ``dask.array.Array`` in any
                chunking: its statistics (O, and with ``deps`` the clique
                tables) are then reduced block by block on the active Dask
                scheduler (a ``distributed.Client`` if one exists), its values
                validated there, and it is never gathered into one process.
            Y_dev: optional gold labels in 0..k (0 = no gold label, ignored),
                used only to estimate the class balance (the share of each
                label 1..k) when ``class_balance`` is not given; in memory or
                a dask array (counted block by block).
            deps: dependency edges ``(i, j)`` between sources; non-empty deps use
                the inverse form and a junction-tree posterior.
            class_balance: optional ``P(Y = y)``, length k, summing to 1.
            log_writer: optional ``metal.logging`` writer receiving
                ``train/loss`` at each logged iteration, used instead of the
                config's ``writer`` (left open: its owner closes it).
            **kwargs: config overrides (e.g. ``n_epochs=500``, ``l2=0.1``,
                ``prec_init=0.8``); an unknown key is dropped with a
                ``UserWarning``. A
                ``valid_data`` keyword (passed by the model tuners to every
                model) is accepted and not used: the fit needs no labels.
        """
        kwargs.pop("valid_data", None)
        config = merge_config(self.config, kwargs, type(self).__name__)
        _check_run_settings(config)
        self.config = config
        L = self._check_L(L_train)
        self._set_class_balance(class_balance, Y_dev)
        self._set_constants(L)
        self._set_dependencies(deps)
        own_writer = None
        if log_writer is None:
            own_writer = log_writer = self._build_writer()
        self._log_writer = log_writer
        try:
            self._fit(L)
        finally:
            self._log_writer = None
            if own_writer is not None:
                finish_writer(own_writer, self.config, None)

    def _build_writer(self) -> Optional[LogWriter]:
        """The run-log writer the config's ``writer``/``writer_config`` name
        (None without one)."""
        tc = self.config["train_config"]
        kwargs = dict(tc.get("writer_config") or {})
        kwargs.setdefault("verbose", bool(self.config["verbose"]))
        return build_writer(WriterSpec(kind=tc.get("writer"), kwargs=kwargs))

    def _fit(
        self,
        L: Any,
        O: Optional[np.ndarray] = None,
        warm_start: Optional[Dict[str, Any]] = None,
    ) -> None:
        """Fit ``mu`` once the constants, dependencies and class balance are set.

        Args:
            L: the validated label matrix (used for O unless ``O`` is given, and
                for the clique tables of a dependency model).
            O: optional precomputed overlap matrix (float64 ``[m*k, m*k]``).
            warm_start: optional dict with a previous ``mu`` (and ``Z``) to
                start from instead of MeTaL's initialisation.
        """
        self.inv_form = len(self.deps) > 0
        self._clear_fit_state()
        self._build_c_data()
        verbose = self.config["verbose"]
        if verbose:
            print("Computing O^{-1}..." if self.inv_form else "Computing O...")
        if O is None:
            O = self._overlap_matrix(L)
        self._set_O(O)
        if self.inv_form:
            self._folds = self._find_copies()
            self._set_O_inv()
        mu_start = self._init_params(warm_start)
        if mu_start is None:  # an _init_params override that only sets mu
            mu_start = _cpu_float64(self.mu)
        if not self.inv_form:
            if verbose:
                print("Estimating \\mu...")
            excluded = self._excluded_pairs()
            mu = self._fit_mu(self._fit_target(excluded), excluded, mu_start)
        else:
            if verbose:
                print("Estimating Z...")
            mask = self.mask.cpu().numpy()
            Z = self._fit_Z(self._stat("O_inv"), self._folded_mask(mask))
            self.Z = nn.Parameter(torch.from_numpy(Z).float().to(self._device()))
            B, inner = self._Q_factors()
            self._set_tensor("Q", torch.from_numpy((B @ inner) @ B.T))
            if verbose:
                print("Estimating \\mu...")
            nothing = np.zeros((self.m, self.m), dtype=bool)
            mu = self._fit_mu(_LowRankTarget(B, inner), nothing, mu_start)
            for copy, original in self._folds.items():
                k = self.k
                mu[copy * k : (copy + 1) * k] = mu[original * k : (original + 1) * k]
        self._set_mu(mu)
        self.is_trained = True
        if self.inv_form:
            self._blocks = self._higher_order_blocks()
            if self._blocks and L is not None:
                if verbose:
                    print("Estimating clique tables...")
                self._estimate_clique_tables(L)
            elif self._blocks:
                self._blocks = []
        if verbose:
            print("Finished Training")

    def _clear_fit_state(self) -> None:
        for name in ("O_inv", "Z", "Q") + _CLIQUE_BUFFERS:
            self._buffers.pop(name, None)
            self._parameters.pop(name, None)
        self._blocks = []
        self._folds = {}
        self._indices = None

    # ------------------------------------------------------------- solvers
    def _fit_mu(
        self, target: _FitTarget, excluded: np.ndarray, start: np.ndarray
    ) -> np.ndarray:
        """Minimise ``_mu_objective(target, excluded)`` over ``mu [d, k]`` from
        ``start`` (float64 ``[d, k]``); then break the label permutation
        symmetry in favour of ``prec_init``."""
        objective = self._mu_objective(target, excluded)
        mu = self._minimize(objective, start, "mu")
        permutation = self._best_label_permutation(mu)
        if permutation is not None:
            mu = self._minimize(objective, mu[:, permutation], "mu")
        return mu

    def _mu_objective(self, target: _FitTarget, excluded: np.ndarray) -> Objective:
        """``x -> (f, grad)`` for ``mu = x.reshape(d, k)`` (float64): ``f =
        ||(target - mu P mu^T)[mask]||^2 + ||mu p - diag(O)||^2 +
        ||D (mu - mu_init)||^2``, where the mask leaves out the ``k x k``
        blocks of the source pairs ``excluded[a, b]`` (bool ``[m, m]``) and
        ``target`` holds the target with those blocks already 0.

        Never forms a ``[d, d]`` matrix: the residual term is
        ``_masked_gram_residual`` of ``V = mu P^(1/2)`` (``mu P mu^T = V V^T``),
        with the source blocks of k rows. Work per evaluation: a product of T
        with a ``[d, k]`` array (sparse for large d) and ``2 m k^3``; the same
        objective, value and gradient, as the dense masked form, up to
        rounding."""
        m, k, d = self.m, self.k, self.d
        if d != m * k:
            raise ValueError(
                f"The mu fit needs k={k} indicator columns per source; found "
                f"d={d} columns for m={m} sources."
            )
        p = self.p
        root_p = np.sqrt(p)
        diag_O = self._diag_O()
        l2_rows = self._l2_rows(self.config["train_config"].get("l2", 0.0))
        l2_col = l2_rows[:, None] if np.any(l2_rows) else None
        mu_init = self._stat("mu_init")
        # mu P mu^T = V V^T with V = mu P^(1/2)
        blocks = [slice(a * k, (a + 1) * k) for a in range(m)]
        residual = _masked_gram_residual(target, blocks, excluded, -1.0, k)
        p_t = torch.tensor(p, dtype=torch.float64)

        def objective(x):
            mu = x.reshape(d, k)
            f, g = residual(mu * root_p)
            g *= root_p
            e = mu @ p - diag_O
            f += e @ e
            torch.from_numpy(g).addr_(torch.from_numpy(2.0 * e), p_t)  # += 2 e p^T
            if l2_col is not None:
                D = l2_col * (mu - mu_init)
                f += np.sum(D * D)
                g += 2.0 * l2_col * D
            return float(f), g.ravel()

        return objective

    def _fit_Z(self, O_inv: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Minimise ``||(O^-1 + Z Z^T)[mask]||^2`` over the rank-k ``Z`` (the rows
        of columns left out of the inverse, see ``_fit_columns``, stay 0).

        The entries of ``O^-1`` are about one over the vote propensities, so
        the objective's curvature grows with k and with rare votes by orders of
        magnitude, and no one step size suits every problem. The fit therefore
        runs in normalised coordinates: with ``s`` the spectral norm of
        ``A = O^-1[mask]``, ``W = Z / sqrt(s)`` minimises
        ``||(A / s + W W^T)[mask]||^2``, whose curvature is of order one.

        The start is a warm-start ``Z``, else the rank-k completion of ``-A``
        (``_low_rank_completion``: its top k eigenpairs refined by hard impute
        of the masked-out entries), which alone is close to the optimum on
        typical data. The first-order optimizers then step along the gradient
        times ``(W^T W + eps I)^-1`` (scaled gradient descent: every direction
        of the factor converges at the same rate); the configured optimizer,
        ``lr`` and ``n_epochs`` apply to these steps (L-BFGS gets the plain
        gradient). The logged loss is ``loss_inv_Z``'s.
        """
        columns = self._fit_columns()
        grid = np.ix_(columns, columns)
        mask_f = mask[grid].astype(np.float64)
        A = O_inv[grid] * mask_f
        k, d_a = self.k, int(columns.sum())
        Z = np.zeros((self.d, k))
        if d_a == 0:
            return Z
        start = self.Z.detach().double().cpu().numpy()[columns]
        if self._warm_Z:
            _, _, norm = _top_eigenpairs(-A, k, start[:, 0])
            scale = norm if norm > 0 else 1.0
            W0 = start / np.sqrt(scale)
        else:
            values, vectors, norm = _low_rank_completion(
                -A, mask_f == 0, k, start[:, 0]
            )
            scale = norm if norm > 0 else 1.0
            # Directions with no positive eigenvalue start small, not at 0 (a
            # zero column of W would receive no gradient).
            floor = 1e-3 * max(float(values.max(initial=0.0)), 0.0)
            W0 = np.zeros((d_a, k))
            W0[:, : values.size] = vectors * np.sqrt(np.maximum(values, floor) / scale)
        A /= scale
        # The mask is constant on the blocks of pairs of sources: False where
        # they share a clique. Group the fitted columns by source.
        excluded = ~mask[:: self.k, :: self.k]
        bounds = np.searchsorted(np.flatnonzero(columns) // k, np.arange(self.m + 1))
        blocks = [slice(bounds[a], bounds[a + 1]) for a in range(self.m)]
        residual = _masked_gram_residual(_FitTarget(A), blocks, excluded, 1.0, k)

        def objective(x):
            f, g = residual(x.reshape(d_a, k))
            return f, g.ravel()

        def precondition(x, g):
            W = x.reshape(d_a, k)
            G = W.T @ W
            G[np.diag_indices(k)] += 1e-2 * np.trace(G) / k + 1e-12
            return np.linalg.solve(G, g.reshape(d_a, k).T).T.ravel()

        W = self._minimize(
            objective, W0, "Z", precondition=precondition, log_scale=scale**2
        )
        Z[columns] = W * np.sqrt(scale)
        return Z

    def _minimize(
        self,
        objective: Objective,
        start: np.ndarray,
        name: str,
        precondition: Optional[Preconditioner] = None,
        log_scale: float = 1.0,
    ) -> np.ndarray:
        """Minimise ``objective(x) -> (f, grad)`` from ``start`` with the
        configured optimizer: ``n_epochs`` full-batch steps of sgd (momentum),
        adam, adamax or rmsprop as MeTaL takes them, or L-BFGS ("lbfgs") run to
        convergence with ``n_epochs`` as its iteration cap. A first-order run
        that diverges falls back to L-BFGS with a warning.

        ``precondition(x, grad)``, when given, maps the gradient to the
        direction the first-order steps take (L-BFGS always gets the
        gradient); the logged loss is ``f * log_scale``."""
        tc = self.config["train_config"]
        n_epochs = check_int(tc["n_epochs"], "n_epochs", minimum=0)
        if n_epochs == 0:
            return start.copy()
        if tc.get("lr_scheduler") is not None:
            raise ValueError(
                "The LabelModel takes full-batch steps with a fixed learning rate; "
                f"lr_scheduler must be None, found {tc['lr_scheduler']!r}."
            )
        opt_config = tc["optimizer_config"]
        name_opt = check_choice(
            opt_config["optimizer"],
            sorted(FIRST_ORDER_OPTIMIZERS) + ["lbfgs"],
            "optimizer",
        )
        if name_opt == "lbfgs":
            return self._minimize_lbfgs(objective, start, name, n_epochs, log_scale)
        x = self._minimize_first_order(
            objective, start, name_opt, opt_config, n_epochs, precondition, log_scale
        )
        if x is None:
            warnings.warn(
                f"The {name_opt} fit of {name} diverged (the loss became non-finite); "
                "solved with L-BFGS instead. Lower lr to keep the first-order solver."
            )
            return self._minimize_lbfgs(
                objective, start, name, max(n_epochs, 100), log_scale
            )
        return x

    def _minimize_first_order(
        self,
        objective: Objective,
        start: np.ndarray,
        optimizer: str,
        opt_config: dict,
        n_epochs: int,
        precondition: Optional[Preconditioner] = None,
        log_scale: float = 1.0,
    ) -> Optional[np.ndarray]:
        """``n_epochs`` full-batch steps of the torch optimizer ``optimizer`` from
        ``start`` (float64, any shape).

        The iterate is a float64 CPU tensor that the objective reads through a
        NumPy view of it; each step sets its ``.grad`` from the analytic NumPy
        gradient (no copies either way), or from ``precondition(x, grad)``.
        Returns the result in ``start``'s shape, or ``None`` if the loss or the
        iterate became non-finite.
        """
        x = torch.tensor(np.ravel(start), dtype=torch.float64)
        x_np = x.numpy()  # a view: the objective reads the iterate through it
        x.requires_grad_(True)  # a parameter to the optimizer
        torch_optimizer = self._torch_optimizer(x, optimizer, opt_config)
        threads = (
            _one_torch_thread() if x.numel() < _PARALLEL_STEP_MIN else nullcontext()
        )
        with np.errstate(over="ignore", invalid="ignore"), threads:
            for epoch in range(1, n_epochs + 1):
                f, g = objective(x_np)
                if not np.isfinite(f):
                    return None
                self._log_loss(epoch, f * log_scale)
                if precondition is not None:
                    g = precondition(x_np, g)
                x.grad = torch.from_numpy(np.ascontiguousarray(g, dtype=np.float64))
                torch_optimizer.step()
            if not np.all(np.isfinite(x_np)) or not np.isfinite(objective(x_np)[0]):
                return None
        return x_np.reshape(start.shape)

    @staticmethod
    def _torch_optimizer(
        x: torch.Tensor, optimizer: str, opt_config: dict
    ) -> torch.optim.Optimizer:
        """The torch optimizer named ``optimizer`` over the single tensor ``x``.

        ``lr`` comes from ``optimizer_config["optimizer_common"]``; every other
        setting from the optimizer's sub-config (``sgd_config``,
        ``adam_config`` (also read by adamax, which ignores Adam-only keys such
        as ``amsgrad``) or ``rmsprop_config``) is passed to torch as is, so
        ``momentum``, ``nesterov``, ``betas``, ``weight_decay``, ... mean what
        they mean in ``torch.optim``. Settings torch rejects raise
        ``ValueError`` naming the sub-config.
        """
        name, settings = optimizer_settings(opt_config)
        # The iterate lives on the CPU, where torch picks the single-tensor
        # implementation anyway; naming it skips that choice at every step.
        try:
            return build_optimizer(name, [x], {"foreach": False, **settings})
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"The {optimizer} optimizer rejected the settings {settings!r} of "
                f"optimizer_config (optimizer_common and "
                f"{OPTIMIZER_SUBCONFIGS[name]!r}): {error}"
            ) from None

    def _minimize_lbfgs(
        self,
        objective: Objective,
        start: np.ndarray,
        name: str,
        max_iter: int,
        log_scale: float = 1.0,
    ) -> np.ndarray:
        state = {"iteration": 0}

        def callback(xk):
            state["iteration"] += 1
            if self._logging_due(state["iteration"]):
                loss = float(objective(xk)[0]) * log_scale
                self._log_loss(state["iteration"], loss)

        result = optimize.minimize(
            objective,
            start.ravel(),
            jac=True,
            method="L-BFGS-B",
            callback=callback,
            options={"maxiter": max_iter, "ftol": _FTOL, "gtol": _GTOL, "maxcor": 20},
        )
        if not np.all(np.isfinite(result.x)):
            raise ValueError(
                f"The fit of {name} diverged (non-finite values); check L for "
                "degenerate sources."
            )
        return result.x.reshape(start.shape)

    def _logging_due(self, epoch: int) -> bool:
        if not (self.config["verbose"] or self._log_writer is not None):
            return False
        logger_config = self.config["train_config"].get("logger_config", {})
        every = logger_config.get("log_train_every", 1) or 1
        return epoch % every == 0

    def _log_loss(self, epoch: int, loss: float) -> None:
        if not self._logging_due(epoch):
            return
        if self._log_writer is not None:
            self._log_writer.add_scalar("train/loss", float(loss), epoch)
        if self.config["verbose"]:
            print(f"[{epoch} epo]: TRAIN:[loss={loss:.3f}]")

    def _best_label_permutation(self, mu: np.ndarray) -> Optional[np.ndarray]:
        """The column permutation of ``mu`` most consistent with ``prec_init``.

        Sources whose ``prec_init`` is above 1/k are expected to be accurate,
        those below it inaccurate; the permutation maximising the weighted
        probability of a correct vote, ``sum_i w_i sum_y p_y mu[i, y, sigma(y)]``
        with ``w_i = prec_init_i - 1/k``, is chosen. Returns ``None`` when the
        current labelling is already the best.
        """
        weights = self._prec_init_vector() - 1.0 / self.k
        if not np.any(weights):
            return None
        unary = mu[: self.m * self.k].reshape(self.m, self.k, self.k)
        # score[y, c] = p_y * sum_i w_i * P(lambda_i = y | column c)
        score = self.p[:, None] * np.einsum("i,iyc->yc", weights, unary)
        rows, cols = optimize.linear_sum_assignment(score, maximize=True)
        permutation = cols[np.argsort(rows)]
        gain = score[np.arange(self.k), permutation].sum() - np.trace(score)
        if np.array_equal(permutation, np.arange(self.k)) or gain <= 1e-12:
            return None
        return permutation

    def _set_mu(self, mu: np.ndarray) -> None:
        self.mu = nn.Parameter(torch.from_numpy(mu).float().to(self._device()))

    def _set_tensor(self, name: str, value: torch.Tensor) -> None:
        """Register (or replace) the buffer ``name`` on the model's device."""
        value = value.to(self._device())
        if name in self._buffers:
            self._buffers[name] = value
        else:
            self.register_buffer(name, value)

    def _stat(self, name: str) -> np.ndarray:
        """NumPy float64 form of the statistic buffer ``name`` (``O``, ``O_inv``,
        ``mu_init``, ``Q`` or ``P``): a view of it on CPU, a copy on an
        accelerator. The fit reads the statistics through this. A sparse ``O``
        (see ``_set_O``) is made dense, if its dense form stays within
        ``MAX_ARRAY_BYTES``."""
        value = self._buffers[name]
        if value.layout != torch.strided:
            value = self._dense(name, value)
        return _cpu_float64(value)

    def _dense(self, name: str, value: torch.Tensor) -> torch.Tensor:
        """The dense form of the sparse buffer ``name`` (the fit of a model
        with dependencies inverts O), refused beyond ``MAX_ARRAY_BYTES``."""
        size = 8 * value.shape[0] * value.shape[1]
        if size > MAX_ARRAY_BYTES:
            raise ValueError(
                f"The dense form of {name} ([{value.shape[0]}, {value.shape[1]}], "
                f"{_gigabytes(size)}) exceeds MAX_ARRAY_BYTES "
                f"({_gigabytes(MAX_ARRAY_BYTES)}) of metal.label_model.label_model; "
                "fit without dependencies (the plain form keeps O sparse), or "
                "raise MAX_ARRAY_BYTES on a machine with more memory."
            )
        return value.to_dense()

    # =================================================== losses (torch form)
    # Computed in the statistics' dtype (float64); the float32 ``mu`` and ``Z``
    # are cast differentiably, so ``backward()`` still reaches them.
    def loss_l2(self, l2: FloatArrayLike = 0) -> torch.Tensor:
        """``||D (mu - mu_init)||_F^2`` with ``D = l2 * I`` (a number) or
        ``diag(l2)`` (per source or per row of mu)."""
        mu_init = self.mu_init
        mu = self.mu.to(mu_init.dtype)
        D = torch.from_numpy(self._l2_rows(l2)).to(mu.device, mu.dtype)
        return torch.sum((D[:, None] * (mu - mu_init)) ** 2)

    def _O_tensor(self) -> torch.Tensor:
        """``self.O`` as a dense float64 tensor (a sparse O made dense)."""
        O = self.O
        return O if O.layout == torch.strided else self._dense("O", O)

    def loss_mu(self, *args: Any, l2: FloatArrayLike = 0) -> torch.Tensor:
        """The no-dependency objective evaluated at the current ``mu``."""
        O, P = self._O_tensor(), self.P
        mu = self.mu.to(O.dtype)
        diff = (O - mu @ P @ mu.T)[self.mask]
        marginal = torch.sum(mu @ P, dim=1) - torch.diag(O)
        return torch.sum(diff**2) + torch.sum(marginal**2) + self.loss_l2(l2=l2)

    def loss_inv_Z(self, *args: Any) -> torch.Tensor:
        """The first dependency-form objective evaluated at the current ``Z``."""
        O_inv = self.O_inv
        Z = self.Z.to(O_inv.dtype)
        return torch.sum(((O_inv + Z @ Z.T)[self.mask]) ** 2)

    def loss_inv_mu(self, *args: Any, l2: FloatArrayLike = 0) -> torch.Tensor:
        """The second dependency-form objective evaluated at the current ``mu``."""
        O, P = self._O_tensor(), self.P
        mu = self.mu.to(O.dtype)
        diff = self.Q - mu @ P @ mu.T
        marginal = torch.sum(mu @ P, dim=1) - torch.diag(O)
        return torch.sum(diff**2) + torch.sum(marginal**2) + self.loss_l2(l2=l2)

    def get_Q(self) -> np.ndarray:
        """``Q = O Z (I_k + Z^T O Z)^-1 Z^T O`` (float64 ``[d, d]``)."""
        B, inner = self._Q_factors()
        return (B @ inner) @ B.T

    def _Q_factors(self) -> Tuple[np.ndarray, np.ndarray]:
        """``(B, inner)`` with ``Q = B inner B^T``: ``B = O Z`` (``[d, k]``) and
        ``inner = (I_k + Z^T O Z)^-1`` (O is symmetric)."""
        Z = _cpu_float64(self.Z)
        B = self._stat("O") @ Z
        inner = np.linalg.inv(np.eye(self.k) + Z.T @ B)
        return B, inner

    # ============================================================= prediction
    def _check_trained(self) -> None:
        if not getattr(self, "is_trained", False):
            raise ValueError(
                "This LabelModel is not trained yet; call train_model(L_train) first."
            )

    def get_conditional_probs(self, source: Optional[int] = None) -> np.ndarray:
        """Estimated ``P(lambda_i = l | Y = y)`` including abstains.

        Returns a float64 array ``[m*(k+1), k]``: row ``i*(k+1) + l``, column
        ``y-1`` (l = 0 is abstain, computed as one minus the other rows), clipped
        to [0.01, 0.99]; or only source ``source``'s ``[k+1, k]`` block.
        """
        self._check_trained()
        k, m = self.k, self.m
        mu = self.mu.detach().double().cpu().numpy().reshape(m, k, k)
        table = np.empty((m, k + 1, k))
        table[:, 1:, :] = mu
        table[:, 0, :] = 1.0 - mu.sum(axis=1)
        table = np.clip(table, *PROB_CLIP).reshape(m * (k + 1), k)
        if source is None:
            return table
        source = check_int(source, "source", minimum=0)
        if source >= m:
            raise ValueError(f"source must be in 0..{m - 1}; found {source}.")
        return table[source * (k + 1) : (source + 1) * (k + 1)]

    def predict_proba(self, L: LabelMatrixLike) -> np.ndarray:
        """Posterior ``P(Y = y | votes)`` for each item: float64 ``[n, k]``.

        Without dependencies: ``P(y | lambda) ~ p_y * prod over voting sources
        of mu[i, lambda_i, y]`` (clipped to [0.01, 0.99]; abstains are
        uninformative). With dependencies the junction-tree factorisation is
        used: clique pattern tables divided by separator tables. Computed in
        log space, chunk by chunk.

        For a ``dask.array.Array`` L the result is a lazy float64 dask array
        ``[n, k]`` with L's row chunks: each block's posterior is computed
        (and its votes validated) when the array is computed, on the workers,
        from the model's small weights.
        """
        self._check_trained()
        if is_dask_array(L) and not self._uses_custom_indicators():
            return self._predict_proba_dask(L)
        if self._uses_custom_indicators():
            L = self._check_L(L)
        else:
            L = check_label_matrix(L, name="L", k=self.k)
        n_sources = self._n_sources(L)
        if n_sources != self.m:
            raise ValueError(
                f"L has {n_sources} sources (columns) but the model was trained "
                f"on m={self.m}."
            )
        device = self._device()
        probs = np.empty((self._n_rows(L), self.k))
        custom = self._uses_custom_indicators()
        with torch.no_grad():
            weights = self._log_weights()
            posterior = self._posterior(weights)
        log_mu, _, log_p, _ = weights

        def posteriors(chunks: Iterator[Tuple[int, Any]]) -> None:
            buffer = (
                None if custom or self.k >= _PAIRWISE_MIN_K else self._chunk_buffer()
            )
            with torch.no_grad():  # grad mode is per thread
                for start, chunk in chunks:
                    if custom:
                        X = torch.as_tensor(
                            self._create_L_ind(chunk), dtype=torch.float32
                        )
                        scores = X.to(device) @ log_mu + log_p
                        chunk_probs = torch.softmax(scores.double(), dim=1)
                        probs[start : start + len(chunk_probs)] = chunk_probs.cpu()
                    else:
                        Lc = torch.from_numpy(chunk).to(device)
                        end = start + Lc.shape[0]
                        posterior.probabilities(Lc, buffer, out=probs[start:end])

        _share_chunks(
            posteriors, self._iter_L_chunks(L), self._n_rows, self._pass_workers(L)
        )
        return probs

    def _predict_proba_dask(self, L: Any) -> Any:
        """The lazy posterior ``[n, k]`` of a dask L (see ``predict_proba``)."""
        L = dask_label_matrix(L, name="L")
        if L.shape[1] != self.m:
            raise ValueError(
                f"L has {L.shape[1]} sources (columns) but the model was trained "
                f"on m={self.m}."
            )
        with torch.no_grad():
            posterior = self._posterior(self._log_weights(), torch.device("cpu"))
        return map_row_blocks(
            L, _dask_probabilities, posterior, dtype=np.float64, width=self.k
        )

    def _posterior(
        self, weights: LogWeights, device: Optional[torch.device] = None
    ) -> _Posterior:
        """The ``_Posterior`` of ``weights`` (from ``_log_weights``), with the
        pattern indices of the clique tables when there are tables; on
        ``device`` when given."""
        indices = offsets = None
        if self._blocks and "mu_higher" in self._buffers:
            indices, offsets = self._pattern_indices(), self._pattern_offsets()
        posterior = _Posterior(self.k, self.m, weights, self._blocks, indices, offsets)
        return posterior if device is None else posterior.to(device)

    def _n_sources(self, L: Any) -> int:
        """Number of sources of a validated label matrix (hook)."""
        return L.shape[1]

    def _n_rows(self, L: Any) -> int:
        """Number of items of a validated label matrix (hook)."""
        return L.shape[0]

    def _estimate_clique_tables(self, L: Any, n_iter: int = 3) -> None:
        """Estimate ``mu_higher``: for every clique/separator block with >= 2
        sources, ``P(joint vote pattern | Y = y)`` for each pattern of votes (no
        abstain) of its members that occurs in L, by posterior-weighted
        counting (EM steps with ``mu`` fixed; the first posterior treats the
        sources as independent).

        A pattern absent from L would get probability 0 for every class, so
        only the observed ones are kept (``clique_patterns``, in lexicographic
        order; row j of a block's table is its j-th pattern): at most n rows
        per block whatever ``k**|C|``, and tables over ``MAX_ARRAY_BYTES`` are
        refused before they are allocated. A block whose members are all
        exact copies of one source (see ``_find_copies``) takes that source's
        ``mu`` rows instead, so that the copies count exactly once.
        """
        patterns = self._observed_patterns(L)
        self._check_table_size(patterns)
        self._store_patterns(patterns)
        k, device = self.k, self._device()
        offsets = self._pattern_offsets()
        tables = torch.zeros(offsets[-1], k, dtype=torch.float64, device=device)
        counted = torch.zeros(offsets[-1], dtype=torch.bool, device=device)
        mu = self.mu.detach().double()
        for b, block in enumerate(self._blocks):
            lo, hi = offsets[b], offsets[b + 1]
            if block["distinct"] == 1:
                first = block["members"][0]
                source = self._folds.get(first, first)
                votes = patterns[b][:, 0].long().to(device)
                tables[lo:hi] = mu[source * k + votes - 1]
            else:
                counted[lo:hi] = True
        self._set_tensor("mu_higher", tables.float())
        blocks = [b for b, block in enumerate(self._blocks) if block["distinct"] > 1]
        if not blocks:
            return
        weights = self._independent_weights(self._log_weights())
        use_tables = False

        def weighted_counts(chunks: Iterator[Tuple[int, Any]]) -> tuple:
            counts = torch.zeros_like(tables)
            class_mass = torch.zeros(k, dtype=torch.float64, device=device)
            for _, chunk in chunks:
                Lc = torch.from_numpy(chunk).to(device)
                posterior.add_weighted_counts(
                    Lc, use_tables, blocks, counts, class_mass
                )
            return counts, class_mass

        for _ in range(n_iter):
            if is_dask_array(L):
                posterior = self._posterior(weights, torch.device("cpu"))
                counts, class_mass = reduce_row_blocks(
                    L, _dask_weighted_counts, posterior, use_tables, blocks
                )
                counts = torch.from_numpy(counts).to(device)
                class_mass = torch.from_numpy(class_mass).to(device)
            else:
                posterior = self._posterior(weights)
                # One worker: sums of floats, kept in chunk order (reproducible).
                [(counts, class_mass)] = _share_chunks(
                    weighted_counts, self._iter_L_chunks(L), self._n_rows
                )
            estimate = counts / class_mass.clamp(min=1e-12)
            tables = torch.where(counted[:, None], estimate, tables)
            self._set_tensor("mu_higher", tables.float())
            weights = self._log_weights()
            use_tables = True

    @staticmethod
    def _block_votes(
        Lc: torch.Tensor, members: Sequence[int]
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(rows, votes)``: the rows of the chunk ``Lc`` where every one of
        ``members`` voted, and their votes ``[rows, len(members)]`` (int64)."""
        return _block_votes(Lc, members)

    def _observed_patterns(self, L: Any) -> List[torch.Tensor]:
        """The distinct joint votes (no abstain) of every block's members in L:
        one ``[P_b, |members|]`` tensor per block, in lexicographic order. One
        pass over L; memory grows with the patterns found, not with
        ``k**|members|``. A dask L is reduced block by block on the active Dask
        scheduler."""
        device, dtype = self._device(), _pattern_dtype(self.k)
        members = [block["members"] for block in self._blocks]
        if is_dask_array(L):
            patterns = reduce_row_blocks(
                L, _dask_patterns, self.k, members, combine=_merge_patterns
            )
            return [p.to(device) for p in patterns]
        found: List[List[torch.Tensor]] = [[] for _ in self._blocks]

        def gather(chunks: Iterator[Tuple[int, Any]]) -> None:
            for _, chunk in chunks:
                Lc = torch.from_numpy(chunk).to(device)
                _add_chunk_patterns(Lc, members, dtype, found)

        _share_chunks(gather, self._iter_L_chunks(L), self._n_rows)
        return _distinct_patterns(found, members, dtype, device)

    def _check_table_size(self, patterns: Sequence[torch.Tensor]) -> None:
        """Refuse clique tables over ``MAX_ARRAY_BYTES`` (float64 counts and
        float32 tables, ``k`` columns per observed pattern) before they are
        allocated."""
        rows = sum(p.shape[0] for p in patterns)
        size = rows * self.k * (8 + 4)
        if size <= MAX_ARRAY_BYTES:
            return
        b = max(range(len(patterns)), key=lambda i: patterns[i].shape[0])
        members = list(self._blocks[b]["members"])
        raise ValueError(
            f"The clique tables of deps would hold {rows} observed vote patterns "
            f"x k={self.k} classes ({_gigabytes(size)}), over the "
            f"{_gigabytes(MAX_ARRAY_BYTES)} limit "
            "(metal.label_model.label_model.MAX_ARRAY_BYTES); the largest is "
            f"the clique of sources {members}, whose members vote "
            f"{patterns[b].shape[0]} distinct patterns in L. Declare fewer or "
            "smaller cliques in deps, or raise the limit on a machine with more "
            "memory."
        )

    def _store_patterns(self, patterns: Sequence[torch.Tensor]) -> None:
        """Keep the observed patterns of the blocks as the buffers
        ``clique_patterns`` (flat, block after block, row-major) and
        ``clique_pattern_counts`` (patterns per block)."""
        dtype = _pattern_dtype(self.k)
        flat = [p.reshape(-1).to(dtype) for p in patterns]
        self._set_tensor(
            "clique_patterns", torch.cat(flat) if flat else torch.zeros(0, dtype=dtype)
        )
        counts = torch.tensor([p.shape[0] for p in patterns], dtype=torch.long)
        self._set_tensor("clique_pattern_counts", counts)
        self._indices = None

    def _pattern_offsets(self) -> List[int]:
        """First table row of every block, and the total number of rows."""
        counts = self._buffers["clique_pattern_counts"].tolist()
        return [0] + np.cumsum(counts, dtype=np.int64).tolist()

    def _pattern_indices(self) -> List[_PatternIndex]:
        """The ``_PatternIndex`` of every block, built from the pattern buffers
        (once per fit, load or device move). A file saved when the tables were
        dense (every one of the ``k**|C|`` patterns) is read as such."""
        if "clique_patterns" not in self._buffers:
            self._store_patterns(self._dense_patterns())
        flat = self._buffers["clique_patterns"]
        indices = getattr(self, "_indices", None)
        if indices is not None and (not indices or indices[0].device == flat.device):
            return indices
        offsets = self._pattern_offsets()
        indices = []
        for b, block in enumerate(self._blocks):
            size = len(block["members"])
            rows = flat[offsets[b] * size : offsets[b + 1] * size].view(-1, size)
            indices.append(_PatternIndex(rows, self.k))
        self._indices = indices
        return indices

    def _dense_patterns(self) -> List[torch.Tensor]:
        """All ``k**|C|`` patterns of every block, in lexicographic order: the
        rows of clique tables saved in the former dense layout."""
        patterns = []
        values = torch.arange(1, self.k + 1, dtype=_pattern_dtype(self.k))
        for block in self._blocks:
            size = len(block["members"])
            patterns.append(torch.cartesian_prod(*[values] * size).view(-1, size))
        rows = sum(p.shape[0] for p in patterns)
        if rows != self.mu_higher.shape[0]:
            raise ValueError(
                f"The saved clique tables have {self.mu_higher.shape[0]} rows, but "
                f"the cliques of deps={self.deps} have {rows} vote patterns."
            )
        return patterns

    def _log_weights(self) -> LogWeights:
        """``(log_mu, log_mu_vm, log_p, log_tables)``: the clipped log mu in
        source-major (``[m*k, k]``) and value-major layout, the log class
        balance and the log clique tables (clipped above at 0.99; None without
        tables), computed once per pass over L."""
        log_mu = torch.log(self.mu.detach().clamp(*PROB_CLIP))
        log_mu_vm = log_mu.view(self.m, self.k, self.k).transpose(0, 1)
        log_mu_vm = log_mu_vm.reshape(self.m * self.k, self.k)
        log_p = torch.log(torch.diagonal(self.P)).float().to(log_mu.device)
        log_tables = None
        if self._blocks and "mu_higher" in self._buffers:
            log_tables = torch.log(self.mu_higher).clamp(
                max=float(np.log(PROB_CLIP[1]))
            )
        return log_mu, log_mu_vm, log_p, log_tables

    def _independent_weights(self, weights: LogWeights) -> LogWeights:
        """``weights`` for the first posterior of ``_estimate_clique_tables``
        (sources independent): exact copies (``_find_copies``) are left out, so
        that each group of copies counts once."""
        if not self._folds:
            return weights
        log_mu, log_mu_vm, log_p, log_tables = weights
        log_mu_vm = log_mu_vm.clone()
        copies = torch.tensor(sorted(self._folds), device=log_mu_vm.device)
        for v in range(self.k):
            log_mu_vm[v * self.m + copies] = 0
        return log_mu, log_mu_vm, log_p, log_tables

    def _log_scores(
        self,
        Lc: torch.Tensor,
        weights: LogWeights,
        use_tables: bool = True,
        buffer: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Unnormalised log posterior ``[c, k]`` of a dense chunk ``Lc``, from
        the ``weights`` of ``_log_weights`` (see ``_Posterior.log_scores``)."""
        return self._posterior(weights).log_scores(Lc, use_tables, buffer)

    # ============================================================ persistence
    def _get_extra_state_dict(self) -> dict:
        state = super()._get_extra_state_dict()
        state["is_trained"] = bool(getattr(self, "is_trained", False))
        if state["is_trained"]:
            state.update(
                n=int(self.n),
                m=int(self.m),
                t=int(self.t),
                d=int(self.d),
                p=self.p.tolist(),
                deps=[list(e) for e in self.deps],
                inv_form=bool(self.inv_form),
                folds=sorted([int(c), int(o)] for c, o in self._folds.items()),
            )
        return state

    def _set_extra_state_dict(self, state: dict) -> None:
        state = dict(state)
        deps = state.pop("deps", None)
        p = state.pop("p", None)
        folds = state.pop("folds", [])
        super()._set_extra_state_dict(state)
        if not state.get("is_trained"):
            return
        self.p = np.asarray(p, dtype=np.float64)
        self._set_dependencies([tuple(e) for e in deps])
        self._folds = {int(c): int(o) for c, o in folds}
        self._indices = None
        self._build_c_data()
        self._blocks = self._higher_order_blocks() if self.inv_form else []

    def _check_saved_shapes(self, state_dict: Dict[str, torch.Tensor]) -> None:
        """Refuse the saved tensors of a trained label model unless each one
        that the model needs is there with the shape its saved sizes give
        (k, m, d and the dependencies): a ValueError naming the entry, what
        was expected and what was found (``load`` adds the file's name)."""
        if not getattr(self, "is_trained", False) or not hasattr(self, "d"):
            return  # an untrained model, or a baseline voter: no tensors
        d, k = int(self.d), int(self.k)
        expected = {"mu": (d, k), "mu_init": (d, k), "P": (k, k)}
        expected.update(O=(d, d), mask=(d, d))
        if self.inv_form:
            expected.update(Z=(d, k), O_inv=(d, d), Q=(d, d))
        for name, shape in expected.items():
            if name not in state_dict:
                raise ValueError(f"the trained label model's {name!r} entry is missing")
            layout = state_dict[name].layout
            if layout not in (torch.strided, torch.sparse_coo) or (
                layout != torch.strided and name != "O"
            ):
                raise ValueError(
                    f"the entry {name!r} is a {layout} tensor; it must be dense"
                    + (" or sparse COO" if name == "O" else "")
                )
            found = tuple(state_dict[name].shape)
            if found != shape:
                raise ValueError(
                    f"the entry {name!r} has shape {list(found)}; a model with "
                    f"k={k} and d={d} indicator columns needs {list(shape)}"
                )
            if layout == torch.sparse_coo:
                self._check_sparse_entry(name, state_dict[name], d)
        for copy, original in self._folds.items():
            if not (0 <= original < copy < self.m):
                raise ValueError(
                    f"the folded copy {copy} -> {original} does not name two of "
                    f"the model's {self.m} sources"
                )
        if "mu_higher" not in state_dict:
            return
        tables = tuple(state_dict["mu_higher"].shape)
        counts = state_dict.get("clique_pattern_counts")
        if counts is None:
            return  # the former dense layout, checked by _dense_patterns
        blocks = self._higher_order_blocks()
        sizes = [len(b["members"]) for b in blocks]
        counts_list = counts.reshape(-1).tolist()
        patterns = state_dict.get("clique_patterns")
        if (
            len(counts_list) != len(blocks)
            or any(c < 0 for c in counts_list)
            or tables != (sum(counts_list), k)
            or patterns is None
            or patterns.numel() != sum(c * s for c, s in zip(counts_list, sizes))
        ):
            raise ValueError(
                "the clique tables ('mu_higher', 'clique_patterns', "
                "'clique_pattern_counts') do not fit each other or the "
                f"{len(blocks)} cliques of deps={[tuple(e) for e in self.deps]}"
            )

    @staticmethod
    def _check_sparse_entry(name: str, value: torch.Tensor, d: int) -> None:
        """Refuse a saved sparse ``[d, d]`` entry whose indices fall outside
        the matrix or whose values are not finite (torch does not check a
        loaded sparse tensor; using such indices would write out of bounds)."""
        indices, values = value._indices(), value._values()
        if (
            value.sparse_dim() != 2
            or value.dense_dim() != 0
            or indices.dtype != torch.int64
            or indices.shape != (2, values.shape[0])
        ):
            raise ValueError(f"the sparse entry {name!r} is malformed")
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= d):
            raise ValueError(
                f"the sparse entry {name!r} has indices outside its shape [{d}, {d}]"
            )
        if not values.is_floating_point() or not bool(torch.isfinite(values).all()):
            raise ValueError(f"the sparse entry {name!r} has non-finite values")

    def _prepare_for_state_dict(self, state_dict: Dict[str, torch.Tensor]) -> None:
        """Create ``mu``/``Z`` and the buffers of a saved model before
        ``load_state_dict`` copies the saved values into them.

        The statistics (``O``, ``O_inv``, ``mu_init``, ``Q``, ``P``) are float64
        buffers. Files written when they were float32 load into float64 buffers
        too (``load_state_dict`` casts); their ``P`` entry is replaced by
        ``diag(p)`` from the exact class balance saved with the plain
        attributes (``_set_extra_state_dict`` runs first and sets ``P``), so
        such a model predicts exactly as before.
        """
        self._check_saved_shapes(state_dict)
        exact_P = self._buffers.get("P")
        for name, value in state_dict.items():
            if name in ("mu", "Z"):
                setattr(self, name, nn.Parameter(torch.zeros_like(value)))
            elif name in _STATISTICS and value.layout != torch.strided:
                # A sparse O (see _set_O): kept as saved, coalesced, in float64.
                state_dict[name] = value.coalesce().double()
                self._set_tensor(name, state_dict[name].clone())
            elif name in _STATISTICS:
                current = self._buffers.get(name)
                if (
                    current is None
                    or current.dtype != torch.float64
                    or current.shape != value.shape
                    or current.layout != torch.strided
                ):
                    self._set_tensor(
                        name, torch.zeros(value.shape, dtype=torch.float64)
                    )
            elif name not in self._buffers:
                self.register_buffer(name, torch.zeros_like(value))
        saved_P = state_dict.get("P")
        if (
            saved_P is not None
            and saved_P.dtype != torch.float64
            and exact_P is not None
            and exact_P.shape == saved_P.shape
        ):
            state_dict["P"] = exact_P.detach().clone()
