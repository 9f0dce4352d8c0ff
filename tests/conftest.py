# The tiny estimator every test file builds on: small network, one pruning round, two
# epochs, seeded, and every KMeans cluster its own ticket however few rows the test data
# has (min_cluster_size=0; the default floor has tests of its own in test_routing_floor.py).
# Tests pass only what they need to differ (importable as ``from conftest import
# small_rtl``: pyproject puts tests/ on the path).
SMALL_RTL = dict(
    hidden_layer_sizes=(8,), n_prune_rounds=1, max_epochs=2, batch_size=16, random_state=0,
    min_cluster_size=0,
)  # fmt: skip


def small_rtl(estimator=None, **params):
    """A tiny RTLClassifier (or ``estimator`` class) with ``SMALL_RTL`` plus ``params``."""
    from sklearn_rtl import RTLClassifier

    return (estimator or RTLClassifier)(**{**SMALL_RTL, **params})
