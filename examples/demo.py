"""Main demo: RTL against its two baselines on scikit-learn's bundled digits data.

Fits, on a 70/30 split of ``load_digits`` at 80% sparsity:

* RTL with KMeans routing (4 tickets, one shared weight tensor, joint retraining),
* RTL with label routing (one one-vs-rest ticket per class),
* the single ticket (``n_clusters=1``, plain iterative magnitude pruning),
* independent tickets (``share_weights=False``, the paper's multi-model baseline),

and prints balanced accuracy, parameters kept, per-ticket sparsity and collapse score.
Run with ``make demo`` (or ``python examples/demo.py`` inside the environment).
"""

import time

from sklearn.datasets import load_digits
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import train_test_split

from sklearn_rtl import RTLClassifier

SETTINGS = {
    "RTL, KMeans routing (K=4)": {"routing": "kmeans", "n_clusters": 4},
    "RTL, label routing (K=10)": {"routing": "label"},
    "single ticket (IMP)": {"routing": "kmeans", "n_clusters": 1},
    "independent tickets (K=4)": {"routing": "kmeans", "n_clusters": 4, "share_weights": False},
}


def main():
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, random_state=0, stratify=y
    )
    print(f"load_digits: {len(X_train)} train / {len(X_test)} test samples, sparsity 0.8\n")
    header = (
        f"{'model':<28} {'bal. acc':>8} {'params':>8} {'dense':>7} {'sparsity':>9} "
        f"{'ticket sparsity':>16} {'collapse':>8} {'fit s':>6}"
    )
    print(header)
    print("-" * len(header))
    for name, params in SETTINGS.items():
        clf = RTLClassifier(sparsity=0.8, random_state=0, **params)
        start = time.perf_counter()
        clf.fit(X_train, y_train)
        seconds = time.perf_counter() - start
        score = balanced_accuracy_score(y_test, clf.predict(X_test))
        ticket = f"{clf.ticket_sparsity_.min():.3f}-{clf.ticket_sparsity_.max():.3f}"
        print(
            f"{name:<28} {score:>8.3f} {clf.n_params_:>8d} {clf.n_params_dense_:>7d} "
            f"{clf.sparsity_:>9.3f} {ticket:>16} {clf.collapse_score_:>8.3f} {seconds:>6.1f}"
        )
    print(
        "\nparams: weights the fitted model needs (union of ticket masks + dense parts; "
        "sum over tickets when independent).\nsparsity: fraction of prunable weights no "
        "ticket keeps. collapse: mean pairwise Jaccard similarity of ticket masks."
    )


if __name__ == "__main__":
    main()
