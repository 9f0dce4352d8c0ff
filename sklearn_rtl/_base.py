"""BaseRTL: the fit of Routing the Lottery as a short script, shared by both estimators.

``fit`` validates, fits the router, builds the ticket network and its trainer, takes the
rewind point, runs ticket extraction (Alg. 1, :func:`~sklearn_rtl._stages.extract_tickets`),
lets the sparsity strategy choose the round, retrains jointly (Alg. 2,
:func:`~sklearn_rtl._stages.retrain_jointly`) and stores every fitted attribute at the end.
Subclasses say only what depends on the task: how targets are encoded, the task object,
held-out scoring and how scores become predictions.
"""

from __future__ import annotations

import copy
from functools import partial
from typing import NamedTuple

import numpy as np
import torch
from sklearn.base import BaseEstimator, is_classifier
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch.callbacks import Callback

from ._collapse import detect_collapse
from ._compact import compact_fitted_net, compact_router
from ._diagnostics import collapse_score
from ._inference import RoutedModel
from ._models import build_template, network_input_shape
from ._network import make_ticket_network
from ._params import BASE_CONSTRAINTS, check_data_dependent
from ._progress import FitProgressBar
from ._prunable import find_prunable, resolve_prunable, resolve_shared_layers
from ._routing import distinct_values, make_router
from ._selection import make_selection
from ._stages import extract_tickets, retrain_jointly, rewind_point
from ._training import TicketNet
from ._version import __version__

_AUTO_VALIDATION_FRACTION = 0.1


_X_GROUPS_DOC = """Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        groups : array-like of shape (n_samples,), default=None
            Every sample's context, required by ``routing="groups"`` (ignored otherwise)."""


def predict_doc(method):
    """Fill the shared ``X`` / ``groups`` parameters into a predict method's docstring."""
    method.__doc__ = method.__doc__.replace("%(X_groups)s", _X_GROUPS_DOC)
    return method


class _FitInputs(NamedTuple):
    """What ``fit`` works on once the data is validated: flat rows, encoded targets, the
    held-out rows (or None), the task and sparsity strategy, shapes and seeds."""

    X: np.ndarray
    y: np.ndarray
    y_train: np.ndarray
    groups: np.ndarray | None
    held_out: tuple | None
    targets: dict
    task: object
    selection: object
    sample_shape: tuple
    input_shape: tuple
    hidden: tuple | None
    torch_seed: int
    router_seed: int
    loader_seed: int


def _keep_every_class(codes, fit_index, val_index, fraction):
    """Give every class (or group) ``codes`` holds that the split left without a training
    row one of its held-out rows back, so that it keeps its ticket and output column.

    Raises a ``ValueError`` when that leaves no held-out row at all.
    """
    missing = np.setdiff1d(np.unique(codes), codes[fit_index])
    if len(missing) == 0:
        return fit_index, val_index
    back = np.array([val_index[np.argmax(codes[val_index] == c)] for c in missing])
    val_index = np.setdiff1d(val_index, back)
    if len(val_index) == 0:
        raise ValueError(
            f"The held-out split (validation_fraction={fraction}) leaves no held-out row once "
            f"every one of the {len(np.unique(codes))} classes (or groups) keeps a training "
            f"row ({len(codes)} samples): give more samples, or validation_fraction=None with "
            f"a numeric sparsity."
        )
    return np.sort(np.concatenate([fit_index, back])), val_index


def _split_validation(X, y, y_train, groups, fraction, seed, stratify, keep_groups=False):
    """Hold out ``fraction`` of the rows (stratified by class when possible).

    With ``stratify`` (a classifier) every class keeps at least one training row: a class
    too small for the stratified split (which then falls back to a plain one) never
    loses its ticket or its output column. With ``keep_groups`` (``routing="groups"``)
    every group keeps one too, so that it has its ticket.
    """
    index = np.arange(len(X))
    try:
        fit_index, val_index = train_test_split(
            index, test_size=fraction, random_state=seed, stratify=y if stratify else None
        )
    except ValueError:  # a class too small to stratify
        fit_index, val_index = train_test_split(index, test_size=fraction, random_state=seed)
    fit_index, val_index = np.sort(fit_index), np.sort(val_index)
    if stratify:
        fit_index, val_index = _keep_every_class(y_train, fit_index, val_index, fraction)
    if keep_groups and groups is not None:
        codes = distinct_values(groups, "groups")[1]
        fit_index, val_index = _keep_every_class(codes, fit_index, val_index, fraction)

    def take(a, i):
        return None if a is None else np.asarray(a)[i]

    held_out = (X[val_index], y[val_index], take(groups, val_index))
    return X[fit_index], y[fit_index], y_train[fit_index], take(groups, fit_index), held_out


