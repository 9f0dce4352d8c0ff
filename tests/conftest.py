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
#
# It also sets n_clusters=4: the default, "auto", compares the clusters' tickets with one
# shared ticket on held-out rows and may keep one (test_ticket_choice.py tests it), which
# would quietly turn a test of K tickets into a test of one.
SMALL_RTL = dict(
    hidden_layer_sizes=(8,), n_prune_rounds=1, max_epochs=2, batch_size=16, random_state=0,
    min_cluster_size=0, n_clusters=4,
)  # fmt: skip


def small_rtl(estimator=None, **params):
    """A tiny RTLClassifier (or ``estimator`` class) with ``SMALL_RTL`` plus ``params``."""
    from sklearn_rtl import RTLClassifier

    return (estimator or RTLClassifier)(**{**SMALL_RTL, **params})


def ticket_data(pays, n=300, seed=0):
    """``(X, y, target)``: four blobs of ``n`` rows, 6 features (the blobs apart in the first
    four). With ``pays``, every blob has its own direction in the last two features and the
    3 classes and the target follow it, sharply: the clusters' tickets learn their blob's
    rule sooner than one shared ticket learns all four (``n_clusters="auto"`` keeps them).
    Without, one direction everywhere, with noise as large as the signal: one shared ticket
    does as well (``"auto"`` keeps one). ``target`` is the score, ``y`` its thirds."""
    import numpy as np
    from sklearn.datasets import make_blobs

    X, blob = make_blobs(n_samples=[n] * 4, centers=8.0 * np.eye(4, 6), random_state=seed)
    rng = np.random.default_rng(seed)
    if pays:
        w = rng.normal(size=(4, 6))
        w[:, :4] = 0.0
        score = np.einsum("ij,ij->i", X, w[blob]) + rng.normal(scale=0.1, size=len(X))
    else:
        score = X[:, 4] + 0.5 * X[:, 5] + rng.normal(scale=1.0, size=len(X))
    return X, np.digitize(score, [-0.5, 0.5]), score
