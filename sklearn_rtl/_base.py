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
import inspect
from functools import partial

import numpy as np
import scipy.sparse as sp
import torch
from sklearn import get_config
from sklearn.base import BaseEstimator, is_classifier
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch.callbacks import Callback
from skorch.dataset import Dataset
from skorch.helper import predefined_split

from ._batches import dense_rows, read_only_tensor
from ._choice import AUTO_CLUSTERS, CHOICE_FRACTION, HalfwayLosses, TicketChoice, held_out_losses
from ._collapse import detect_collapse
from ._compact import compact_fitted_net
from ._diagnostics import collapse_score
from ._fitdata import FitInputs, FitPlan, Rows, drop_zero_weight, sample_weights, split_held_out
from ._inference import RoutedModel
from ._models import build_template, network_input_shape
from ._network import make_ticket_network
from ._params import BASE_CONSTRAINTS, check_data_dependent
from ._progress import FitProgressBar
from ._prunable import find_prunable, resolve_prunable, resolve_shared_layers
from ._routing import make_router
from ._selection import make_selection
from ._stages import Stage, extract_tickets, retrain_jointly, rewind_point
from ._stopping import HeldOutScore, StageStopping
from ._training import TicketNet
from ._units import unit_chain
from ._version import __version__

_AUTO_VALIDATION_FRACTION = 0.1
# what validate_data(dtype=np.float32) keeps or casts, and no more (native byte order)
_PLAIN_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


_X_GROUPS_DOC = """Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        groups : array-like of shape (n_samples,), default=None
            Every sample's context, required by ``routing="groups"`` (ignored otherwise)."""


def _finite_sum(rows: np.ndarray) -> bool:
    """Whether the sum of ``rows`` is finite; then every value is (a NaN or an infinity in
    a sum leaves it NaN or infinite), as ``validate_data``'s own first check reasons. From
    64k values torch's vectorized sum (0.17 ms on 4,096 x 784 against numpy's 0.54); below,
    numpy's, which a tensor's overhead would double."""
    if rows.size >= 65536:
        return bool(read_only_tensor(rows).sum().isfinite())
    return bool(np.isfinite(rows.sum()))


def with_parameter(function, name, default):
    """``function``'s signature with one more keyword-only parameter ``name=default``."""
    signature = inspect.signature(function)
    extra = inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
    return signature.replace(parameters=[*signature.parameters.values(), extra])


def predict_doc(method):
    """Fill the shared ``X`` / ``groups`` parameters into a predict method's docstring."""
    method.__doc__ = method.__doc__.replace("%(X_groups)s", _X_GROUPS_DOC)
    return method


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


def _stage_record(epochs):
    """Epochs, training-loss curve and held-out scores (or None) of one stage."""
    scores = [row.get("valid_score") for row in epochs]
    return {
        "n_iter": len(epochs),
        "loss_curve": [float(row["train_loss"]) for row in epochs],
        "validation_scores": None if None in scores else [float(v) for v in scores],
    }


def _training_diagnostics(trainer, curve):
    """``n_iter_``, ``loss_curve_`` and ``validation_scores_`` (of the final retraining, as
    MLPClassifier names them), the same per pruning round in ``curve``, read from the
    fit's history (every epoch of every stage, with its ``stage``)."""
    stages = {}
    for row in trainer.history:
        stages.setdefault(row["stage"], []).append(row)
    for r, record in enumerate(curve, start=1):
        if f"prune_round_{r}" in stages:
            record.update(_stage_record(stages[f"prune_round_{r}"]))
    retrain = _stage_record(stages["retrain"])
    return {
        "n_iter_": {name: len(epochs) for name, epochs in stages.items()},
        "loss_curve_": retrain["loss_curve"],
        "validation_scores_": retrain["validation_scores"],
    }


