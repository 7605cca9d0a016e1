"""Non-blocking matplotlib plots of label matrices and model outputs."""

from metal.contrib.visualization.analysis import (
    plot_calibration_plot,
    plot_predictions_histogram,
    plot_probabilities_histogram,
    view_conflicts,
    view_label_matrix,
    view_overlaps,
)

__all__ = [
    "plot_calibration_plot",
    "plot_predictions_histogram",
    "plot_probabilities_histogram",
    "view_conflicts",
    "view_label_matrix",
    "view_overlaps",
]
