"""Figures of a fitted RTL model: ticket similarity, the collapse curve, ticket sparsity.

Needs matplotlib, the ``plot`` extra (``pip install "sklearn-rtl[plot]"``). Every function
takes a fitted :class:`~sklearn_rtl.RTLClassifier` (or the plain numbers it stores), draws
into a given ``ax`` or a new figure, and returns the matplotlib ``Axes`` (or ``Figure`` for
multi-panel plots), so it can be styled further or saved with ``savefig``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "plot_baselines",
    "plot_similarity",
    "plot_layer_similarity",
    "plot_collapse_curve",
    "plot_ticket_sparsity",
]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError(
            "sklearn_rtl.plotting needs matplotlib, which is not installed. Install the "
            "'plot' extra: pip install \"sklearn-rtl[plot]\" (or pip install matplotlib)."
        ) from error
    return plt


def _new_axes(ax, figsize):
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _check_fitted(estimator, attribute):
    if not hasattr(estimator, attribute):
        raise ValueError(
            f"Expected a fitted RTL estimator with a {attribute!r} attribute; call fit first "
            f"(got {type(estimator).__name__})."
        )


def _ticket_labels(estimator) -> list[str]:
    """Ticket names: the classes (label routing), the router's labels, or ``ticket k``."""
    _check_fitted(estimator, "n_tickets_")
    routing = getattr(estimator, "routing", None)
    if isinstance(routing, str) and routing == "label" and hasattr(estimator, "classes_"):
        return [str(c) for c in estimator.classes_]
    router = getattr(estimator, "router_", None)
    names = getattr(router, "ticket_labels_", None)
    if names is not None and not (isinstance(routing, str) and routing == "kmeans"):
        return [str(n) for n in names]
    return [f"ticket {k}" for k in range(estimator.n_tickets_)]


def _heatmap(ax, matrix, labels, title, annotate, cmap, colorbar):
    image = ax.imshow(matrix, vmin=0.0, vmax=1.0, cmap=cmap)
    ticks = np.arange(len(matrix))
    ax.set_xticks(ticks, labels, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(ticks, labels)
    ax.set_title(title)
    if annotate:
        for i in range(len(matrix)):
            for j in range(len(matrix)):
                value = matrix[i, j]
                ax.text(
                    j,
                    i,
                    f"{value:.2f}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="black" if value > 0.6 else "white",
                )
    if colorbar:
        ax.figure.colorbar(image, ax=ax, label="Jaccard similarity", shrink=0.8)
    return image


def plot_similarity(
    estimator,
    layer=None,
    *,
    ax=None,
    labels=None,
    annotate=None,
    cmap="viridis",
    colorbar=True,
):
    """Heatmap of the Jaccard similarity between the tickets' masks.

    Parameters
    ----------
    estimator : fitted RTLClassifier or array-like of shape (n_tickets, n_tickets)
        The estimator (its ``similarity_`` or ``layer_similarity_[layer]`` is drawn) or a
        similarity matrix such as :func:`sklearn_rtl.similarity_matrix` returns.
    layer : str, default=None
        A prunable layer's name (a key of ``layer_similarity_``); ``None`` draws the global
        similarity over all prunable weights.
    ax : matplotlib Axes, default=None
        Where to draw; ``None`` makes a new figure.
    labels : list of str, default=None
        Ticket names; ``None`` uses the classes (label routing) or ``"ticket k"``.
    annotate : bool, default=None
        Write every value in its cell; ``None`` annotates up to 12 tickets.
    cmap : str, default="viridis"
        Colormap; the color scale is fixed to ``[0, 1]``.
    colorbar : bool, default=True
        Add a colorbar.

    Returns
    -------
    ax : matplotlib Axes
        The heatmap is ``ax.images[0]``; its array is the similarity matrix.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn_rtl.plotting import plot_similarity
    >>> ax = plot_similarity([[1.0, 0.3], [0.3, 1.0]])
    >>> ax.images[0].get_array().tolist()
    [[1.0, 0.3], [0.3, 1.0]]
    """
    if hasattr(estimator, "fit"):
        _check_fitted(estimator, "similarity_")
        if layer is None:
            matrix = estimator.similarity_
            title = "Ticket similarity (all prunable weights)"
        else:
            if layer not in estimator.layer_similarity_:
                raise ValueError(
                    f"Unknown layer {layer!r}; the prunable layers are "
                    f"{list(estimator.layer_similarity_)}."
                )
            matrix = estimator.layer_similarity_[layer]
            title = f"Ticket similarity ({layer})"
        default_labels = _ticket_labels(estimator)
    else:
        if layer is not None:
            raise ValueError("layer needs a fitted estimator, not a similarity matrix.")
        matrix = estimator
        title = "Ticket similarity"
        default_labels = None
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"The similarity matrix must be square, got shape {matrix.shape}.")
    if labels is None:
        labels = default_labels or [f"ticket {k}" for k in range(len(matrix))]
    if len(labels) != len(matrix):
        raise ValueError(f"Got {len(labels)} labels for {len(matrix)} tickets.")
    if annotate is None:
        annotate = len(matrix) <= 12
    ax = _new_axes(ax, (4.8, 4.0))
    _heatmap(ax, matrix, labels, title, annotate, cmap, colorbar)
    return ax