def _fitted_diagnostics(network, rounds, scores):
    """Every fitted fact about the masks, from the final ticket set and each round's."""
    curve = [tickets.round_record(r) for r, tickets in enumerate(rounds) if r > 0]
    for r, (score, ticket_scores) in enumerate(scores):
        if 0 < r <= len(curve):
            curve[r - 1]["val_score"], curve[r - 1]["ticket_val_score"] = score, ticket_scores
    tickets = network.tickets
    n_dense_part = sum(
        w[0].numel() for n, w in network.get_weights().items() if n not in network.prunable
    )
    shared = network.n_copies == 1
    detected = detect_collapse(curve)
    similarity = tickets.similarity()
    out = {
        "collapse_curve_": curve,
        "collapse_detected_": detected is not None,
        "collapse_sparsity_": None if detected is None else float(curve[detected]["sparsity"]),
        "n_params_dense_": int(tickets.n_prunable + n_dense_part),
        "ticket_sparsity_": tickets.ticket_sparsity(),
        "sparsity_": 1.0 - tickets.n_union / tickets.n_prunable,
        "n_params_": int(tickets.n_union + n_dense_part)
        if shared
        else int(tickets.kept().sum() + network.n_tickets * n_dense_part),
        "similarity_": similarity,
        "layer_similarity_": tickets.layer_similarity(),
        "layer_sparsity_": tickets.layer_sparsity(),
    }
    out["collapse_score_"] = collapse_score(similarity)
    if scores:
        out["validation_score_dense_"] = scores[0][0]
    return out


