# The tiny estimator every test file builds on: small network, one pruning round, two
# epochs, seeded (importable as ``from conftest import small_rtl``: pyproject puts tests/
# on the path). Tests pass only what they need to differ.
#
# It is NOT the default estimator. It sets min_cluster_size=0 (the default is 200) because
# most test data sets have a few hundred rows or fewer, where the default floor would leave
# one KMeans ticket; with 0, only clusters under 0.2x the average cluster size lose their
# ticket, so a small table keeps several. A test built on it therefore runs KMeans routing
# as no default fit on its data would, and a test that means K tickets must assert
# ``n_tickets_`` (the 0.2x-average rule can still merge a cluster). The default floor itself is
# tested by test_routing_floor.py, test_defaults.py (RTLClassifier() / RTLRegressor() at
# full defaults) and test_agreement.py (export and persistence with a partial merge).
SMALL_RTL = dict(
    hidden_layer_sizes=(8,), n_prune_rounds=1, max_epochs=2, batch_size=16, random_state=0,
    min_cluster_size=0,
)  # fmt: skip


def small_rtl(estimator=None, **params):
    """A tiny RTLClassifier (or ``estimator`` class) with ``SMALL_RTL`` plus ``params``."""
    from sklearn_rtl import RTLClassifier

    return (estimator or RTLClassifier)(**{**SMALL_RTL, **params})
