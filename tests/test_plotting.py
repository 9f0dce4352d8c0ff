"""sklearn_rtl.plotting: every figure draws exactly the fitted estimator's numbers (Agg)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from sklearn_rtl import RTLClassifier  # noqa: E402
from sklearn_rtl.plotting import (  # noqa: E402
    plot_collapse_curve,
    plot_layer_similarity,
    plot_similarity,
    plot_ticket_sparsity,
)


@pytest.fixture(scope="module")
def data():
    X, y = load_digits(return_X_y=True)
    return X[:400] / 16.0, y[:400]


@pytest.fixture(scope="module")
def kmeans_model(data):
    X, y = data
    return RTLClassifier(
        hidden_layer_sizes=(16, 8),
        n_clusters=3,
        min_cluster_size=0,
        sparsity=0.75,
        n_prune_rounds=3,
        max_epochs=1,
        random_state=0,
    ).fit(X, y)


@pytest.fixture(scope="module")
def label_model(data):
    X, y = data
    keep = y < 4
    return RTLClassifier(
        hidden_layer_sizes=(8,),
        routing="label",
        sparsity=0.5,
        n_prune_rounds=1,
        max_epochs=1,
        random_state=0,
    ).fit(X[keep], y[keep] * 10)  # classes 0, 10, 20, 30 name the tickets


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_similarity_heatmap_global(kmeans_model):
    ax = plot_similarity(kmeans_model)
    assert len(ax.images) == 1
    np.testing.assert_array_equal(ax.images[0].get_array(), kmeans_model.similarity_)
    assert ax.images[0].get_clim() == (0.0, 1.0)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["ticket 0", "ticket 1", "ticket 2"]
    # one annotation per cell, written with the matrix's values
    texts = [t.get_text() for t in ax.texts]
    assert texts == [f"{v:.2f}" for v in kmeans_model.similarity_.ravel()]
    assert "all prunable weights" in ax.get_title()
    assert len(ax.figure.axes) == 2  # heatmap + colorbar
    assert ax.figure.axes[1].get_ylabel() == "Jaccard similarity"


def test_similarity_heatmap_per_layer_and_labels(kmeans_model, label_model):
    layer = list(kmeans_model.layer_similarity_)[1]
    ax = plot_similarity(kmeans_model, layer=layer, annotate=False, colorbar=False)
    np.testing.assert_array_equal(ax.images[0].get_array(), kmeans_model.layer_similarity_[layer])
    assert layer in ax.get_title()
    assert len(ax.texts) == 0 and len(ax.figure.axes) == 1

    ax = plot_similarity(label_model)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0", "10", "20", "30"]
    np.testing.assert_array_equal(ax.images[0].get_array(), label_model.similarity_)

    ax = plot_similarity(label_model, labels=list("abcd"))
    assert [t.get_text() for t in ax.get_xticklabels()] == list("abcd")

    with pytest.raises(ValueError, match="Unknown layer"):
        plot_similarity(kmeans_model, layer="nope")
    with pytest.raises(ValueError, match="labels"):
        plot_similarity(kmeans_model, labels=["a"])
    with pytest.raises(ValueError, match="square"):
        plot_similarity(np.ones((2, 3)))


def test_similarity_into_given_axes(kmeans_model):
    fig, (left, right) = plt.subplots(1, 2)
    assert plot_similarity(kmeans_model, ax=right, colorbar=False) is right
    assert len(left.images) == 0 and len(right.images) == 1


def test_layer_similarity_figure(kmeans_model):
    fig = plot_layer_similarity(kmeans_model)
    layers = list(kmeans_model.layer_similarity_)
    panels = fig.axes[: 1 + len(layers)]
    assert [ax.get_title() for ax in panels] == ["all prunable weights", *layers]
    np.testing.assert_array_equal(panels[0].images[0].get_array(), kmeans_model.similarity_)
    for ax, name in zip(panels[1:], layers, strict=True):
        np.testing.assert_array_equal(
            ax.images[0].get_array(), kmeans_model.layer_similarity_[name]
        )
    assert len(fig.axes) == len(panels) + 1  # one shared colorbar

    fig = plot_layer_similarity(kmeans_model, include_global=False, ncols=1, labels=list("abc"))
    assert [ax.get_title() for ax in fig.axes[: len(layers)]] == layers
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == list("abc")
    with pytest.raises(ValueError, match="labels"):
        plot_layer_similarity(kmeans_model, labels=["a"])


def test_collapse_curve_matches_estimator(kmeans_model):
    curve = kmeans_model.collapse_curve_
    ax = plot_collapse_curve(kmeans_model)
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines) == ["similarity", "random masks"]
    x, y = lines["similarity"].get_data()
    np.testing.assert_allclose(x, [r["sparsity"] for r in curve])
    np.testing.assert_allclose(y, [r["similarity"] for r in curve])
    np.testing.assert_allclose(
        lines["random masks"].get_ydata(), [r["random_similarity"] for r in curve]
    )
    assert len(x) == kmeans_model.n_prune_rounds
    assert ax.get_xlabel().startswith("sparsity")
    assert ax.get_ylabel() == "Jaccard similarity"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["similarity", "random masks"]


def test_collapse_curve_with_accuracy_and_tickets(kmeans_model):
    curve = kmeans_model.collapse_curve_
    accuracy = [0.9, 0.8, 0.5]
    ax = plot_collapse_curve(
        kmeans_model,
        accuracy=accuracy,
        show_tickets=True,
        show_layers=True,
        accuracy_label="balanced accuracy",
    )
    labelled = [line for line in ax.get_lines() if not line.get_label().startswith("_")]
    per_ticket = [line for line in ax.get_lines() if line.get_label() == "_ticket"]
    assert len(per_ticket) == kmeans_model.n_tickets_
    for k, line in enumerate(per_ticket):
        np.testing.assert_allclose(line.get_ydata(), [r["ticket_similarity"][k] for r in curve])
    names = [line.get_label() for line in labelled]
    layers = list(kmeans_model.layer_similarity_)
    assert names == [f"similarity ({n})" for n in layers] + [
        "similarity",
        "random masks",
        "balanced accuracy",
    ]
    acc = labelled[-1]
    np.testing.assert_allclose(acc.get_xdata(), [r["sparsity"] for r in curve])
    np.testing.assert_allclose(acc.get_ydata(), accuracy)
    assert ax.get_ylabel() == "Jaccard similarity / accuracy"

    # a {sparsity: accuracy} dict may hold other sparsity levels, drawn sorted
    ax = plot_collapse_curve(kmeans_model, accuracy={0.9: 0.4, 0.2: 0.95})
    acc = ax.get_lines()[-1]
    np.testing.assert_allclose(acc.get_xdata(), [0.2, 0.9])
    np.testing.assert_allclose(acc.get_ydata(), [0.95, 0.4])

    with pytest.raises(ValueError, match="pruning rounds"):
        plot_collapse_curve(kmeans_model, accuracy=[0.5])


def test_collapse_curve_from_records_with_accuracy_key():
    curve = [
        {"sparsity": 0.5, "similarity": 0.6, "random_similarity": 0.33, "accuracy": 0.9},
        {"sparsity": 0.75, "similarity": 0.7, "random_similarity": 0.14, "accuracy": 0.6},
    ]
    ax = plot_collapse_curve(curve)
    assert [line.get_label() for line in ax.get_lines()] == [
        "similarity",
        "random masks",
        "accuracy",
    ]
    np.testing.assert_allclose(ax.get_lines()[-1].get_ydata(), [0.9, 0.6])
    with pytest.raises(ValueError, match="empty"):
        plot_collapse_curve([])


def test_collapse_curve_draws_held_out_scores():
    curve = [
        {"sparsity": 0.5, "similarity": 0.6, "random_similarity": 0.33, "val_score": 0.9},
        {"sparsity": 0.75, "similarity": 0.5, "random_similarity": 0.14, "val_score": 0.8},
        {"sparsity": 0.9, "similarity": 0.4, "random_similarity": 0.05},  # not scored
    ]
    ax = plot_collapse_curve(curve)
    line = ax.get_lines()[-1]
    assert line.get_label() == "held-out balanced accuracy"
    np.testing.assert_allclose(line.get_xdata(), [0.5, 0.75])
    np.testing.assert_allclose(line.get_ydata(), [0.9, 0.8])
    ax = plot_collapse_curve(curve, accuracy_label="val BA")
    assert ax.get_lines()[-1].get_label() == "val BA"


def test_collapse_curve_of_a_fit_with_held_out_scores(data):
    X, y = data
    clf = RTLClassifier(
        hidden_layer_sizes=(8,),
        n_clusters=2,
        min_cluster_size=0,
        sparsity=0.75,
        n_prune_rounds=2,
        max_epochs=1,
        validation_fraction=0.25,
        random_state=0,
    ).fit(X, y)
    scored = [r for r in clf.collapse_curve_ if r.get("val_score") is not None]
    assert scored
    ax = plot_collapse_curve(clf)
    line = ax.get_lines()[-1]
    assert line.get_label() == "held-out balanced accuracy"
    np.testing.assert_allclose(line.get_ydata(), [r["val_score"] for r in scored])


def test_ticket_sparsity_bars(kmeans_model, label_model):
    ax = plot_ticket_sparsity(kmeans_model)
    heights = [bar.get_height() for bar in ax.patches]
    np.testing.assert_allclose(heights, kmeans_model.ticket_sparsity_)
    assert len(ax.patches) == kmeans_model.n_tickets_
    hlines = {line.get_label(): line.get_ydata()[0] for line in ax.get_lines()}
    assert hlines == {
        "target sparsity (0.75)": pytest.approx(0.75),
        f"union of masks ({kmeans_model.sparsity_:.2f})": pytest.approx(kmeans_model.sparsity_),
    }
    assert [t.get_text() for t in ax.texts] == [f"{v:.2f}" for v in kmeans_model.ticket_sparsity_]
    assert ax.get_ylabel().startswith("sparsity")

    ax = plot_ticket_sparsity(label_model, show_target=False, show_union=False)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "10", "20", "30"]
    assert len(ax.get_lines()) == 0
    np.testing.assert_allclose([b.get_height() for b in ax.patches], label_model.ticket_sparsity_)


def test_unfitted_estimator_is_rejected():
    with pytest.raises(ValueError, match="fit"):
        plot_ticket_sparsity(RTLClassifier())
    with pytest.raises(ValueError, match="fit"):
        plot_similarity(RTLClassifier())


def test_missing_matplotlib_names_the_extra(monkeypatch):
    import builtins

    import sklearn_rtl.plotting as plotting

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(ImportError, match=r"sklearn-rtl\[plot\]"):
        plotting.plot_similarity([[1.0]])


def test_plot_baselines_draws_one_marker_per_model():
    from sklearn_rtl.plotting import plot_baselines

    table = {
        "model": ["rtl", "single", "dense"],
        "score_mean": [0.9, 0.88, 0.92],
        "score_std": [0.01, 0.02, 0.0],
        "n_params": [500, 300, 2000],
        "n_active_params": [300, 300, 2000],
    }
    ax = plot_baselines(table, weights="n_active_params")
    assert [c.get_label() for c in ax.containers] == ["rtl", "single", "dense"]
    xs = [c.lines[0].get_xdata()[0] for c in ax.containers]
    assert xs == [300, 300, 2000]
    assert ax.get_xlabel() == "weights per prediction"
    with pytest.raises(ValueError, match="weights must be"):
        plot_baselines(table, weights="size")