class BaseRTL(BaseEstimator):
    """Routing the Lottery, shared by the classifier and the regressor.

    See :class:`sklearn_rtl.RTLClassifier` for the parameters.
    """

    _parameter_constraints: dict = BASE_CONSTRAINTS
    _multi_output = False
    _y_numeric = False

    def __init__(
        self,
        hidden_layer_sizes=(256, 256),
        module=None,
        routing="kmeans",
        n_clusters=4,
        sparsity=0.8,
        n_prune_rounds=4,
        sparsity_ceiling=0.99,
        validation_fraction=None,
        max_epochs=10,
        share_weights=True,
        lr=1e-3,
        batch_size=128,
        optimizer=torch.optim.Adam,
        device="cpu",
        random_state=None,
        verbose=0,
        prune_scope="layer",
        prune_output_layer=False,
        rewind_epoch=0,
        module_params=None,
        optimizer_params=None,
        callbacks=None,
        unknown_group="error",
        input_shape=None,
        prunable=None,
        ticket_batchnorm=True,
        shared_layers=None,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.module = module
        self.routing = routing
        self.n_clusters = n_clusters
        self.sparsity = sparsity
        self.n_prune_rounds = n_prune_rounds
        self.sparsity_ceiling = sparsity_ceiling
        self.validation_fraction = validation_fraction
        self.max_epochs = max_epochs
        self.share_weights = share_weights
        self.lr = lr
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.prune_scope = prune_scope
        self.prune_output_layer = prune_output_layer
        self.rewind_epoch = rewind_epoch
        self.module_params = module_params
        self.optimizer_params = optimizer_params
        self.callbacks = callbacks
        self.unknown_group = unknown_group
        self.input_shape = input_shape
        self.prunable = prunable
        self.ticket_batchnorm = ticket_batchnorm
        self.shared_layers = shared_layers

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True  # image X (n, H, W) or (n, C, H, W): the CNN
        return tags

    # ------------------------------------------------------------ task hooks
    def _make_task(self):
        """The task object (``_tasks.py``) of this estimator's settings."""
        raise NotImplementedError

    def _encode_targets(self, y):
        """Validate ``y``; return what the network trains on and the target attributes."""
        raise NotImplementedError

    def _held_out_score(self, model, targets, X_val, y_val, groups_val):
        """``(score, per-ticket scores)`` of ``model`` on held-out rows."""
        raise NotImplementedError

    # -------------------------------------------------------------------- fit
    def fit(self, X, y, groups=None):
        """Extract the tickets and retrain them jointly.

        Atomic: if fitting raises (or is interrupted), the estimator is left exactly as it
        was (unfitted, or fitted by the previous call), never half fitted.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (or images, see ``module``); not modified.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels (any hashable values) for the classifier, targets for the
            regressor.
        groups : array-like of shape (n_samples,), default=None
            Every sample's context, required by ``routing="groups"`` (ignored otherwise).

        Returns
        -------
        self : object
            The fitted estimator.
        """
        state = dict(vars(self))
        try:
            self._validate_params()
            fitted = self._fit(X, y, groups)
        except BaseException:
            vars(self).clear()
            vars(self).update(state)
            raise
        vars(self).update(fitted)
        return self

    def _fit(self, X, y, groups):
        """The fit as a script; returns every fitted attribute."""
        d = self._prepare(X, y, groups)
        router = make_router(self.routing, self.n_clusters, d.router_seed, self.unknown_group)
        ticket_ids = router.fit(d.X, d.task.router_targets(d.y, d.y_train), groups=d.groups)
        data = {"X": d.X.reshape(len(d.X), *d.input_shape), "ticket": ticket_ids.astype(np.int64)}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(d.torch_seed)
            trainer = self._make_trainer(d, data["X"], router.n_tickets_)
            model = RoutedModel(router, trainer.module_, d.input_shape, trainer.device, d.task)
            router.bind(model)
            score = None
            if d.held_out is not None:
                score = partial(self._held_out_score, model, d.targets, *d.held_out)
            start = rewind_point(trainer, data, d.y_train, self.rewind_epoch)
            rounds, scores = extract_tickets(
                trainer,
                data,
                d.y_train,
                start=start,
                tickets=trainer.module_.tickets,
                schedule=d.selection.schedule(),
                epochs=self.max_epochs,
                scope=self.prune_scope,
                score=score,
                stop=d.selection.should_stop,
                shared=resolve_shared_layers(self.shared_layers, trainer.module_.prunable),
            )
            chosen = d.selection.choose([s for s, _ in scores], len(rounds) - 1)
            retrain_jointly(
                trainer,
                data,
                d.y_train,
                tickets=rounds[chosen],
                start=start,
                epochs=self.max_epochs,
                shared=bool(self.share_weights),
            )
        diagnostics = self._finished(trainer, rounds, scores)
        compact_fitted_net(trainer)  # keep only what prediction needs (no optimizer state)
        compact_router(router)
        return {
            **d.targets,
            **diagnostics,
            **({"auto_round_": chosen} if isinstance(self.sparsity, str) else {}),
            "router_": router,
            "n_tickets_": router.n_tickets_,
            "net_": trainer,
            "input_shape_": d.input_shape,
            "_X_sample_shape": d.sample_shape,
            "_task": d.task,
        }

    def _prepare(self, X, y, groups) -> _FitInputs:
        """Validate the data, encode the targets, draw the seeds and hold out rows."""
        X, y = validate_data(
            self,
            X,
            y,
            dtype=np.float32,
            ensure_all_finite=True,
            multi_output=self._multi_output,
            y_numeric=self._y_numeric,
            allow_nd=True,
        )
        hidden = check_data_dependent(self, len(X))
        sample_shape = tuple(X.shape[1:])
        input_shape = network_input_shape(sample_shape, self.module, self.input_shape)
        X = X.reshape(len(X), -1)  # routers see flat rows; the network, input_shape
        groups = self._fit_groups(groups, len(X))
        y_train, targets = self._encode_targets(y)
        selection = make_selection(self.sparsity, self.sparsity_ceiling, self.n_prune_rounds)
        random_state = check_random_state(self.random_state)
        seeds = [int(s) for s in random_state.randint(0, 2**31 - 1, size=3)]
        held_out = None
        if selection.needs_held_out or self.validation_fraction is not None:
            X, y, y_train, groups, held_out = _split_validation(
                X,
                y,
                y_train,
                groups,
                self.validation_fraction or _AUTO_VALIDATION_FRACTION,
                int(random_state.randint(0, 2**31 - 1)),
                stratify=is_classifier(self),
                keep_groups=isinstance(self.routing, str) and self.routing == "groups",
            )
        return _FitInputs(
            X, y, y_train, groups, held_out, targets, self._make_task(), selection,
            sample_shape, input_shape, hidden, *seeds,
        )  # fmt: skip

    def _fit_groups(self, groups, n_samples):
        """``groups`` as an array with one value per sample, or None.

        Malformed groups (not 1-D, or of another length than ``X``) raise a ``ValueError``
        under ``routing="groups"``; the other routings ignore ``groups``, malformed or not.
        """
        if groups is None:
            return None
        array = np.asarray(groups)
        if array.ndim == 1 and len(array) == n_samples:
            return array
        if isinstance(self.routing, str) and self.routing == "groups":
            raise ValueError(
                f"groups must be a 1-D array with one value per sample: got shape "
                f"{array.shape} for {n_samples} samples."
            )
        return None

    @staticmethod
    def _finished(trainer, rounds, scores):
        network = trainer.module_
        network.eval()
        if not all(bool(torch.isfinite(w).all()) for w in network.get_weights().values()):
            raise ValueError(
                "Training produced non-finite weights (NaN or inf): X probably holds very "
                "large values. Scale it first (e.g. StandardScaler) or lower lr."
            )
        return _fitted_diagnostics(network, rounds, scores)

    # ------------------------------------------------------------------ model
    def _make_trainer(self, d: _FitInputs, X_net, n_tickets):
        """The ticket network for this fit (seeded by the caller) and its skorch trainer."""
        n_outputs = d.task.n_outputs(d.y_train)
        template = self._build_template(d, n_outputs)
        prunable = resolve_prunable(template, self.prunable, self.prune_output_layer)
        if not prunable:
            raise self._nothing_to_prune(template)
        self._check_optimizer_params()
        network = make_ticket_network(template, n_tickets, prunable, self.ticket_batchnorm)
        self._check_output_shape(network, X_net, n_outputs)
        callbacks = []
        if self.verbose >= 2:
            total = self.rewind_epoch + (self.n_prune_rounds + 1) * self.max_epochs
            callbacks.append(("progress", FitProgressBar(total_epochs=total)))
        callbacks += [(f"user_{i}", cb) for i, cb in enumerate(self._user_callbacks())]
        optimizer_params = {f"optimizer__{k}": v for k, v in (self.optimizer_params or {}).items()}
        return TicketNet(
            module=network,
            criterion=torch.nn.Identity,  # the loss lives in TicketNet.get_loss
            optimizer=self.optimizer,
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            train_split=None,
            callbacks=callbacks,
            device=self.device,
            verbose=self.verbose,
            task=d.task,
            loader_rng=np.random.default_rng(d.loader_seed),
            **optimizer_params,
        ).initialize()

    def _build_template(self, d: _FitInputs, n_outputs):
        """The untrained network; a ``TypeError`` from ``module_params`` names them."""
        try:
            return build_template(
                self.module, self.module_params, d.input_shape, d.hidden, n_outputs
            )
        except TypeError as error:
            if not self.module_params:
                raise
            raise TypeError(
                f"module_params={self.module_params!r} were rejected by the module: {error}"
            ) from error

    def _nothing_to_prune(self, template):
        """The ``ValueError`` for a network with no prunable weight, saying why."""
        n_layers = len(find_prunable(template, prune_output_layer=True))
        if self.prunable is None and n_layers == 1 and not self.prune_output_layer:
            return ValueError(
                f"prune_output_layer=False keeps the network's only Linear/Conv layer (its "
                f"output layer) dense, so there is no weight to prune (hidden_layer_sizes="
                f"{self.hidden_layer_sizes!r}, module={self.module!r}). Add a hidden layer, "
                f"or set prune_output_layer=True to prune the output layer itself."
            )
        return ValueError("The module has no Linear or Conv weights to prune.")

    def _user_callbacks(self):
        """Deep copies of ``callbacks``; a ``TypeError`` naming it for a non-callback."""
        for cb in self.callbacks or []:
            is_class = isinstance(cb, type) and issubclass(cb, Callback)
            if not (isinstance(cb, Callback) or is_class):
                raise TypeError(
                    f"callbacks must hold skorch callbacks (skorch.callbacks.Callback "
                    f"instances), got {cb!r} in callbacks={self.callbacks!r}."
                )
        return copy.deepcopy(list(self.callbacks or []))

    def _check_optimizer_params(self):
        """Build the optimizer once on a dummy weight, so that a bad ``optimizer_params``
        (or ``lr``) raises an error that names it, not torch's."""
        dummy = [torch.nn.Parameter(torch.zeros(2, 2))]
        params = self.optimizer_params or {}
        kwargs = {k: v for k, v in params.items() if k != "param_groups"}  # skorch's own
        try:
            self.optimizer(dummy, **{"lr": self.lr, **kwargs})
        except (TypeError, ValueError, KeyError, IndexError) as error:
            kind = TypeError if isinstance(error, TypeError) else ValueError
            raise kind(
                f"optimizer_params={params!r} were rejected by optimizer="
                f"{self.optimizer.__name__}: {type(error).__name__}: {error}"
            ) from error

    @staticmethod
    def _check_output_shape(network, X, n_expected):
        was_training = network.training
        network.eval()  # no batch-norm statistics from this probe
        with torch.no_grad():
            try:
                out = network.forward_ticket(torch.tensor(X[:2]), 0)
            except RuntimeError as error:
                raise ValueError(f"The network cannot take X of shape {X.shape}: {error}") from None
            finally:
                network.train(was_training)
        if out.ndim != 2 or out.shape[1] != n_expected:
            raise ValueError(
                f"The module must return outputs of shape (n_samples, {n_expected}), "
                f"got {tuple(out.shape)}."
            )

    # ------------------------------------------------------------- inference
    # ------------------------------------------------------------- deployment
    def ticket_module(self, k, layout="dense"):
        """Ticket ``k`` as a plain ``torch.nn.Module`` (its mask baked in as zeros).

        Parameters
        ----------
        k : int
            Ticket index in ``0 .. n_tickets_ - 1``.
        layout : {"dense", "csr"}, default="dense"
            ``"csr"`` stores pruned Linear weights as torch sparse CSR tensors where that
            is smaller.

        Returns
        -------
        module : torch.nn.Module
            In eval mode: an ``nn.Sequential`` for the default MLP and CNN, a copy of the
            user's module otherwise. Its outputs equal ticket ``k``'s outputs in the model.
        """
        from ._export import ticket_module

        return ticket_module(self, k, layout)

    def to_torch(self):
        """The whole routed model as one ``torch.nn.Module``, routing included.

        It takes a float tensor of shape ``(n, n_features)`` (or image-shaped), plus an
        int64 group tensor under ``routing="groups"``, and returns class probabilities
        (classifier) or predictions (regressor). It passes ``torch.export.export`` and
        ``torch.onnx.export`` with a dynamic batch dimension. Routers it cannot express
        (an arbitrary estimator) raise a ``ValueError``.

        Returns
        -------
        module : torch.nn.Module
        """
        from ._export import to_torch

        return to_torch(self)

    def __getstate__(self):
        state = super().__getstate__()
        state["_sklearn_rtl_version"] = __version__
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "net_" in state and "_task" not in state:  # pickled by 0.1.0: no task object
            try:
                self._task = self._make_task()
            except Exception as error:  # pragma: no cover - defensive
                version = state.get("_sklearn_rtl_version", "0.1.0")
                raise ValueError(
                    f"This model was pickled by sklearn-rtl {version} and cannot be read by "
                    f"{__version__}: refit it, or load it with sklearn-rtl {version}."
                ) from error

    @property
    def masks_(self):
        """Ticket masks: list of length ``n_tickets_`` of ``{layer: bool ndarray}``."""
        check_is_fitted(self, "net_")
        tickets = self.net_.module_.tickets
        return [tickets.ticket(k) for k in range(self.n_tickets_)]

    def _model(self) -> RoutedModel:
        """The fitted router and network as one :class:`~sklearn_rtl._inference.RoutedModel`."""
        return RoutedModel(
            self.router_, self.net_.module_, self.input_shape_, self.net_.device, self._task
        )

    @predict_doc
    def route(self, X, groups=None):
        """Ticket of every sample.

        For a classifier under ``routing="label"``, a sample's ticket is the class
        whose detector scores highest (``predict``, as an index into ``classes_``).

        %(X_groups)s

        Returns
        -------
        tickets : ndarray of shape (n_samples,), dtype int
            Values in ``0 .. n_tickets_ - 1``.
        """
        X = self._validate_predict_input(X)
        return self._route(X, groups)

    def _route(self, X, groups=None):
        return self._model().route(X, groups)

    def _validate_predict_input(self, X):
        check_is_fitted(self)
        if len(self._X_sample_shape) > 1:  # image input: name the shapes before sklearn does
            self._check_sample_shape(np.shape(X)[1:])
        X = validate_data(
            self,
            X,
            dtype=np.float32,
            ensure_all_finite=True,
            reset=False,
            allow_nd=len(self._X_sample_shape) > 1,
        )
        self._check_sample_shape(X.shape[1:])
        return X.reshape(len(X), -1)  # flat rows; the network reshapes them to input_shape_

    def _to_network(self, X):
        """Flat rows reshaped to what the network takes: ``(n_samples, *input_shape_)``."""
        return X.reshape(len(X), *self.input_shape_)

    def _check_sample_shape(self, shape):
        if tuple(shape) != self._X_sample_shape:
            raise ValueError(
                f"X has samples of shape {tuple(shape)}, but {type(self).__name__} was "
                f"fitted on samples of shape {self._X_sample_shape}."
            )

    def score(self, X, y, sample_weight=None, groups=None):
        """The estimator's default score (``_score_metric``) of ``predict(X, groups)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None
        groups : array-like of shape (n_samples,), default=None
            Every sample's context, required by ``routing="groups"``.

        Returns
        -------
        score : float
            Accuracy for the classifier, R^2 for the regressor.
        """
        return self._score_metric(y, self.predict(X, groups), sample_weight=sample_weight)
