"""Plots of label matrices and model outputs (matplotlib).

Every function draws a new figure through ``matplotlib.pyplot`` and returns
it. Nothing blocks: ``plt.show()`` is never called, so the functions are safe
in scripts, tests and headless servers (where matplotlib picks the Agg backend
by itself). In Jupyter the figure appears as usual; elsewhere call
``plt.show()`` or ``fig.savefig(path)``, and ``plt.close(fig)`` when done.

Label conventions: label matrices ``L [n, m]`` hold 0 (abstain) or 1..k;
gold labels and predictions are in 1..k; probabilities are ``[n]`` (of class
1) or ``[n, k]`` (column ``c`` is ``P(Y = c + 1)``).
"""

from typing import Optional

import numpy as np
import scipy.sparse as sparse
import torch

from metal._checks import (
    check_float_array,
    check_label_matrix,
    check_label_vector,
    check_positive_int,
)

try:
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure
except ImportError as error:  # matplotlib is an optional extra
    raise ImportError(
        "metal.contrib.visualization needs matplotlib: "
        "pip install 'snorkel-metal[contrib]' (or pip install matplotlib)."
    ) from error


# ------------------------------------------------------------------ helpers
def _dense_label_matrix(L) -> np.ndarray:
    L = check_label_matrix(L, "L")
    return L.toarray() if sparse.issparse(L) else np.asarray(L)


def _probabilities_of_class_1(Y_probs, name: str = "Y_probs") -> np.ndarray:
    """``[n]`` probabilities of class 1 from ``[n]`` or ``[n, k]`` input."""
    probs = check_float_array(Y_probs, name, expected="numeric", allow_empty=False)
    if probs.ndim == 2:
        print(f"Plotting probabilities from the first column of {name}.")
        probs = probs[:, 0]
    elif probs.ndim != 1:
        raise ValueError(
            f"{name} must be [n] or [n, k] probabilities; found shape {probs.shape}."
        )
    if probs.min() < 0 or probs.max() > 1:
        raise ValueError(
            f"{name} must lie in [0, 1]; found values in [{probs.min():g}, "
            f"{probs.max():g}]."
        )
    return probs


def _hard_labels(Y, name: str, n: Optional[int] = None) -> np.ndarray:
    """A 1-D int array of labels (``[n, 1]`` is accepted)."""
    if isinstance(Y, torch.Tensor):
        Y = Y.detach().cpu().numpy()
    Y = np.asarray(Y)
    if Y.ndim == 2 and Y.shape[1] == 1:
        Y = Y.reshape(-1)
    if Y.ndim != 1:
        raise ValueError(
            f"{name} must be a 1-D array of labels; found shape {Y.shape}."
        )
    if Y.size == 0:
        raise ValueError(f"{name} must not be empty.")
    return check_label_vector(Y, name, n=n)


def _new_axes(title: Optional[str]):
    fig, ax = plt.subplots()
    if title is not None:
        ax.set_title(title)
    return fig, ax


def _show_matrix(matrix: np.ndarray, title: str, colorbar: bool) -> Figure:
    fig, ax = _new_axes(title)
    image = ax.imshow(matrix, aspect="auto", interpolation="nearest")
    if colorbar:
        fig.colorbar(image, ax=ax)
    return fig


# ------------------------------------------------------------ label matrices
def view_label_matrix(L, colorbar: bool = True) -> Figure:
    """Image of the label matrix ``L [n, m]`` (rows: items, columns: sources).

    With ``colorbar``, a discrete colour bar with one tick per distinct value.
    """
    L = _dense_label_matrix(L)
    fig, ax = _new_axes("Label Matrix")
    image = ax.imshow(L, aspect="auto", interpolation="nearest")
    ax.set_xlabel("Labeling function")
    ax.set_ylabel("Item")
    if colorbar:
        values = np.unique(L)
        boundaries = np.append(values - 0.5, values[-1] + 0.5)
        fig.colorbar(image, ax=ax, ticks=values, boundaries=boundaries)
    return fig


def _get_overlaps_matrix(L, normalize: bool = True) -> np.ndarray:
    """``[m, m]``: items on which both sources vote (divided by ``n`` if
    ``normalize``); the diagonal is each source's coverage."""
    L = check_label_matrix(L, "L")
    votes = sparse.csr_matrix(L != 0, dtype=np.float64)
    overlaps = (votes.T @ votes).toarray()
    return overlaps / L.shape[0] if normalize else overlaps


