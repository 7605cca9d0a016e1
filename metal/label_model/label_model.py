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
"""

import contextlib
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import scipy.optimize as optimize
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
from metal.utils import merge_config

# ``objective(x) -> (loss, gradient)`` of a flat float64 iterate ``x``.
Objective = Callable[[np.ndarray], Tuple[float, np.ndarray]]

# ``(log_mu, log_mu_vm, log_p)`` of ``LabelModel._log_weights``.
LogWeights = Tuple[torch.Tensor, torch.Tensor, torch.Tensor]

# Bounds applied to the learned probabilities when they are used as weights.
PROB_CLIP = (0.01, 0.99)

# Rows per chunk of the passes over L (small enough for the one-hot chunk to
# stay in cache between its construction and the matrix product).
_CHUNK_ROWS = 8192

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


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Run torch's intra-op work on one thread inside the block.

    The optimizer steps work on a tensor of ``d*k`` entries, but some of torch's
    elementwise kernels (``sqrt`` in Adam/RMSprop) still open a parallel region,
    and on a machine whose cores are busy each region waits for a time slice
    (milliseconds per step). The previous thread count is restored on exit.
    """
    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _check_run_settings(config: dict) -> None:
    """Refuse run settings a label model fit cannot honour (rather than ignore
    them): checkpointing, and writers other than json/tensorboard."""
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

    # ============================================================ validation
    def _check_L(self, L: LabelMatrixLike) -> Any:
        """Validate ``L [n, m]`` (values in 0..k); return its compact form (a
        ``LabelMatrix``; subclasses return their own validated form, which the
        hooks taking ``L`` below receive)."""
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
            Y = check_label_vector(Y_dev, name="Y_dev", k=self.k, allow_abstain=True)
            counts = np.bincount(Y, minlength=self.k + 1)[1:]
            if counts.sum() == 0:
                raise ValueError(
                    f"Y_dev must contain at least one gold label in 1..{self.k} "
                    f"(0 = no label); found {Y.size} item(s), none labeled."
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
        c, m = Lc.shape
        if buffer is None:
            X = torch.empty(c, self.k * m, dtype=torch.float32, device=Lc.device)
        else:
            X = buffer[:c]
        for v in range(self.k):
            X[:, v * m : (v + 1) * m] = Lc == v + 1
        if source_major:
            X = X.view(c, self.k, m).transpose(1, 2).reshape(c, m * self.k)
        return X

    def _chunk_buffer(self) -> torch.Tensor:
        return torch.empty(
            _CHUNK_ROWS, self.m * self.k, dtype=torch.float32, device=self._device()
        )

    def _higher_order_blocks(self) -> List[dict]:
        """Column blocks of the cliques and separators with >= 2 sources.

        Each block is a dict with ``members`` (sorted sources), ``start``/``end``
        (columns after the ``m*k`` unary ones), ``max_cliques`` (clique-tree node
        ids it belongs to) and ``weight`` (+1 for a maximal clique, minus the
        number of junction-tree edges for a separator).
        """
        k, m = self.k, self.m
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
        written into the clique tree's node/edge attributes and ``c_data``."""
        L_ind = self._create_L_ind(L)
        if not higher_order:
            self._build_c_data()
            return L_ind
        blocks = self._higher_order_blocks()
        self._build_c_data(blocks)
        self._annotate_clique_tree(blocks)
        if not blocks:
            return L_ind
        L_dense = check_label_matrix(L, name="L", k=self.k)
        with _one_torch_thread():
            chunks = [
                self._higher_order_chunk(torch.from_numpy(c), blocks)
                for c in iter_dense_chunks(L_dense)
            ]
        return np.hstack([L_ind, torch.cat(chunks).numpy()])

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

    def _overlap_matrix(self, L: Any) -> np.ndarray:
        """``O = L_ind^T L_ind / n`` (float64 ``[m*k, m*k]``, source-major
        columns), accumulated chunk by chunk without materialising the one-hot
        of all of L."""
        device = self._device()
        d = self.m * self.k
        custom = self._uses_custom_indicators()

        def overlaps(chunks: Iterator[Tuple[int, Any]]) -> Tuple[torch.Tensor, int]:
            counts = torch.zeros(d, d, dtype=torch.float64, device=device)
            buffer = None if custom else self._chunk_buffer()
            n = 0
            for _, chunk in chunks:
                if custom:
                    X = torch.as_tensor(self._create_L_ind(chunk), dtype=torch.float32)
                    X = X.to(device)
                else:
                    Lc = torch.from_numpy(chunk).to(device)
                    X = self._unary_chunk(Lc, buffer=buffer)
                # Per-chunk counts are exact in float32 (chunks < 2**24 rows).
                counts += (X.T @ X).double()
                n += X.shape[0]
            return counts, n

        parts = _share_chunks(
            overlaps, self._iter_L_chunks(L), self._n_rows, self._pass_workers(L)
        )
        # Sums of integer counts: exact, so the same however the chunks were shared.
        O = sum(counts for counts, _ in parts).cpu().numpy()
        O = O / max(sum(n for _, n in parts), 1)
        if not custom:
            order = self._value_major_to_source_major(d)
            O = O[np.ix_(order, order)]
        return O

    def _value_major_to_source_major(self, d_unary: int) -> np.ndarray:
        """Index array mapping source-major column ``i*k + v`` to ``v*m + i``."""
        i, v = np.divmod(np.arange(d_unary), self.k)
        return v * self.m + i

    def _generate_O(self, L: Any) -> None:
        """Compute the unary overlap matrix ``self.O`` (float64 ``[d, d]``)."""
        self._set_O(self._overlap_matrix(L))

    def _set_O(self, O: np.ndarray) -> None:
        """Store a copy of the overlap matrix ``O [d, d]`` as the float64 buffer
        ``self.O`` and set ``self.d``."""
        self.d = O.shape[0]
        self._set_tensor("O", torch.tensor(O, dtype=torch.float64))

    def _generate_O_inv(self, L: Any) -> None:
        """Compute ``self.O`` and ``self.O_inv``."""
        self._generate_O(L)
        self._set_O_inv()

    def _set_O_inv(self) -> None:
        """``self.O_inv``: the inverse of O on the columns that occur in L (a
        value a source never emits has an all-zero row in O and a zero row in
        ``O_inv``; its ``mu`` and ``Z`` rows stay 0)."""
        O = self._stat("O")
        active = np.ix_(*(2 * [self._active_columns()]))
        O_inv = np.zeros_like(O)
        O_inv[active] = self._invert_O(O[active])
        self._set_tensor("O_inv", torch.from_numpy(O_inv))

    def _active_columns(self) -> np.ndarray:
        """Bool ``[d]``: the indicator columns that are on for some item of L
        (``diag(O) > 0``)."""
        return np.diag(self._stat("O")) > 0

    def _invert_O(self, O: np.ndarray) -> np.ndarray:
        cond = np.linalg.cond(O) if O.size else 1.0
        if not np.isfinite(cond) or cond > 1e12:
            raise ValueError(
                "The overlap matrix O is singular, so the dependency-aware fit "
                "cannot invert it. This happens when two or more sources never "
                "abstain (their one-hot columns are linearly dependent). Fit "
                "without deps, or drop the dependencies on full-coverage sources."
            )
        return np.linalg.inv(O)

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
        shares = np.eye(self.m, dtype=bool)
        for _, attrs in self.c_tree.nodes(data=True):
            members = list(attrs["members"])
            shares[np.ix_(members, members)] = True
        source = np.repeat(np.arange(self.m), self.k)
        return ~shares[np.ix_(source, source)]

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
        lps = np.diag(self._stat("O")).reshape(self.m, self.k)
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
        if self.inv_form:
            if warm_Z is not None and warm_Z.shape == (self.d, self.k):
                Z = torch.as_tensor(warm_Z, dtype=torch.float32)
            else:
                rng = rng if rng is not None else self._rng()
                gen = torch.Generator().manual_seed(int(rng.randint(2**31)))
                Z = torch.randn(self.d, self.k, generator=gen)
            self.Z = nn.Parameter(Z)
        self._build_mask()
        return mu_start

    def _rng(self) -> np.random.RandomState:
        seed = self.config.get("seed")
        return (
            np.random.RandomState(seed) if seed is not None else np.random.mtrand._rand
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
                format) or a torch tensor.
            Y_dev: optional gold labels in 0..k (0 = no gold label, ignored),
                used only to estimate the class balance (the share of each
                label 1..k) when ``class_balance`` is not given.
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
            self._set_O_inv()
        mu_start = self._init_params(warm_start)
        if mu_start is None:  # an _init_params override that only sets mu
            mu_start = _cpu_float64(self.mu)
        mask = self.mask.cpu().numpy()
        if not self.inv_form:
            if verbose:
                print("Estimating \\mu...")
            mu = self._fit_mu(self._stat("O"), mask, mu_start)
        else:
            if verbose:
                print("Estimating Z...")
            Z = self._fit_Z(self._stat("O_inv"), mask)
            self.Z = nn.Parameter(torch.from_numpy(Z).float().to(self._device()))
            self._set_tensor("Q", torch.from_numpy(self.get_Q()))
            if verbose:
                print("Estimating \\mu...")
            Q = self._stat("Q")
            mu = self._fit_mu(Q, np.ones_like(Q, dtype=bool), mu_start)
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
        for name in ("O_inv", "Z", "Q", "mu_higher"):
            self._buffers.pop(name, None)
            self._parameters.pop(name, None)
        self._blocks = []

    # ------------------------------------------------------------- solvers
    def _fit_mu(
        self, target: np.ndarray, mask: np.ndarray, start: np.ndarray
    ) -> np.ndarray:
        """Minimise ``||(target - mu P mu^T)[mask]||^2 + ||mu p - diag(O)||^2 +
        ||D (mu - mu_init)||^2`` over ``mu [d, k]`` from ``start`` (float64
        ``[d, k]``); then break the label permutation symmetry in favour of
        ``prec_init``. ``target`` and ``mask`` are ``[d, d]``."""
        p = self.p
        diag_O = np.diag(self._stat("O"))
        l2_rows = self._l2_rows(self.config["train_config"].get("l2", 0.0))
        l2_col = l2_rows[:, None] if np.any(l2_rows) else None
        mu_init = self._stat("mu_init")
        mask_f = mask.astype(np.float64)
        target_masked = target * mask_f
        shape = (self.d, self.k)

        def objective(x):
            mu = x.reshape(shape)
            mu_p = mu * p
            R = target_masked - (mu_p @ mu.T) * mask_f
            e = mu_p.sum(axis=1) - diag_O
            r = R.ravel()
            f = r @ r + e @ e
            g = (R @ mu_p) * -4.0
            g += 2.0 * e[:, None] * p
            if l2_col is not None:
                D = l2_col * (mu - mu_init)
                f += np.sum(D * D)
                g += 2.0 * l2_col * D
            return f, g.ravel()

        mu = self._minimize(objective, start, "mu")
        permutation = self._best_label_permutation(mu)
        if permutation is not None:
            mu = self._minimize(objective, mu[:, permutation], "mu")
        return mu

    def _fit_Z(self, O_inv: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Minimise ``||(O^-1 + Z Z^T)[mask]||^2`` over the rank-k ``Z`` (rows of
        columns that never occur stay 0)."""
        active = self._active_columns()
        mask_a = mask[np.ix_(active, active)]
        O_inv_masked = O_inv[np.ix_(active, active)] * mask_a
        d_a = int(active.sum())

        def objective(x):
            Z = x.reshape(d_a, self.k)
            R = O_inv_masked + (Z @ Z.T) * mask_a
            return np.sum(R * R), (4.0 * R @ Z).ravel()

        start = self.Z.detach().double().cpu().numpy()[active]
        Z = np.zeros((self.d, self.k))
        Z[active] = self._minimize(objective, start, "Z")
        return Z

    def _minimize(
        self, objective: Objective, start: np.ndarray, name: str
    ) -> np.ndarray:
        """Minimise ``objective(x) -> (f, grad)`` from ``start`` with the
        configured optimizer: ``n_epochs`` full-batch steps of sgd (momentum),
        adam, adamax or rmsprop as MeTaL takes them, or L-BFGS ("lbfgs") run to
        convergence with ``n_epochs`` as its iteration cap. A first-order run
        that diverges falls back to L-BFGS with a warning."""
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
            return self._minimize_lbfgs(objective, start, name, n_epochs)
        x = self._minimize_first_order(objective, start, name_opt, opt_config, n_epochs)
        if x is None:
            warnings.warn(
                f"The {name_opt} fit of {name} diverged (the loss became non-finite); "
                "solved with L-BFGS instead. Lower lr to keep the first-order solver."
            )
            return self._minimize_lbfgs(objective, start, name, max(n_epochs, 100))
        return x

    def _minimize_first_order(
        self,
        objective: Objective,
        start: np.ndarray,
        optimizer: str,
        opt_config: dict,
        n_epochs: int,
    ) -> Optional[np.ndarray]:
        """``n_epochs`` full-batch steps of the torch optimizer ``optimizer`` from
        ``start`` (float64, any shape).

        The iterate is a float64 CPU tensor that the objective reads through a
        NumPy view of it; each step sets its ``.grad`` from the analytic NumPy
        gradient (no copies either way). Returns the result in ``start``'s
        shape, or ``None`` if the loss or the iterate became non-finite.
        """
        x = torch.tensor(np.ravel(start), dtype=torch.float64)
        x_np = x.numpy()  # a view: the objective reads the iterate through it
        x.requires_grad_(True)  # a parameter to the optimizer
        torch_optimizer = self._torch_optimizer(x, optimizer, opt_config)
        with np.errstate(over="ignore", invalid="ignore"), _one_torch_thread():
            for epoch in range(1, n_epochs + 1):
                f, g = objective(x_np)
                if not np.isfinite(f):
                    return None
                self._log_loss(epoch, f)
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
        self, objective: Objective, start: np.ndarray, name: str, max_iter: int
    ) -> np.ndarray:
        state = {"iteration": 0}

        def callback(xk):
            state["iteration"] += 1
            if self._logging_due(state["iteration"]):
                self._log_loss(state["iteration"], float(objective(xk)[0]))

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
        accelerator. The fit reads the statistics through this."""
        return _cpu_float64(self._buffers[name])

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

    def loss_mu(self, *args: Any, l2: FloatArrayLike = 0) -> torch.Tensor:
        """The no-dependency objective evaluated at the current ``mu``."""
        O, P = self.O, self.P
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
        O, P = self.O, self.P
        mu = self.mu.to(O.dtype)
        diff = self.Q - mu @ P @ mu.T
        marginal = torch.sum(mu @ P, dim=1) - torch.diag(O)
        return torch.sum(diff**2) + torch.sum(marginal**2) + self.loss_l2(l2=l2)

    def get_Q(self) -> np.ndarray:
        """``Q = O Z (I_k + Z^T O Z)^-1 Z^T O`` (float64 ``[d, d]``)."""
        Z = _cpu_float64(self.Z)
        O = self._stat("O")
        inner = np.linalg.inv(np.eye(self.k) + Z.T @ O @ Z)
        return O @ Z @ inner @ Z.T @ O

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
        """
        self._check_trained()
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
        log_mu, _, log_p = weights

        def posteriors(chunks: Iterator[Tuple[int, Any]]) -> None:
            buffer = None if custom else self._chunk_buffer()
            with torch.no_grad():  # grad mode is per thread
                for start, chunk in chunks:
                    if custom:
                        X = torch.as_tensor(
                            self._create_L_ind(chunk), dtype=torch.float32
                        )
                        scores = X.to(device) @ log_mu + log_p
                    else:
                        Lc = torch.from_numpy(chunk).to(device)
                        scores = self._log_scores(Lc, weights, buffer=buffer)
                    rows = scores.shape[0]
                    chunk_probs = torch.softmax(scores.double(), dim=1).cpu().numpy()
                    probs[start : start + rows] = chunk_probs

        _share_chunks(
            posteriors, self._iter_L_chunks(L), self._n_rows, self._pass_workers(L)
        )
        return probs

    def _n_sources(self, L: Any) -> int:
        """Number of sources of a validated label matrix (hook)."""
        return L.shape[1]

    def _n_rows(self, L: Any) -> int:
        """Number of items of a validated label matrix (hook)."""
        return L.shape[0]

    def _estimate_clique_tables(self, L: Any, n_iter: int = 3) -> None:
        """Estimate ``mu_higher``: for every clique/separator block with >= 2
        sources, ``P(joint vote pattern | Y = y)`` over the patterns where all
        members voted, by posterior-weighted counting (EM steps with ``mu``
        fixed; the first posterior treats the sources as independent)."""
        k, d_unary = self.k, self.m * self.k
        width = sum(b["end"] - b["start"] for b in self._blocks)
        device = self._device()
        self._set_tensor("mu_higher", torch.zeros(width, k))
        weights = self._log_weights()
        use_tables = False

        def weighted_counts(chunks: Iterator[Tuple[int, Any]]) -> tuple:
            counts = torch.zeros(width, k, dtype=torch.float64, device=device)
            class_mass = torch.zeros(k, dtype=torch.float64, device=device)
            for _, chunk in chunks:
                Lc = torch.from_numpy(chunk).to(device)
                scores = self._log_scores(Lc, weights, use_tables)
                q = torch.softmax(scores, dim=1).double()
                class_mass += q.sum(dim=0)
                for block in self._blocks:
                    code, voted = self._pattern_codes(Lc, block["members"])
                    rows = torch.nonzero(voted).squeeze(1)
                    index = block["start"] - d_unary + code[rows]
                    counts.index_add_(0, index, q[rows])
            return counts, class_mass

        for _ in range(n_iter):
            # One worker: sums of floats, kept in chunk order (reproducible).
            [(counts, class_mass)] = _share_chunks(
                weighted_counts, self._iter_L_chunks(L), self._n_rows
            )
            tables = counts / class_mass.clamp(min=1e-12)
            self._set_tensor("mu_higher", tables.float())
            use_tables = True

    def _log_weights(self) -> LogWeights:
        """``(log_mu, log_mu_vm, log_p)``: the clipped log mu in source-major
        (``[m*k, k]``) and value-major layout and the log class balance, computed
        once per pass over L."""
        log_mu = torch.log(self.mu.detach().clamp(*PROB_CLIP))
        log_mu_vm = log_mu.view(self.m, self.k, self.k).transpose(0, 1)
        log_mu_vm = log_mu_vm.reshape(self.m * self.k, self.k)
        log_p = torch.log(torch.diagonal(self.P)).float().to(log_mu.device)
        return log_mu, log_mu_vm, log_p

    def _log_scores(
        self,
        Lc: torch.Tensor,
        weights: LogWeights,
        use_tables: bool = True,
        buffer: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Unnormalised log posterior ``[c, k]`` of a dense chunk ``Lc``, from
        the ``weights`` of ``_log_weights``."""
        log_mu, log_mu_vm, log_p = weights
        scores = self._unary_chunk(Lc, buffer=buffer) @ log_mu_vm
        if use_tables and self._blocks:
            scores += self._junction_tree_correction(Lc, log_mu)
        return scores + log_p

    def _junction_tree_correction(
        self, Lc: torch.Tensor, log_mu: torch.Tensor
    ) -> torch.Tensor:
        """Junction-tree terms of the log posterior ``[c, k]``.

        For rows where every member of a clique/separator voted, the product of
        the members' unary factors is replaced by the block's pattern table,
        with the block's junction-tree weight (+1 for a maximal clique, minus
        the number of tree edges for a separator). Each source thus counts once.
        """
        k, d_unary = self.k, self.m * self.k
        correction = torch.zeros(Lc.shape[0], k, dtype=torch.float32, device=Lc.device)
        for block in self._blocks:
            members = list(block["members"])
            lo = block["start"] - d_unary
            table = self.mu_higher[lo : lo + block["end"] - block["start"]]
            floor = PROB_CLIP[0] ** len(members)
            log_table = torch.log(table.clamp(min=floor, max=PROB_CLIP[1]))
            code, voted = self._pattern_codes(Lc, members)
            rows = torch.nonzero(voted).squeeze(1)
            if rows.numel() == 0:
                continue
            votes = Lc[rows][:, members].long()
            member_index = torch.tensor(members, device=Lc.device)
            unary_sum = log_mu[member_index * k + votes - 1].sum(dim=1)
            correction[rows] += block["weight"] * (log_table[code[rows]] - unary_sum)
        return correction

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
            )
        return state

    def _set_extra_state_dict(self, state: dict) -> None:
        state = dict(state)
        deps = state.pop("deps", None)
        p = state.pop("p", None)
        super()._set_extra_state_dict(state)
        if not state.get("is_trained"):
            return
        self.p = np.asarray(p, dtype=np.float64)
        self._set_dependencies([tuple(e) for e in deps])
        self._build_c_data()
        self._blocks = self._higher_order_blocks() if self.inv_form else []

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
        exact_P = self._buffers.get("P")
        for name, value in state_dict.items():
            if name in ("mu", "Z"):
                setattr(self, name, nn.Parameter(torch.zeros_like(value)))
            elif name in _STATISTICS:
                current = self._buffers.get(name)
                if (
                    current is None
                    or current.dtype != torch.float64
                    or current.shape != value.shape
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
