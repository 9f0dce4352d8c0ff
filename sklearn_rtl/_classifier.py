"""RTLClassifier: the scikit-learn facade of Routing the Lottery for classification."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets

from ._base import BaseRTL, predict_doc, with_parameter
from ._params import ROUTER_CONSTRAINT
from ._routing import distinct_values
from ._tasks import MulticlassTask, OneVsRestTask


def _check_class_weight(label, weight):
    """A ``ValueError`` naming ``class_weight`` and the class unless ``weight`` is a finite,
    non-negative number (a negative weight would drop the class's rows, not weigh them)."""
    if not (isinstance(weight, numbers.Real) and np.isfinite(weight) and weight >= 0):
        raise ValueError(
            f"class_weight must map every class to a finite, non-negative weight; got "
            f"{weight!r} for class {label!r}."
        )


class RTLClassifier(ClassifierMixin, BaseRTL):
    """Routing the Lottery: one sparse ticket per data cluster or class, one shared network.

    ``fit`` runs the two stages of RTL (Stefanski et al., 2026) on a PyTorch network trained
    through skorch:

    1. **Ticket extraction** (paper Alg. 1). The router splits the training data into
       ``n_tickets_`` subsets. From one shared random initialization ``theta0`` every ticket
       runs iterative magnitude pruning on its own samples: train (at most
       ``max_prune_epochs``, until it stops improving), remove
       the lowest-magnitude surviving weights, rewind the survivors to ``theta0``; after
       ``n_prune_rounds`` rounds (a geometric schedule) every ticket keeps exactly
       ``1 - sparsity`` of the prunable weights. The K runs train together, batched, each
       with its own weight copy and its own number of steps.
    2. **Joint retraining** (paper Alg. 2). One shared weight tensor, rewound to ``theta0``,
       is trained until it stops improving (at most ``max_epochs``) with every sample going
       through its own ticket's mask.
       Every step holds one balanced mini-batch per ticket (smaller tickets cycle), each
       ticket keeps its own Adam moments, and a weight that no ticket keeps never moves.

    ``predict`` routes every sample to its ticket and runs one masked pass per ticket.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(128, 128)
        Hidden widths of the default MLP (ignored when ``module`` is given or ``X`` is
        image-shaped). Chosen by measurement on 14 tables (``docs/benchmarks.md``): a
        (256, 256) network scores about as well but costs 4-20x MLPClassifier's fit time
        on tables of 5,000+ rows; one hidden layer of 256 fits fastest but its pruned
        first layer (80% of ``n_features x 256`` weights) starves low-dimensional tables
        and label routing's detectors.
    module : torch.nn.Module class or instance, default=None
        A custom network mapping ``X`` (of shape ``(n_samples, *input_shape_)``, any
        number of dimensions) to logits of shape ``(n_samples, n_outputs)``, where
        ``n_outputs`` is the number of classes (or 1 under ``routing="label"``). A class is
        built with ``module_params``; an instance is deep-copied, never modified. ``None``
        builds an :class:`~sklearn_rtl.MLP` for 2-D ``X`` and a
        :class:`~sklearn_rtl.SmallCNN` (conv blocks with batch norm, global pooling, linear
        head; ``module_params`` go to it) for images: ``X`` of shape ``(n, H, W)`` or
        ``(n, C, H, W)``, or flat ``X`` with ``input_shape``.
    routing : {"kmeans", "label", "groups"} or estimator, default="kmeans"
        How samples are assigned to tickets.

        - ``"kmeans"``: KMeans with ``n_clusters`` on standardized inputs (seeded from
          ``random_state``); every ticket is a full multi-class classifier trained on its
          cluster, and new samples are routed by the fitted KMeans.
        - ``"label"``: one ticket per class, a one-vs-rest detector trained on balanced
          batches (half its class, half the others). ``predict`` runs every detector and
          takes the highest score; ``predict_proba`` normalizes the detectors' sigmoid
          scores to sum to one.
        - ``"groups"``: one ticket per distinct value of the ``groups`` array passed to
          ``fit``, ``predict``, ``predict_proba``, ``score`` and ``route`` (a known context:
          the paper's environment or region tickets). Inside a Pipeline or a search, enable
          metadata routing and request it with ``set_fit_request(groups=True)``,
          ``set_predict_request(groups=True)`` and ``set_score_request(groups=True)``.
        - an estimator with ``fit``/``predict`` (a clusterer, or a classifier of some
          context such as the environment): cloned, fitted on ``(X, y)`` (``y`` only if its
          ``fit`` takes it) and used as the router; one ticket per distinct output.
    n_clusters : int or "auto", default="auto"
        Number of KMeans clusters (``routing="kmeans"`` only), one ticket each. ``1`` is
        the single-ticket IMP baseline. A cluster of fewer than 0.2x the average cluster
        size (a few outliers) or of fewer than ``min_cluster_size`` samples gets no
        ticket: its samples join the nearest remaining centroid's ticket, so
        ``n_tickets_`` can be smaller than ``n_clusters``.

        ``"auto"`` starts from 4 clusters (less the floor's) and keeps their tickets only
        where they pay: it holds out 10% of the training rows, trains the first round of
        ticket extraction both for the clusters' tickets and for one shared ticket on
        every row (same ``theta0``, the same number of steps each), and keeps the
        clusters' tickets only if their held-out loss is lower than the shared ticket's
        by more than two standard errors and their lead did not shrink by more than two
        standard errors over the round's second half (a lead that is still shrinking
        measures how fast the tickets learn, not where they end). Otherwise every
        cluster routes to one shared ticket (``n_tickets_ == 1``). The held-out rows then
        train the model like the others. The evidence is ``ticket_choice_``; the fit is
        then exactly the fit with ``n_clusters=4`` (or the clusters the floor left) or
        ``n_clusters=1``. An integer keeps as many tickets as it says, less the floor's.
    min_cluster_size : int, default=200
        Smallest KMeans cluster (``routing="kmeans"`` only), in training samples, that gets
        a ticket of its own; where no cluster is that large, the largest one keeps the only
        ticket (the single ticket). A smaller cluster fits in one batch of
        ``batch_size="auto"``, so Alg. 2 trains its ticket full-batch, and the
        training-loss rule does not stop it before it has memorized its rows: on pima
        (614 training rows, clusters of 50-250) K=4 scored 0.031 below
        ``MLPClassifier()`` with no floor and level with it at 200; on wine 0.012 below and
        0.004 below. Tables of a few thousand rows keep all their clusters
        (``docs/benchmarks.md``, sections 7 and 7b). ``0`` gives every cluster above the
        0.2x-average rule its ticket, whatever the table's size. With ``verbose``, a fit
        that merges clusters prints their sizes and the ticket count.
    sparsity : float in [0, 1) or "auto", default=0.8
        Fraction of the prunable weights every ticket removes. ``"auto"`` holds out
        ``validation_fraction`` of the training rows (0.1 if that is ``None``), prunes on
        the geometric schedule up to ``sparsity_ceiling`` and scores the tickets on the
        held-out rows after every round; it keeps the masks of the last round before the
        held-out balanced accuracy falls for good (every later score more than 0.02 below
        the best earlier one, :func:`~sklearn_rtl.collapse_from_scores`), or the
        ceiling's masks if it never does, then retrains as usual on the remaining rows.
        Pruning stops early once two consecutive rounds score that low. The label-free
        similarity rule is *not* used for this: it was not reliable on our data
        (``docs/paper-reproduction.md``).
    n_prune_rounds : int, default=2
        Pruning rounds of ticket extraction (with ``sparsity="auto"``, the rounds up to
        ``sparsity_ceiling``: more rounds give a finer choice).
    sparsity_ceiling : float in (0, 1), default=0.99
        Highest sparsity ``sparsity="auto"`` tries; ignored for a numeric ``sparsity``.
    validation_fraction : float in (0, 1) or None, default=None
        Fraction of the training rows held out (stratified; every class, and under
        ``routing="groups"`` every group, keeps a training row). The same held-out rows
        serve early stopping, ``sparsity="auto"`` and the per-round scores; ``None`` holds
        out 0.1 where one of those needs rows (``early_stopping=True`` or
        ``sparsity="auto"``) and nothing otherwise. A float also scores the tickets after
        every pruning round. The
        score of round ``r``'s masks is that of the per-ticket weight copies trained in
        round ``r + 1`` (from the rewind point, under round ``r``'s masks, untied: the
        independent tickets, not the jointly retrained model); one extra training pass
        scores the last round. Scores go into ``collapse_curve_`` (``val_score``,
        ``ticket_val_score``) and the dense network's into ``validation_score_dense_``.
    max_epochs : int, default=200
        Epoch cap of every stage (MLPClassifier's ``max_iter``); a stage ends earlier
        when it stops improving (``tol``, ``n_iter_no_change``). An epoch lets the largest
        ticket see each of its samples once.
    max_prune_epochs : int, default=10
        Epoch cap of every pruning round of ticket extraction (at most ``max_epochs``),
        the paper's 10-epoch pruning phase. The rounds only need a magnitude ranking: on
        our 14 tables 10 epochs scored as well as 20 (and 20 as well as training every
        round to convergence), at a fraction of the time (``docs/benchmarks.md``).
        ``max_prune_epochs=max_epochs`` is the paper's protocol.
    tol : float, default=1e-4
        A stage has stopped improving once its monitored value (the training loss, or
        with ``early_stopping`` the held-out score) has not improved by more than ``tol``
        for ``n_iter_no_change`` consecutive epochs, as in MLPClassifier.
    n_iter_no_change : int, default=10
        See ``tol``.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows (0.1 if None) and end every stage on
        the held-out score (balanced accuracy; R^2 for the regressor) instead of the
        training loss, restoring the weights of the stage's best epoch.
    share_weights : bool, default=True
        ``True`` is RTL: one shared weight tensor, retrained jointly. ``False`` is the
        paper's independent-models baseline: every ticket keeps its own weights and is
        retrained alone from the same rewind point.
    lr : float, default=1e-3
        Learning rate.
    batch_size : int or "auto", default="auto"
        Samples per ticket per step; ``"auto"`` is MLPClassifier's ``min(200, n_samples)``.
    optimizer : torch.optim.Optimizer class, default=torch.optim.Adam
    device : str, default="cpu"
        Torch device, e.g. ``"cuda"``.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialization, the router and the batch order.
    verbose : int, default=0
        ``1`` prints a line per epoch with its stage (pruning round or retraining), and
        the evidence of ``n_clusters="auto"`` (see ``ticket_choice_``); ``2`` also shows
        one progress bar over all epochs of the fit (stderr).
    prune_scope : {"layer", "global"}, default="layer"
        Magnitude ranking per layer (every layer keeps ``1 - sparsity`` of its weights) or
        across all prunable layers. The paper does not say; ``"layer"`` measured better on
        our benchmarks (see ``docs/benchmarks.md``).
    prune_granularity : {"weight", "neuron"}, default="weight"
        What one pruning step removes. ``"weight"``: single weights, as in the paper.
        ``"neuron"``: whole hidden units (whole channels of the default CNN), ranked by
        the norm of their surviving incoming weights, per layer or globally as
        ``prune_scope`` says (globally by their RMS, so that layers of different fan-in
        compare); a removed unit loses every weight into and out of it. ``sparsity``
        still counts weights, so the two kinds of ticket are comparable. A neuron ticket
        runs as a physically smaller dense network (``ticket_module``, ``to_torch``,
        ``predict``), so it predicts faster; a weight ticket is as costly as the dense
        network. Needs the default MLP or CNN, or an ``nn.Sequential`` alternating
        ``Linear`` and ``ReLU``, with default ``prunable`` and no ``shared_layers``.
    prune_output_layer : bool, default=False
        Whether the last Linear/Conv layer (the classifier) is pruned too. The paper keeps it
        dense.
    rewind_epoch : int, default=0
        Rewinding point: ``0`` rewinds to the initialization ``theta0`` (the paper);
        ``e > 0`` first trains the dense network jointly for ``e`` epochs and rewinds to
        those weights ("late rewinding").
    module_params : dict, default=None
        Keyword arguments for ``module`` (or for :class:`~sklearn_rtl.MLP`).
    optimizer_params : dict, default=None
        Extra keyword arguments for the optimizer, e.g. ``{"weight_decay": 1e-4}``.
    callbacks : list of skorch callbacks, default=None
        Added to the skorch net (deep-copied). Every stage (each pruning round, the
        retraining) trains with fresh copies, so "best" epochs, ``EarlyStopping`` and
        ``Checkpoint(load_best=True)`` are per stage; ``FitProgressBar`` spans the fit.
    unknown_group : {"error", "nearest"}, default="error"
        Under ``routing="groups"``, what a group value never seen in ``fit`` gets at
        predict time: a ``ValueError``, or the ticket of the group whose standardized
        feature centroid is nearest to the sample (e.g. for ``GroupKFold`` splits, whose
        test groups are always unseen).
    input_shape : tuple of int, default=None
        Shape every sample is reshaped to before it enters the network, e.g. ``(1, 28, 28)``
        for flat 784-pixel rows; routers always see flat rows. Without ``module``, a
        2- or 3-entry ``input_shape`` selects the default CNN.
    prunable : list of str or callable, default=None
        Which parameters carry ticket masks. ``None``: every Linear and Conv (1-3 D)
        weight, except the last such layer unless ``prune_output_layer`` (biases,
        normalization layers and the classifier stay dense, as in the paper). A list:
        exactly these parameter names of the module. A callable ``f(name, parameter) ->
        bool``: every parameter it accepts.
    ticket_batchnorm : bool, default=True
        Whether every ticket keeps its own batch-norm running statistics, so that a
        ticket is normalized at predict time by the statistics of its own training
        batches. ``False`` keeps one shared set, as the paper does; the affine batch-norm
        weights are dense and shared either way. Only networks with batch norm are
        affected (not the default MLP). Per-ticket statistics measured far better on
        Fashion-MNIST (``docs/images.md``): shared statistics mix the activations of
        differently masked tickets.

    shared_layers : None, int or list of str, default=None
        Prunable layers whose mask all tickets share, found by magnitude on the joint data
        (the mean magnitude of the tickets' weights, each trained on its own samples):
        ``n > 0`` the first ``n`` prunable layers, ``n < 0`` the last ``-n``, or their
        names. Share the layers where the tickets' data do not differ: e.g. the later
        layers for environments that permute the input, the first ones for environments
        that map the same inputs to other outputs. ``None`` shares none (the paper).

    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the loss (multiplying ``sample_weight``), as in
        scikit-learn: ``"balanced"`` weighs every class by ``n_samples / (n_classes *
        count)``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_iter_ : dict of str to int
        Epochs every stage ran (``"prune_round_<r>"``, ``"retrain"``, ...).
    loss_curve_ : list of float
        Training loss of every epoch of the final retraining.
    validation_scores_ : list of float or None
        Held-out score of every epoch of the final retraining (with
        ``early_stopping=True``), else None. The same three per pruning round are in
        ``collapse_curve_`` (``n_iter``, ``loss_curve``, ``validation_scores``).
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Only when ``X`` has string column names.
    n_tickets_ : int
        Number of tickets ``K`` (under KMeans routing, ``n_clusters`` less any cluster too
        small for a ticket of its own; 1 where ``n_clusters="auto"`` kept one shared
        ticket).
    ticket_choice_ : dict or None
        The evidence of ``n_clusters="auto"`` (None for an integer ``n_clusters``, another
        routing, or where the floor left one cluster): ``"candidates"`` (tickets of each
        candidate: ``{"clusters": K, "shared": 1}``), per cluster its KMeans label
        (``"clusters"``), held-out rows (``"n_held_out"``) and mean held-out loss under
        its own ticket (``"own_loss"``) and under the shared ticket (``"shared_loss"``);
        the pooled loss of each candidate (``"loss"``), the clusters' ``"gain"``
        (shared minus clusters) and its standard error (``"gain_se"``), the gain halfway
        through the round (``"halfway_gain"``) and the standard error of its change since
        (``"change_se"``; both None for a one-epoch round), and the candidate kept
        (``"kept"``: ``"clusters"`` or ``"shared"``). The loss is the cross-entropy
        (classifier) or the squared error of standardized targets (regressor).
    router_ : object
        The fitted router.
    masks_ : list of dict of str to ndarray of bool
        Per ticket, the mask of every prunable layer.
    ticket_sparsity_ : ndarray of shape (`n_tickets_`,)
        Fraction of the prunable weights every ticket removed.
    sparsity_ : float
        Fraction of the prunable weights no ticket keeps (from the union of masks).
    n_params_ : int
        Weights the fitted model needs: the union of the masks plus the dense (unpruned)
        parameters; with ``share_weights=False`` the sum over tickets.
    n_params_dense_ : int
        Parameters of one dense network.
    similarity_ : ndarray of shape (`n_tickets_`, `n_tickets_`)
        Jaccard similarity of the tickets' masks over all prunable weights.
    layer_similarity_ : dict of str to ndarray of shape (`n_tickets_`, `n_tickets_`)
        The same per layer.
    layer_sparsity_ : dict of str to ndarray of shape (`n_tickets_`,)
        Per prunable layer, the fraction of its weights every ticket removed.
    input_shape_ : tuple of int
        Shape of one sample as the network takes it: ``(n_features,)`` for the MLP,
        ``(C, H, W)`` for the default CNN.
    collapse_score_ : float
        Mean pairwise similarity in ``[0, 1]`` (``1.0`` for a single ticket).
    collapse_curve_ : list of dict
        One record per pruning round: ``round``, ``sparsity``, ``ticket_sparsity``,
        ``similarity`` (mean pairwise), ``ticket_similarity``, ``layer_similarity`` and
        ``random_similarity`` (what random masks of that density would score); with
        held-out scoring also ``val_score`` (balanced accuracy) and ``ticket_val_score``
        (per ticket: its detector's one-vs-rest balanced accuracy under label routing,
        else the accuracy on the held-out rows routed to it).
    collapse_detected_ : bool
        Whether the default rule (``rule="plateau"``) of
        :func:`~sklearn_rtl.detect_collapse` fired on ``collapse_curve_``: in some
        prunable layer the mean pairwise Jaccard similarity of the masks stopped falling
        from one round to the next (its elasticity to the density dropped below 0.13). It
        is a lagging signal: it tells that pruning went past collapse, not that it is
        about to. The paper's rise rule (``rule="rise"``) does not set it.
    collapse_sparsity_ : float or None
        Sparsity of the first round flagged by that rule, ``None`` if none was.
    validation_score_dense_ : float
        Held-out balanced accuracy of the dense tickets (only with held-out scoring).
    auto_round_ : int
        With ``sparsity="auto"``: the round whose masks were kept (``0`` = dense).
    net_ : TicketNet
        The fitted skorch net; ``net_.history`` holds every epoch with its ``stage``.

    See Also
    --------
    sklearn_rtl.similarity_matrix, sklearn_rtl.collapse_score

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_rtl import RTLClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = RTLClassifier(hidden_layer_sizes=(32,), n_clusters=2, n_prune_rounds=1,
    ...                     max_epochs=2, random_state=0).fit(X, y)
    >>> clf.n_tickets_, clf.ticket_sparsity_.round(2).tolist()
    (2, [0.8, 0.8])
    """

    _parameter_constraints: dict = {
        **BaseRTL._parameter_constraints,
        "routing": [StrOptions({"kmeans", "label", "groups"}), ROUTER_CONSTRAINT],
        "class_weight": [None, StrOptions({"balanced"}), dict],
    }
    _score_metric = staticmethod(accuracy_score)
    score = BaseRTL.score

    def __init__(self, *, class_weight=None, **params):
        super().__init__(**params)
        self.class_weight = class_weight

    # scikit-learn reads the parameters from the signature: BaseRTL's and class_weight
    __init__.__signature__ = with_parameter(BaseRTL.__init__, "class_weight", None)

    def _class_weights(self, y):
        if self.class_weight is None:
            return None
        if isinstance(self.class_weight, dict):
            for label, weight in self.class_weight.items():
                _check_class_weight(label, weight)
        try:
            return compute_sample_weight(self.class_weight, y)
        except ValueError as error:
            raise ValueError(f"class_weight={self.class_weight!r}: {error}") from None

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        return tags

    def _make_task(self):
        if isinstance(self.routing, str) and self.routing == "label":
            return OneVsRestTask()
        return MulticlassTask()

    def _encode_targets(self, y):
        classes, y_encoded = distinct_values(y, "y")  # no None/NaN, no mixed str and int
        check_classification_targets(y)
        if len(classes) < 2:
            raise ValueError(
                f"RTLClassifier needs samples of at least 2 classes; got 1 class ({classes[0]!r})."
            )
        return y_encoded.astype(np.int64), {"classes_": classes}

    def _held_out_score(self, model, targets, X_val, y_val, groups_val):
        """Balanced accuracy of the routed prediction, and per ticket: under label
        routing the one-vs-rest balanced accuracy of detector ``k`` (logit > 0), else the
        accuracy on the held-out rows routed to ticket ``k`` (NaN if none)."""
        classes = targets["classes_"]
        scores = model.decision(X_val, groups_val)
        y_pred = classes[np.argmax(scores, axis=1)]
        ticket_scores = np.full(model.network.n_tickets, np.nan)
        if isinstance(model.task, OneVsRestTask):
            # scores are the detectors' log-sigmoids: detector k fires (logit > 0) where
            # its score exceeds log(1/2); no second pass through the tickets
            fires = scores > -np.log(2.0)
            y_index = np.searchsorted(classes, y_val)
            for k in range(len(ticket_scores)):
                truth = y_index == k
                if truth.any() and (~truth).any():
                    ticket_scores[k] = balanced_accuracy_score(truth, fires[:, k])
        else:
            routed = model.route(X_val, groups_val)
            for k in range(len(ticket_scores)):
                here = routed == k
                if here.any():
                    ticket_scores[k] = float(np.mean(y_pred[here] == y_val[here]))
        return float(balanced_accuracy_score(y_val, y_pred)), ticket_scores

    @predict_doc
    def decision_function(self, X, groups=None):
        """Confidence scores; ``predict`` takes their argmax (or, binary, their sign).

        %(X_groups)s

        Returns
        -------
        scores : ndarray of shape (n_samples, n_classes), or (n_samples,) for two classes
            Per-class logits of every sample's ticket; ``predict_proba`` is their softmax.
            Under ``routing="label"`` column ``k`` is detector ``k``'s log-probability
            (log-sigmoid of its logit), so that here too ``predict_proba`` is their
            softmax. With two classes, as in scikit-learn, the score of ``classes_[1]``
            minus that of ``classes_[0]``: positive means ``classes_[1]``, and it ranks
            samples exactly as ``predict_proba[:, 1]`` does.
        """
        X = self._validate_predict_input(X)
        scores = self._model().decision(X, groups)
        if len(self.classes_) == 2:
            return scores[:, 1] - scores[:, 0]
        return scores

    @predict_doc
    def predict_proba(self, X, groups=None):
        """Class probabilities.

        %(X_groups)s

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Rows sum to one. Under ``routing="label"`` the detectors' sigmoid scores,
            normalized.
        """
        X = self._validate_predict_input(X)
        proba = self._model().decision(X, groups)  # a new array: the softmax in place
        proba -= proba.max(axis=1, keepdims=True)
        np.exp(proba, out=proba)
        proba /= proba.sum(axis=1, keepdims=True)
        return proba

    @predict_doc
    def predict(self, X, groups=None):
        """Class of every sample.

        %(X_groups)s

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        X = self._validate_predict_input(X)
        return self.classes_[np.argmax(self._model().decision(X, groups), axis=1)]
