"""sklearn-rtl: Routing the Lottery (adaptive sparse tickets) as scikit-learn estimators."""

from ._classifier import RTLClassifier
from ._cnn import SmallCNN, TicketBatchNormNetwork
from ._collapse import collapse_from_scores, detect_collapse, drop_persists, similarity_lift
from ._diagnostics import (
    collapse_score,
    jaccard,
    layer_similarity,
    random_mask_jaccard,
    similarity_matrix,
    ticket_similarity,
)
from ._network import MLP, TicketNetwork, find_prunable
from ._progress import FitProgressBar
from ._regressor import RTLRegressor
from ._tickets import density_schedule, prune_by_magnitude

__version__ = "0.1.0"

__all__ = [
    "FitProgressBar",
    "MLP",
    "RTLClassifier",
    "RTLRegressor",
    "SmallCNN",
    "TicketBatchNormNetwork",
    "TicketNetwork",
    "collapse_from_scores",
    "collapse_score",
    "detect_collapse",
    "drop_persists",
    "density_schedule",
    "find_prunable",
    "jaccard",
    "layer_similarity",
    "prune_by_magnitude",
    "random_mask_jaccard",
    "similarity_lift",
    "similarity_matrix",
    "ticket_similarity",
]