def plot_layer_similarity(
    estimator,
    *,
    include_global=True,
    labels=None,
    annotate=None,
    cmap="viridis",
    ncols=3,
    figsize=None,
):
    """One similarity heatmap per prunable layer (and the global one) in one figure.

    Parameters
    ----------
    estimator : fitted RTLClassifier
    include_global : bool, default=True
        Put the global similarity (all prunable weights) in the first panel.
    labels : list of str, default=None
        Ticket names; ``None`` uses the classes (label routing) or ``"ticket k"``.
    annotate : bool, default=None
        Write the values in the cells; ``None`` annotates up to 6 tickets.
    cmap : str, default="viridis"
    ncols : int, default=3
        Panels per row.
    figsize : tuple of float, default=None
        ``None`` gives about 3.6 x 4.1 inches per panel.

    Returns
    -------
    fig : matplotlib Figure
        ``fig.axes`` holds the panels (global first) followed by one colorbar axes.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_rtl import RTLClassifier
    >>> from sklearn_rtl.plotting import plot_layer_similarity
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = RTLClassifier(hidden_layer_sizes=(16, 16), n_clusters=2, n_prune_rounds=1,
    ...                     max_epochs=1, random_state=0).fit(X, y)
    >>> fig = plot_layer_similarity(clf)
    >>> [ax.get_title() for ax in fig.axes[:3]]
    ['all prunable weights', 'layers.0.weight', 'layers.2.weight']
    """
    _check_fitted(estimator, "layer_similarity_")
    panels = []
    if include_global:
        panels.append(("all prunable weights", estimator.similarity_))
    panels += list(estimator.layer_similarity_.items())
    if labels is None:
        labels = _ticket_labels(estimator)
    if len(labels) != estimator.n_tickets_:
        raise ValueError(f"Got {len(labels)} labels for {estimator.n_tickets_} tickets.")
    if annotate is None:
        annotate = len(labels) <= 6
    plt = _pyplot()
    ncols = max(1, min(int(ncols), len(panels)))
    nrows = -(-len(panels) // ncols)
    if figsize is None:
        figsize = (3.6 * ncols + 1.0, 4.1 * nrows)
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, squeeze=False, layout="constrained")
    image = None
    for ax, (title, matrix) in zip(axes.flat, panels, strict=False):
        image = _heatmap(ax, np.asarray(matrix), labels, title, annotate, cmap, colorbar=False)
    for ax in axes.flat[len(panels) :]:
        fig.delaxes(ax)
    fig.colorbar(image, ax=axes.ravel().tolist(), label="Jaccard similarity", shrink=0.8)
    return fig


