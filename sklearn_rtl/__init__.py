"""sklearn-rtl: Routing the Lottery (adaptive sparse tickets) as scikit-learn estimators."""

from ._baselines import compare_baselines
from ._classifier import RTLClassifier
from ._collapse import collapse_from_scores, detect_collapse, drop_persists, similarity_lift
from ._diagnostics import (
    collapse_score,
    jaccard,
    layer_similarity,
    random_mask_jaccard,
    similarity_matrix,
    ticket_similarity,
)
from ._export import export_onnx
from ._io import load, save
from ._models import MLP, SmallCNN
from ._network import TicketBatchNormNetwork, TicketNetwork
from ._progress import FitProgressBar
from ._prunable import find_prunable
from ._regressor import RTLRegressor
from ._stages import extract_tickets, retrain_jointly
from ._tickets import TicketSet, density_schedule, prune_by_magnitude
from ._version import __version__  # noqa: F401

__all__ = [
    "FitProgressBar",
    "MLP",
    "RTLClassifier",
    "RTLRegressor",
    "SmallCNN",
    "TicketBatchNormNetwork",
    "TicketNetwork",
    "TicketSet",
    "collapse_from_scores",
    "collapse_score",
    "compare_baselines",
    "detect_collapse",
    "drop_persists",
    "density_schedule",
    "export_onnx",
    "extract_tickets",
    "find_prunable",
    "jaccard",
    "layer_similarity",
    "load",
    "prune_by_magnitude",
    "random_mask_jaccard",
    "retrain_jointly",
    "save",
    "similarity_lift",
    "similarity_matrix",
    "ticket_similarity",
]