def _get_conflicts_matrix(L, normalize: bool = True) -> np.ndarray:
    """``[m, m]``: items on which both sources vote and disagree (divided by
    ``n`` if ``normalize``)."""
    L = check_label_matrix(L, "L")
    votes = sparse.csr_matrix(L != 0, dtype=np.float64)
    both = (votes.T @ votes).toarray()
    agree = np.zeros_like(both)
    for label in np.unique(L.data if sparse.issparse(L) else L):
        if label == 0:
            continue
        same = sparse.csr_matrix(L == label, dtype=np.float64)
        agree += (same.T @ same).toarray()
    conflicts = both - agree
    return conflicts / L.shape[0] if normalize else conflicts


def view_overlaps(
    L, self_overlaps: bool = False, normalize: bool = True, colorbar: bool = True
) -> Figure:
    """Image of the ``[m, m]`` overlap matrix (diagonal zeroed unless
    ``self_overlaps``)."""
    overlaps = _get_overlaps_matrix(L, normalize=normalize)
    if not self_overlaps:
        np.fill_diagonal(overlaps, 0)
    return _show_matrix(overlaps, "Overlaps", colorbar)


def view_conflicts(L, normalize: bool = True, colorbar: bool = True) -> Figure:
    """Image of the ``[m, m]`` conflict matrix."""
    conflicts = _get_conflicts_matrix(L, normalize=normalize)
    return _show_matrix(conflicts, "Conflicts", colorbar)


# ------------------------------------------------------------ model outputs
def plot_probabilities_histogram(Y_probs, title: Optional[str] = None) -> Figure:
    """20-bin histogram of predicted probabilities (of class 1 for ``[n, k]``
    input)."""
    probs = _probabilities_of_class_1(Y_probs)
    fig, ax = _new_axes(title)
    ax.hist(probs, bins=20)
    ax.set_xlim((0, 1.025))
    ax.set_xlabel("Probability")
    ax.set_ylabel("# Predictions")
    return fig


def plot_predictions_histogram(Y_preds, Y_gold, title: Optional[str] = None) -> Figure:
    """Side-by-side histogram of predicted and gold labels, one bin per label."""
    preds = _hard_labels(Y_preds, "Y_preds")
    gold = _hard_labels(Y_gold, "Y_gold", n=len(preds))
    labels = np.arange(min(preds.min(), gold.min()), max(preds.max(), gold.max()) + 1)
    edges = np.append(labels - 0.5, labels[-1] + 0.5)
    fig, ax = _new_axes(title)
    ax.hist([preds, gold], bins=edges, label=["Predicted", "Gold"])
    ax.legend(loc="upper right")
    ax.set_xticks(labels)
    ax.set_xlabel("Label")
    ax.set_ylabel("# Predictions")
    return fig


def plot_calibration_plot(
    Y_probs, Y_gold, bins: int = 20, title: Optional[str] = None
) -> Figure:
    """Accuracy of binary predictions per bin of predicted probability.

    ``Y_probs`` is ``[n]`` (probability of class 1) or ``[n, 2]``; gold labels
    must be 1 or 2. A prediction is 1 if ``p > 0.5`` else 2. Bin ``i`` (of
    ``bins + 1``) holds ``i/bins <= p < (i+1)/bins``, the last one exactly
    ``p = 1``; each non-empty bin's accuracy is plotted at ``(i + 0.5)/bins``.
    """
    check_positive_int(bins, "bins")
    probs = _probabilities_of_class_1(Y_probs)
    gold = _hard_labels(Y_gold, "Y_gold", n=len(probs))
    if not np.isin(gold, (1, 2)).all():
        raise ValueError(
            "plot_calibration_plot is for binary labels: Y_gold must hold only 1 "
            f"and 2; found the values {sorted(set(gold.tolist()))}."
        )
    preds = np.where(probs > 0.5, 1, 2)
    correct = preds == gold
    which_bin = np.minimum(np.floor(probs * bins).astype(int), bins)
    counts = np.bincount(which_bin, minlength=bins + 1)
    hits = np.bincount(which_bin, weights=correct, minlength=bins + 1)
    filled = counts > 0
    centres = (np.arange(bins + 1) + 0.5) / bins
    fig, ax = _new_axes(title)
    ax.plot(centres[filled], hits[filled] / counts[filled], marker="o")
    ax.set_xlim((0, 1.025))
    ax.set_xlabel("Probability")
    ax.set_ylabel("Accuracy")
    return fig