def plot_collapse_curve(
    estimator,
    accuracy=None,
    *,
    ax=None,
    show_tickets=False,
    show_layers=False,
    accuracy_label="accuracy",
):
    """Mask similarity (and accuracy) against sparsity, one point per pruning round.

    The paper's collapse signature is a sharp rise of the similarity between tickets
    together with a drop of accuracy as sparsity grows. The dashed line is the similarity
    that random masks of the same density would reach (``d / (2 - d)``): tickets far above
    it share weights by design, not by chance.

    Parameters
    ----------
    estimator : fitted RTLClassifier or list of dict
        The estimator (its ``collapse_curve_`` is drawn) or such a list of per-round
        records with keys ``sparsity``, ``similarity``, ``random_similarity`` (and
        ``ticket_similarity`` / ``layer_similarity`` for the options below).
    accuracy : array-like of shape (n_rounds,) or dict of float to float, default=None
        Accuracy after every round (aligned with the records), or a mapping ``sparsity ->
        accuracy`` (e.g. test scores of models fitted at several ``sparsity`` values).
        ``None`` uses the records' ``"accuracy"`` key if they have one, else their
        ``"val_score"`` (the held-out balanced accuracy an estimator fitted with
        ``validation_fraction`` or ``sparsity="auto"`` records), else draws no accuracy.
    ax : matplotlib Axes, default=None
        Where to draw; ``None`` makes a new figure.
    show_tickets : bool, default=False
        Also draw every ticket's mean similarity to the others (thin lines).
    show_layers : bool, default=False
        Also draw the mean pairwise similarity of every layer (dotted lines).
    accuracy_label : str, default="accuracy"
        Legend label of the accuracy line, e.g. ``"balanced accuracy"`` (``val_score``
        records are labelled ``"held-out balanced accuracy"`` unless this is changed).

    Returns
    -------
    ax : matplotlib Axes
        Lines carry the labels ``"similarity"``, ``"random masks"`` and, if drawn,
        ``accuracy_label``; both quantities share the ``[0, 1]`` y-axis.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn_rtl.plotting import plot_collapse_curve
    >>> curve = [{"sparsity": 0.5, "similarity": 0.6, "random_similarity": 0.33},
    ...          {"sparsity": 0.75, "similarity": 0.4, "random_similarity": 0.14}]
    >>> ax = plot_collapse_curve(curve, accuracy=[0.9, 0.85])
    >>> [line.get_label() for line in ax.get_lines()]
    ['similarity', 'random masks', 'accuracy']
    """
    if hasattr(estimator, "fit"):
        _check_fitted(estimator, "collapse_curve_")
        curve = estimator.collapse_curve_
    else:
        curve = list(estimator)
    if not curve:
        raise ValueError("The collapse curve is empty.")
    sparsity = np.array([r["sparsity"] for r in curve], dtype=np.float64)
    similarity = np.array([r["similarity"] for r in curve], dtype=np.float64)
    ax = _new_axes(ax, (5.6, 3.8))

    if show_tickets and "ticket_similarity" in curve[0]:
        per_ticket = np.array([r["ticket_similarity"] for r in curve], dtype=np.float64)
        for k in range(per_ticket.shape[1]):
            ax.plot(
                sparsity,
                per_ticket[:, k],
                color="tab:blue",
                alpha=0.3,
                linewidth=0.8,
                label="_ticket",
            )
    if show_layers and "layer_similarity" in curve[0]:
        for name in curve[0]["layer_similarity"]:
            values = [r["layer_similarity"][name] for r in curve]
            ax.plot(sparsity, values, linestyle=":", linewidth=1.2, label=f"similarity ({name})")
    ax.plot(sparsity, similarity, marker="o", color="tab:blue", linewidth=2, label="similarity")
    if "random_similarity" in curve[0]:
        chance = np.array([r["random_similarity"] for r in curve], dtype=np.float64)
        ax.plot(sparsity, chance, linestyle="--", color="gray", label="random masks")

    accuracy, accuracy_label = _recorded_accuracy(curve, accuracy, accuracy_label)
    if accuracy is not None:
        acc_x, acc_y = _accuracy_points(accuracy, sparsity)
        ax.plot(acc_x, acc_y, marker="s", color="tab:orange", linewidth=2, label=accuracy_label)

    ax.set_xlabel("sparsity (fraction of prunable weights removed)")
    ax.set_ylabel("Jaccard similarity / accuracy" if accuracy is not None else "Jaccard similarity")
    ax.set_ylim(0.0, 1.02)
    ax.set_title("Collapse curve")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return ax


def plot_ticket_sparsity(estimator, *, ax=None, labels=None, show_target=True, show_union=True):
    """Bar chart of every ticket's sparsity, with the target and the union of the masks.

    Parameters
    ----------
    estimator : fitted RTLClassifier
    ax : matplotlib Axes, default=None
        Where to draw; ``None`` makes a new figure.
    labels : list of str, default=None
        Ticket names; ``None`` uses the classes (label routing) or ``"ticket k"``.
    show_target : bool, default=True
        Horizontal line at the requested ``sparsity``.
    show_union : bool, default=True
        Horizontal line at ``sparsity_``, the fraction of prunable weights that no ticket
        keeps (what the shared model saves).

    Returns
    -------
    ax : matplotlib Axes
        ``ax.patches`` holds one bar per ticket, of height ``ticket_sparsity_[k]``.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_rtl import RTLClassifier
    >>> from sklearn_rtl.plotting import plot_ticket_sparsity
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = RTLClassifier(hidden_layer_sizes=(16,), n_clusters=3, sparsity=0.5,
    ...                     n_prune_rounds=1, max_epochs=1, random_state=0).fit(X, y)
    >>> ax = plot_ticket_sparsity(clf)
    >>> [float(round(bar.get_height(), 2)) for bar in ax.patches]
    [0.5, 0.5, 0.5]
    """
    _check_fitted(estimator, "ticket_sparsity_")
    values = np.asarray(estimator.ticket_sparsity_, dtype=np.float64)
    if labels is None:
        labels = _ticket_labels(estimator)
    if len(labels) != len(values):
        raise ValueError(f"Got {len(labels)} labels for {len(values)} tickets.")
    ax = _new_axes(ax, (max(4.0, 0.5 * len(values) + 2.5) + 2.2, 3.4))
    positions = np.arange(len(values))
    bars = ax.bar(positions, values, color="tab:green", label="ticket sparsity")
    ax.bar_label(bars, labels=[f"{v:.2f}" for v in values], fontsize=8, padding=2)
    ax.set_xticks(
        positions,
        labels,
        rotation=45 if len(values) > 6 else 0,
        ha="right" if len(values) > 6 else "center",
    )
    if show_target and hasattr(estimator, "sparsity"):
        ax.axhline(
            estimator.sparsity,
            color="black",
            linestyle="--",
            linewidth=1,
            label=f"target sparsity ({estimator.sparsity:.2f})",
        )
    if show_union and hasattr(estimator, "sparsity_"):
        ax.axhline(
            estimator.sparsity_,
            color="tab:red",
            linestyle=":",
            linewidth=1.5,
            label=f"union of masks ({estimator.sparsity_:.2f})",
        )
    ax.set_ylim(0.0, 1.08)
    ax.set_ylabel("sparsity (fraction removed)")
    ax.set_xlabel("ticket")
    ax.set_title("Per-ticket sparsity")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return ax