class BaseRTL(BaseEstimator):
    """Routing the Lottery, shared by the classifier and the regressor.

    See :class:`sklearn_rtl.RTLClassifier` for the parameters.
    """

    _parameter_constraints: dict = BASE_CONSTRAINTS
    _multi_output = False
    _y_numeric = False

    def __init__(
        self,
        hidden_layer_sizes=(128, 128),
        module=None,
        routing="kmeans",
        n_clusters="auto",
        sparsity=0.8,
        n_prune_rounds=2,
        sparsity_ceiling=0.99,
        validation_fraction=None,
        max_epochs=200,
        max_prune_epochs=10,
        share_weights=True,
        lr=1e-3,
        batch_size="auto",
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
        tol=1e-4,
        n_iter_no_change=10,
        early_stopping=False,
        min_cluster_size=200,
        prune_granularity="weight",
    ):
        # every parameter stored untouched under its own name, as scikit-learn requires
        params = dict(locals())
        del params["self"]
        vars(self).update(params)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True  # image X (n, H, W) or (n, C, H, W): the CNN
        tags.input_tags.sparse = True  # CSR/CSC, densified one batch at a time
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
    def fit(self, X, y, *, groups=None, sample_weight=None):
        """Extract the tickets and retrain them jointly.

        Atomic: if fitting raises (or is interrupted), the estimator is left exactly as it
        was (unfitted, or fitted by the previous call), never half fitted.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data (or images, see ``module``); not modified. Sparse CSR/CSC input
            is densified one batch at a time, never whole.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels (any hashable values) for the classifier, targets for the
            regressor.
        groups : array-like of shape (n_samples,), default=None
            Every sample's context, required by ``routing="groups"`` (ignored otherwise).
            Keyword-only, as is ``sample_weight``.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights every sample's loss (each ticket's loss is its weighted mean) and the
            KMeans router. Rows of weight zero are dropped: the same as not passing them.
            Only relative weights matter: they are divided by the power of two that puts
            the largest in ``[1, 2)``, so no positive weight underflows in float32.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        state = dict(vars(self))
        try:
            self._validate_params()
            fitted = self._fit(X, y, groups, sample_weight)
        except BaseException:
            vars(self).clear()
            vars(self).update(state)
            raise
        vars(self).update(fitted)
        return self

    def _fit_router(self, d):
        """The fitted router and every training row's ticket (the partition of Alg. 1);
        with ``verbose``, a line when KMeans gave some cluster no ticket."""
        train = d.train
        n_clusters = self.n_clusters
        if n_clusters == "auto":
            n_clusters = min(AUTO_CLUSTERS, train.X.shape[0])
        router = make_router(
            self.routing, n_clusters, d.plan.router_seed, self.unknown_group,
            self.min_cluster_size,
        )  # fmt: skip
        targets = d.plan.task.router_targets(train.y, train.y_train)
        ticket_ids = router.fit(train.X, targets, groups=train.groups, sample_weight=train.weight)
        if self.verbose and (note := router.merge_note()):
            print(note)
        return router, ticket_ids

    def _choose_tickets(self, d: FitInputs, router, ticket_ids):
        """``n_clusters="auto"``: the clusters' tickets against one shared ticket
        (``_choice.py``), or None where there is nothing to choose (another ``n_clusters``
        or routing, or one cluster left by the floor).

        Holds out ``CHOICE_FRACTION`` of the training rows, trains the first round of
        Alg. 1 for both candidates from the fit's ``theta0`` (its seed), and scores both on
        the held-out rows, halfway and at the end. Where the shared ticket wins, every
        cluster routes to it.
        Returns the :class:`~sklearn_rtl._choice.TicketChoice` and every row's ticket.
        """
        kmeans = isinstance(self.routing, str) and self.routing == "kmeans"
        if self.n_clusters != "auto" or not kmeans or router.n_tickets_ < 2:
            return None, ticket_ids
        train, plan, k = d.train, d.plan, router.n_tickets_
        arrays = {**vars(train), "ticket": ticket_ids}
        try:
            fit_part, held = split_held_out(
                arrays, train.y_train, None, CHOICE_FRACTION, plan.router_seed,
                stratify=is_classifier(self),
            )  # fmt: skip
        except ValueError:  # too few rows to hold any out: nothing to measure with
            return None, ticket_ids
        fit_ticket, held_ticket = fit_part.pop("ticket"), held.pop("ticket")
        fit_rows, held_rows = Rows(**fit_part), Rows(**held)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(plan.torch_seed)  # the fit's theta0
            network = self._make_network(d, k + 1)
            model = RoutedModel(router, network, plan.input_shape, self.device, plan.task)
            epochs = self._prune_epochs()

            def score():
                return held_out_losses(model, plan.task, held_rows, held_ticket, k)

            halfway = HalfwayLosses(epochs // 2, score)
            trainer = self._trainer(
                d, network, train_split=None, callbacks=[("halfway", halfway)], verbose=0
            )
            stage = Stage("choose_tickets", tied=False, epochs=epochs, shared_ticket=k)
            start = rewind_point(trainer, None, None)
            trainer.fit_stage(stage, fit_rows.trainer_data(fit_ticket), fit_rows.y_train, start)
            own, shared = score()
        choice = TicketChoice.from_losses(
            router.ticket_labels_, held_ticket, own, shared, held_rows.weight, halfway.losses
        )
        if self.verbose:
            print(choice.report())
        if choice.kept == "shared":
            router.share_one_ticket()
            ticket_ids = np.zeros_like(ticket_ids)
        return choice, ticket_ids

    def _fit(self, X, y, groups, sample_weight):
        """The fit as a script; returns every fitted attribute."""
        d = self._prepare(X, y, groups, sample_weight)
        router, ticket_ids = self._fit_router(d)
        choice, ticket_ids = self._choose_tickets(d, router, ticket_ids)
        train, plan = d.train, d.plan
        data = train.trainer_data(ticket_ids)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(plan.torch_seed)
            network = self._make_network(d, router.n_tickets_)
            model = RoutedModel(router, network, plan.input_shape, self.device, plan.task)
            score = None
            if d.held_out is not None:
                held = d.held_out
                score = partial(
                    self._held_out_score, model, plan.targets, held.X, held.y, held.groups
                )
            trainer = self._make_trainer(d, router, network, score)
            start = rewind_point(trainer, data, train.y_train, self.rewind_epoch)
            rounds, scores = extract_tickets(
                trainer,
                data,
                train.y_train,
                start=start,
                tickets=trainer.module_.tickets,
                schedule=plan.selection.schedule(),
                epochs=self._prune_epochs(),
                scope=self.prune_scope,
                score=score,
                score_last=plan.selection.needs_held_out or self.validation_fraction is not None,
                stop=plan.selection.should_stop,
                shared=resolve_shared_layers(self.shared_layers, network.prunable),
                chain=self._unit_chain(network),
            )
            chosen = plan.selection.choose([s for s, _ in scores], len(rounds) - 1)
            tickets, start = self._retraining_start(d, rounds[chosen], start)
            retrain_jointly(
                trainer,
                data,
                train.y_train,
                tickets=tickets,
                start=start,
                epochs=self.max_epochs,
                shared=bool(self.share_weights),
            )
        diagnostics = self._finished(trainer, rounds, scores)
        compact_fitted_net(trainer)  # keep only what prediction needs (no optimizer state)
        return {
            **plan.targets,
            **diagnostics,
            **({"auto_round_": chosen} if isinstance(self.sparsity, str) else {}),
            "router_": router,
            "n_tickets_": router.n_tickets_,
            "ticket_choice_": None if choice is None else choice.as_dict(),
            "net_": trainer,
            "input_shape_": plan.input_shape,
            "_X_sample_shape": plan.sample_shape,
            "_task": plan.task,
        }

    def _retraining_start(self, d: FitInputs, tickets, start):
        """The masks and weights Alg. 2 retrains from: the chosen round's ``tickets`` and
        the rewind point ``start``, as they are. ``compare_baselines``' lottery-ticket
        controls (``_baselines.py``) replace one of them."""
        return tickets, start

    def _prepare(self, X, y, groups, sample_weight) -> FitInputs:
        """Validate the data, weigh the rows, encode the targets, draw the seeds and hold
        out rows."""
        X, y = validate_data(
            self,
            X,
            y,
            dtype=np.float32,
            accept_sparse=("csr", "csc"),
            ensure_all_finite=True,
            multi_output=self._multi_output,
            y_numeric=self._y_numeric,
            allow_nd=True,
        )
        hidden = check_data_dependent(self, X.shape[0])
        sample_shape = tuple(X.shape[1:])
        input_shape = network_input_shape(sample_shape, self.module, self.input_shape)
        # routers see flat rows; the network, input_shape (one batch at a time)
        X = X.tocsr() if sp.issparse(X) else X.reshape(len(X), -1)
        groups = self._fit_groups(groups, X.shape[0])
        weight = sample_weights(X, sample_weight, self._class_weights(y))
        weight, X, y, groups = drop_zero_weight(weight, X, y, groups)
        y_train, targets = self._encode_targets(y)
        selection = make_selection(self.sparsity, self.sparsity_ceiling, self.n_prune_rounds)
        random_state = check_random_state(self.random_state)
        torch_seed, router_seed, loader_seed = (
            int(s) for s in random_state.randint(0, 2**31 - 1, size=3)
        )
        train = {"X": X, "y": y, "y_train": y_train, "groups": groups, "weight": weight}
        held_out = None
        if selection.needs_held_out or self.validation_fraction is not None or self.early_stopping:
            train, held = split_held_out(
                train,
                y_train,
                groups,
                self.validation_fraction or _AUTO_VALIDATION_FRACTION,
                int(random_state.randint(0, 2**31 - 1)),
                stratify=is_classifier(self),
                keep_groups=isinstance(self.routing, str) and self.routing == "groups",
            )
            held_out = Rows(**held)
        plan = FitPlan(
            targets=targets,
            task=self._make_task(),
            selection=selection,
            sample_shape=sample_shape,
            input_shape=input_shape,
            hidden=hidden,
            torch_seed=torch_seed,
            router_seed=router_seed,
            loader_seed=loader_seed,
        )
        return FitInputs(train=Rows(**train), held_out=held_out, plan=plan)

    def _class_weights(self, y):
        """Per-sample weights of ``class_weight`` (classifier), or None."""
        return None

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
        """Every fitted diagnostic; the weights' finiteness was checked after every stage
        (``TicketNet._check_finite``)."""
        network = trainer.module_
        network.eval()
        out = _fitted_diagnostics(network, rounds, scores)
        out.update(_training_diagnostics(trainer, out["collapse_curve_"]))
        return out

    # ------------------------------------------------------------------ model
    def _make_network(self, d: FitInputs, n_tickets):
        """The ticket network for this fit (seeded by the caller)."""
        n_outputs = d.plan.task.n_outputs(d.train.y_train)
        template = self._build_template(d, n_outputs)
        prunable = resolve_prunable(template, self.prunable, self.prune_output_layer)
        if not prunable:
            raise self._nothing_to_prune(template)
        self._check_optimizer_params()
        network = make_ticket_network(template, n_tickets, prunable, self.ticket_batchnorm)
        X, input_shape = d.train.X, d.plan.input_shape
        probe = dense_rows(X, slice(0, 2), input_shape)
        self._check_output_shape(network, probe, n_outputs, (X.shape[0], *input_shape))
        return network

    def _prune_epochs(self):
        """Epochs of every round of Alg. 1."""
        return min(self.max_prune_epochs, self.max_epochs)

    def _make_trainer(self, d: FitInputs, router, network, score):
        """The skorch trainer of both stages: batch size, stopping rule, held-out rows."""
        return self._trainer(
            d,
            network,
            train_split=self._held_out_split(d, router),
            callbacks=self._stage_callbacks(d, score),
            verbose=self.verbose,
        )

    def _trainer(self, d: FitInputs, network, *, train_split, callbacks, verbose):
        """A :class:`~sklearn_rtl._training.TicketNet` over ``network`` with this
        estimator's optimizer, ``lr``, batch size (``"auto"``: 200, or every row of a
        smaller set), device and seeds; without ``verbose``, skorch's ``PrintLog`` off (it
        formats a table and flushes stdout every epoch, printing or not: 15 % of a fit on
        a table of one batch)."""
        optimizer_params = {f"optimizer__{k}": v for k, v in (self.optimizer_params or {}).items()}
        quiet = {} if verbose else {"callbacks__print_log": None}
        batch_size = min(200, len(d.train.y)) if self.batch_size == "auto" else self.batch_size
        return TicketNet(
            module=network,
            criterion=torch.nn.Identity,  # the loss lives in TicketNet.get_loss
            optimizer=self.optimizer,
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=batch_size,
            train_split=train_split,
            callbacks=callbacks,
            device=self.device,
            verbose=verbose,
            task=d.plan.task,
            loader_rng=np.random.default_rng(d.plan.loader_seed),
            input_shape=d.plan.input_shape,
            **optimizer_params,
            **quiet,
        ).initialize()

    @staticmethod
    def _held_out_split(d: FitInputs, router):
        """skorch's ``predefined_split`` of the held-out rows (their loss is ``valid_loss``
        in every epoch), or None."""
        if d.held_out is None:
            return None
        held = d.held_out
        ticket = d.plan.task.held_out_tickets(router, held.X, held.groups)
        return predefined_split(Dataset({"X": held.X, "ticket": ticket}, held.y_train))

    def _stage_callbacks(self, d: FitInputs, score):
        """The stopping rule of every stage, the progress bar and the user's callbacks
        (every stage trains with fresh copies, see ``_training.StageRun``); with
        ``early_stopping``, the held-out ``score`` of every epoch decides when stages end."""
        monitor = "valid_score" if self.early_stopping else "train_loss"
        stopping = StageStopping(monitor, self.tol, self.n_iter_no_change, self.early_stopping)
        callbacks = [("stage_stopping", stopping)]
        if self.early_stopping:
            callbacks.insert(0, ("held_out_score", HeldOutScore(score)))
        if self.verbose >= 2:
            total = self.rewind_epoch + (self.n_prune_rounds + 1) * self.max_epochs
            callbacks.append(("progress", FitProgressBar(total_epochs=total)))
        user = self._user_callbacks()
        self._check_monitors(user, d.held_out is not None)
        return callbacks + user

    def _build_template(self, d: FitInputs, n_outputs):
        """The untrained network; a ``TypeError`` from ``module_params`` names them."""
        try:
            return build_template(
                self.module, self.module_params, d.plan.input_shape, d.plan.hidden, n_outputs
            )
        except TypeError as error:
            if not self.module_params:
                raise
            raise TypeError(
                f"module_params={self.module_params!r} were rejected by the module: {error}"
            ) from error

    def _unit_chain(self, network):
        """The network's unit chain under ``prune_granularity="neuron"`` (None for weight
        tickets); a ``ValueError`` naming the parameter where units cannot be removed."""
        if self.prune_granularity != "neuron":
            return None
        chain = unit_chain(network.template, network.prunable)
        if chain is None or self.shared_layers:
            raise ValueError(
                f"prune_granularity='neuron' removes whole hidden units, which needs the "
                f"default MLP or CNN (or an nn.Sequential alternating Linear and ReLU) with "
                f"every hidden layer prunable and no shared_layers; got module="
                f"{self.module!r}, prunable={self.prunable!r}, shared_layers="
                f"{self.shared_layers!r}. Use prune_granularity='weight'."
            )
        return chain

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
        """Deep copies of ``callbacks`` (instances or skorch's ``(name, callback)`` pairs);
        a ``TypeError`` naming the entry for anything else."""
        for entry in self.callbacks or []:
            cb = entry[1] if isinstance(entry, tuple) and len(entry) == 2 else entry
            named = not isinstance(entry, tuple) or isinstance(entry[0], str)
            is_class = isinstance(cb, type) and issubclass(cb, Callback)
            if not (named and (isinstance(cb, Callback) or is_class)):
                raise TypeError(
                    f"callbacks must hold skorch callbacks or (name, callback) pairs, got "
                    f"{entry!r} in callbacks={self.callbacks!r}."
                )
        return copy.deepcopy(list(self.callbacks or []))

    @staticmethod
    def _check_monitors(callbacks, has_held_out):
        """A callback that reads held-out values needs held-out rows: say how to get them."""
        if has_held_out:
            return
        for entry in callbacks:
            cb = entry[1] if isinstance(entry, tuple) else entry
            monitor = getattr(cb, "monitor", None)
            reads_valid = isinstance(monitor, str) and monitor.startswith("valid")
            if reads_valid or getattr(cb, "on_train", True) is False:
                raise ValueError(
                    f"The callback {cb!r} reads held-out values (valid_loss / valid scores), "
                    "but this fit holds out no rows: set validation_fraction (or "
                    "early_stopping=True), or monitor 'train_loss'."
                )

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
    def _check_output_shape(network, X, n_expected, shape):
        was_training = network.training
        network.eval()  # no batch-norm statistics from this probe
        with torch.no_grad():
            try:
                out = network.forward_ticket(torch.tensor(X[:2]), 0)
            except RuntimeError as error:
                raise ValueError(f"The network cannot take X of shape {shape}: {error}") from None
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
        self._fill_new_parameters()
        if "net_" in state and "_task" not in state:  # pickled by 0.1.0: no task object
            try:
                self._task = self._make_task()
            except Exception as error:  # pragma: no cover - defensive
                version = state.get("_sklearn_rtl_version", "0.1.0")
                raise ValueError(
                    f"This model was pickled by sklearn-rtl {version} and cannot be read by "
                    f"{__version__}: refit it, or load it with sklearn-rtl {version}."
                ) from error

    def _fill_new_parameters(self):
        """Give every constructor parameter missing from an older pickle (one added since
        it was written) its default, so that ``repr``, ``get_params``, ``clone`` and a refit
        work; the fitted model and its predictions are left as they were."""
        signature = inspect.signature(type(self).__init__)
        for name in self._get_param_names():
            if name not in vars(self):
                setattr(self, name, signature.parameters[name].default)

    @property
    def masks_(self):
        """Ticket masks: list of length ``n_tickets_`` of ``{layer: bool ndarray}``."""
        check_is_fitted(self, "net_")
        tickets = self.net_.module_.tickets
        return [tickets.ticket(k) for k in range(self.n_tickets_)]

    def _model(self) -> RoutedModel:
        """The fitted router and network as one :class:`~sklearn_rtl._inference.RoutedModel`."""
        net = self.net_
        return RoutedModel(
            self.router_, net.module_, self.input_shape_, net.device, self._task, cached=True,
            compact=getattr(self, "prune_granularity", "weight") == "neuron",
        )  # fmt: skip

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
        check_is_fitted(self, "net_")  # set with every fitted attribute, at the end of fit
        rows = self._plain_rows(X)
        if rows is not None:
            return rows
        if len(self._X_sample_shape) > 1:  # image input: name the shapes before sklearn does
            self._check_sample_shape(np.shape(X)[1:])
        X = validate_data(
            self,
            X,
            dtype=np.float32,
            accept_sparse=("csr", "csc"),
            ensure_all_finite=True,
            reset=False,
            allow_nd=len(self._X_sample_shape) > 1,
        )
        self._check_sample_shape(X.shape[1:])
        if sp.issparse(X):
            return X.tocsr()  # rows are densified one chunk at a time
        return X.reshape(len(X), -1)  # flat rows; the network reshapes them to input_shape_

    def _plain_rows(self, X):
        """``X`` exactly as ``validate_data`` returns it, for the one input whose checks are
        short to state: a float32 or float64 ndarray of rows of the fitted width, of finite
        values once in float32, for an estimator fitted on tabular rows without feature
        names. None for any other input: ``validate_data`` checks it and names its problem.

        ``validate_data`` spends most of its 70 µs a call telling DataFrames apart
        (``inspect.getattr_static``): half of a one-row prediction.
        """
        if not (
            type(X) is np.ndarray
            and X.ndim == 2
            and X.dtype in _PLAIN_DTYPES
            and X.shape[0] > 0
            and X.shape[1] == self.n_features_in_
            and len(self._X_sample_shape) == 1
            and getattr(self, "feature_names_in_", None) is None
        ):
            return None
        with np.errstate(over="ignore"):  # a float64 too large for float32: validate_data's
            rows = X.astype(np.float32, copy=False)
            finite = get_config()["assume_finite"] or _finite_sum(rows)
        return rows if finite else None  # a sum can overflow: validate_data decides

    def _check_sample_shape(self, shape):
        if tuple(shape) != self._X_sample_shape:
            raise ValueError(
                f"X has samples of shape {tuple(shape)}, but {type(self).__name__} was "
                f"fitted on samples of shape {self._X_sample_shape}."
            )

    def score(self, X, y, sample_weight=None, *, groups=None):
        """The estimator's default score (``_score_metric``) of ``predict(X, groups)``.

        ``sample_weight`` keeps scikit-learn's place (third); ``groups`` is keyword-only, so
        that a third positional argument is never taken for groups (nor groups for weights).

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