def _recorded_accuracy(curve, accuracy, accuracy_label):
    """The accuracy to draw and its label: the one given, else a score the records carry
    ("accuracy", or "val_score": held-out balanced accuracy, fitted with
    ``validation_fraction`` or ``sparsity="auto"``), else None."""
    if accuracy is not None:
        return accuracy, accuracy_label
    for key, label in (("accuracy", accuracy_label), ("val_score", None)):
        scored = {r["sparsity"]: r[key] for r in curve if r.get(key) is not None}
        if scored:
            if label is None and accuracy_label == "accuracy":
                accuracy_label = "held-out balanced accuracy"
            return scored, accuracy_label
    return None, accuracy_label


def _accuracy_points(accuracy, sparsity):
    """``(x, y)`` of an accuracy given per round (aligned with ``sparsity``) or as a
    ``{sparsity: accuracy}`` mapping."""
    if isinstance(accuracy, dict):
        acc_x = np.array(sorted(accuracy), dtype=np.float64)
        return acc_x, np.array([accuracy[s] for s in sorted(accuracy)], dtype=np.float64)
    acc_y = np.asarray(accuracy, dtype=np.float64).reshape(-1)
    if len(acc_y) != len(sparsity):
        raise ValueError(
            f"accuracy has {len(acc_y)} values for {len(sparsity)} pruning rounds; "
            "pass a dict {sparsity: accuracy} for other sparsity levels."
        )
    return sparsity, acc_y


_BASELINE_MARKERS = ("o", "s", "D", "^", "v", "P", "X")


def plot_baselines(table, *, ax=None, weights="n_params"):
    """Score against weights, one marker per model of :func:`~sklearn_rtl.compare_baselines`.

    Parameters
    ----------
    table : pandas.DataFrame or dict of array
        What :func:`~sklearn_rtl.compare_baselines` returns (columns ``model``,
        ``score_mean``, ``score_std`` and ``weights``).
    ax : matplotlib Axes, default=None
        Where to draw; ``None`` makes a new figure.
    weights : {"n_params", "n_active_params"}, default="n_params"
        The x-axis: weights stored, or weights one prediction runs through.

    Returns
    -------
    ax : matplotlib Axes
        One error bar (mean +- std over folds) per model, labelled with its name.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn_rtl.plotting import plot_baselines
    >>> table = {"model": ["rtl", "dense"], "score_mean": [0.9, 0.92],
    ...          "score_std": [0.01, 0.02], "n_params": [500, 2000]}
    >>> ax = plot_baselines(table)
    >>> [c.get_label() for c in ax.containers]
    ['rtl', 'dense']
    """
    if weights not in ("n_params", "n_active_params"):
        raise ValueError(f"weights must be 'n_params' or 'n_active_params', got {weights!r}.")
    ax = _new_axes(ax, (5.6, 3.8))
    models = list(table["model"])
    for i, model in enumerate(models):
        ax.errorbar(
            [np.asarray(table[weights], dtype=float)[i]],
            [np.asarray(table["score_mean"], dtype=float)[i]],
            yerr=[np.asarray(table["score_std"], dtype=float)[i]],
            marker=_BASELINE_MARKERS[i % len(_BASELINE_MARKERS)],
            linestyle="none",
            capsize=3,
            label=str(model),
        )
    ax.set_xscale("log")
    ax.set_xlabel("weights stored" if weights == "n_params" else "weights per prediction")
    ax.set_ylabel("score (mean +- std over folds)")
    ax.legend(fontsize="small")
    return ax
