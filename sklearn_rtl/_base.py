"""Shared orchestration of the two RTL stages for every estimator of the package.

Subclasses say only what depends on the task (outputs, loss, how targets are encoded and
how logits become predictions); everything else (validation of parameters, seeding,
routing, ticket extraction, joint retraining, diagnostics) lives here once.
"""

from __future__ import annotations

import copy
import numbers

import numpy as np
import torch
from sklearn.base import BaseEstimator, is_classifier
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ._cnn import (
    TicketBatchNormNetwork,
    default_image_module,
    has_batchnorm,
    network_input_shape,
    resolve_prunable,
)
from ._collapse import collapse_from_scores, detect_collapse, drop_persists
from ._diagnostics import (
    collapse_score,
    layer_similarity,
    random_mask_jaccard,
    similarity_matrix,
    ticket_similarity,
)
from ._network import MLP, TicketNetwork
from ._progress import FitProgressBar
from ._routing import make_router
from ._tickets import (
    density_schedule,
    full_masks,
    prune_by_magnitude,
    ticket_kept_counts,
    union_kept_count,
)
from ._training import RecordStage, TicketBatchLoader, TicketNet

_INFER_BATCH = 8192


def _check_int(value, name, low):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}: {value!r}.")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}.")


def _check_positive_float(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}: {value!r}.")
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}.")


_AUTO_VALIDATION_FRACTION = 0.1


def _split_validation(X, y, y_train, groups, fraction, seed, stratify):
    """Hold out ``fraction`` of the rows (stratified by class when possible)."""
    index = np.arange(len(X))
    try:
        fit_index, val_index = train_test_split(
            index, test_size=fraction, random_state=seed, stratify=y if stratify else None
        )
    except ValueError:  # a class too small to stratify
        fit_index, val_index = train_test_split(index, test_size=fraction, random_state=seed)
    fit_index, val_index = np.sort(fit_index), np.sort(val_index)

    def take(a, i):
        return None if a is None else np.asarray(a)[i]

    validation = (X[val_index], y[val_index], take(groups, val_index))
    return X[fit_index], y[fit_index], y_train[fit_index], take(groups, fit_index), validation


def _check_fraction(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a float in (0, 1), got {value!r}.")
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be in (0, 1), got {value!r}.")


class BaseRTL(BaseEstimator):
    """Routing the Lottery, shared by the classifier and the regressor.

    See :class:`sklearn_rtl.RTLClassifier` for the parameters.
    """

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

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True  # image X (n, H, W) or (n, C, H, W): the CNN
        return tags

    # ------------------------------------------------------------ task hooks
    _loss_task = "multiclass"
    _multi_output = False
    _routing_options = ("kmeans", "groups")
    _y_numeric = False

    def _n_outputs(self, y):
        raise NotImplementedError

    def _encode_targets(self, y):
        """Validate ``y`` and return what the network trains on."""
        raise NotImplementedError

    # ------------------------------------------------------------ validation
    def _validate_hyperparameters(self, n_samples):
        hidden = self.hidden_layer_sizes
        if self.module is None:
            if isinstance(hidden, numbers.Integral) and not isinstance(hidden, bool):
                hidden = (hidden,)
            try:
                hidden = tuple(hidden)
            except TypeError:
                raise TypeError(
                    f"hidden_layer_sizes must be a tuple of ints, got {self.hidden_layer_sizes!r}."
                ) from None
            for width in hidden:
                _check_int(width, "every entry of hidden_layer_sizes", 1)
        if isinstance(self.sparsity, str):
            if self.sparsity != "auto":
                raise ValueError(
                    f"sparsity must be a float in [0, 1) or 'auto', got {self.sparsity!r}."
                )
        elif isinstance(self.sparsity, (bool, np.bool_)) or not isinstance(
            self.sparsity, numbers.Real
        ):
            raise TypeError(f"sparsity must be a float in [0, 1) or 'auto', got {self.sparsity!r}.")
        elif not 0.0 <= self.sparsity < 1.0:
            raise ValueError(f"sparsity must be in [0, 1), got {self.sparsity!r}.")
        _check_fraction(self.sparsity_ceiling, "sparsity_ceiling")
        if self.validation_fraction is not None:
            _check_fraction(self.validation_fraction, "validation_fraction")
        _check_int(self.n_prune_rounds, "n_prune_rounds", 1)
        _check_int(self.max_epochs, "max_epochs", 1)
        _check_int(self.batch_size, "batch_size", 1)
        _check_int(self.rewind_epoch, "rewind_epoch", 0)
        _check_int(self.verbose, "verbose", 0)
        _check_positive_float(self.lr, "lr")
        options = ", ".join(repr(option) for option in self._routing_options)
        if isinstance(self.routing, str) and self.routing not in self._routing_options:
            raise ValueError(
                f"routing must be one of {options} or an estimator with fit and predict, "
                f"got {self.routing!r}."
            )
        if not isinstance(self.routing, str) and not (
            hasattr(self.routing, "fit") and hasattr(self.routing, "predict")
        ):
            raise TypeError(
                f"routing must be one of {options} or an estimator with fit and predict; "
                f"{type(self.routing).__name__} has no fit/predict."
            )
        if self.unknown_group not in ("error", "nearest"):
            raise ValueError(
                f"unknown_group must be 'error' or 'nearest', got {self.unknown_group!r}."
            )
        if isinstance(self.routing, str) and self.routing == "kmeans":
            _check_int(self.n_clusters, "n_clusters", 1)
            if self.n_clusters > n_samples:
                raise ValueError(f"n_clusters={self.n_clusters} must be <= n_samples={n_samples}.")
        if self.prune_scope not in ("layer", "global"):
            raise ValueError(f"prune_scope must be 'layer' or 'global', got {self.prune_scope!r}.")
        if not isinstance(self.ticket_batchnorm, (bool, np.bool_)):
            raise TypeError(f"ticket_batchnorm must be a bool, got {self.ticket_batchnorm!r}.")
        if not isinstance(self.share_weights, (bool, np.bool_)):
            raise TypeError(f"share_weights must be a bool, got {self.share_weights!r}.")
        if not (
            isinstance(self.optimizer, type) and issubclass(self.optimizer, torch.optim.Optimizer)
        ):
            raise TypeError(
                f"optimizer must be a torch.optim.Optimizer class, got {self.optimizer!r}."
            )
        for name in ("module_params", "optimizer_params"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, dict):
                raise TypeError(f"{name} must be a dict or None, got {type(value).__name__}.")
        try:
            device = torch.device(self.device)
        except (RuntimeError, TypeError):
            raise ValueError(
                f"device must be 'cpu', 'cuda' or a torch device, got {self.device!r}."
            ) from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("device='cuda' was requested but no CUDA GPU is available.")
        return hidden

    # ------------------------------------------------------------------ model
    def _build_template(self, n_features, n_outputs, hidden):
        params = dict(self.module_params or {})
        if self.module is None:
            if len(self.input_shape_) == 3:  # image-shaped input: the default CNN
                return default_image_module(self.input_shape_, n_outputs, params)
            return MLP(n_features, hidden, n_outputs, **params)
        if isinstance(self.module, torch.nn.Module):
            return copy.deepcopy(self.module)
        if isinstance(self.module, type) and issubclass(self.module, torch.nn.Module):
            return self.module(**params)
        raise TypeError(
            f"module must be None, a torch.nn.Module subclass or instance, got {self.module!r}."
        )

    def _make_net(self, network, rng):
        callbacks = [("stage", RecordStage())]
        if self.verbose >= 2:
            total = self.rewind_epoch + (self.n_prune_rounds + 1) * self.max_epochs
            callbacks.append(("progress", FitProgressBar(total_epochs=total)))
        callbacks += [(f"user_{i}", cb) for i, cb in enumerate(copy.deepcopy(self.callbacks or []))]
        optimizer_params = {f"optimizer__{k}": v for k, v in (self.optimizer_params or {}).items()}
        net = TicketNet(
            module=network,
            criterion=torch.nn.Identity,  # the loss lives in TicketNet.get_loss
            optimizer=self.optimizer,
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            iterator_train=TicketBatchLoader,
            iterator_train__task=self._loss_task,
            iterator_train__rng=rng,
            iterator_train__cycle=True,
            train_split=None,
            callbacks=callbacks,
            device=self.device,
            verbose=self.verbose,
            task=self._loss_task,
            **optimizer_params,
        )
        return net.initialize()

    def _train_stage(self, net, data, y, *, stage, n_copies, tied, start, epochs):
        """Rewind every ticket to ``start`` and train for ``epochs`` epochs."""
        network = net.module_
        network.set_weights(start, n_copies=n_copies)
        net.tied = tied
        # Tied (joint) training cycles smaller tickets to equal updates (Alg. 2); untied
        # training lets every ticket make only its own steps, as K separate runs would.
        net.iterator_train__cycle = tied
        net.stage_ = stage
        net.max_epochs = epochs
        net.initialize_optimizer()
        net.partial_fit(data, y)

    # -------------------------------------------------------------------- fit
    def _fit(self, X, y, groups=None):
        """Fit atomically: if fitting raises, the estimator is left exactly as it was
        (unfitted, or fitted by the previous call), never half fitted."""
        state = dict(vars(self))
        try:
            return self._fit_steps(X, y, groups)
        except BaseException:
            vars(self).clear()
            vars(self).update(state)
            raise

    def _fit_steps(self, X, y, groups=None):
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
        hidden = self._validate_hyperparameters(len(X))
        X = self._flatten_input(X, reset=True)  # routers see flat rows; the network, input_shape_
        y_train = self._encode_targets(y)
        random_state = check_random_state(self.random_state)
        torch_seed, router_seed, loader_seed = random_state.randint(0, 2**31 - 1, size=3)
        auto = isinstance(self.sparsity, str)
        validation = None
        if auto or self.validation_fraction is not None:
            X, y, y_train, groups, validation = _split_validation(
                X,
                y,
                y_train,
                groups,
                self.validation_fraction or _AUTO_VALIDATION_FRACTION,
                int(random_state.randint(0, 2**31 - 1)),
                stratify=is_classifier(self),
            )

        router = make_router(self.routing, self.n_clusters, int(router_seed), self.unknown_group)
        tickets = router.fit(X, self._router_targets(y, y_train), groups=groups)
        n_tickets = router.n_tickets_

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch_seed))
            n_outputs = self._n_outputs(y_train)
            template = self._build_template(X.shape[1], n_outputs, hidden)
            prunable = resolve_prunable(template, self.prunable, self.prune_output_layer)
            if not prunable:
                raise ValueError("The module has no Linear or Conv weights to prune.")
            per_ticket_bn = self.ticket_batchnorm and has_batchnorm(template)
            network_class = TicketBatchNormNetwork if per_ticket_bn else TicketNetwork
            network = network_class(template, n_tickets, prunable)
            self._check_output_shape(network, self._to_network(X), n_outputs)
            net = self._make_net(network, np.random.default_rng(int(loader_seed)))
            data = {"X": self._to_network(X), "ticket": tickets.astype(np.int64)}
            theta0 = {name: w[0].clone() for name, w in network.get_weights().items()}

            rewind_point = theta0
            if self.rewind_epoch > 0:
                self._train_stage(
                    net,
                    data,
                    y_train,
                    stage="rewind",
                    n_copies=n_tickets,
                    tied=True,
                    start=theta0,
                    epochs=self.rewind_epoch,
                )
                rewind_point = {name: w[0].clone() for name, w in network.get_weights().items()}

            masks = full_masks({n: network.get_masks()[n].shape[1:] for n in prunable}, n_tickets)
            curve = []
            schedule = density_schedule(
                self.sparsity_ceiling if auto else self.sparsity, self.n_prune_rounds
            )
            if validation is not None:
                # Held-out scores per round: the copies trained in round r + 1 (from the
                # rewind point, under round r's masks) score round r's masks; one extra
                # training pass (density None) scores the last round's masks.
                self.router_, self.n_tickets_, self.net_ = router, n_tickets, net
                candidates = [masks]
                schedule = schedule + [None]
            for round_index, density in enumerate(schedule):
                self._train_stage(
                    net,
                    data,
                    y_train,
                    stage=f"prune_round_{round_index + 1}" if density is not None else "validate",
                    n_copies=n_tickets,
                    tied=False,
                    start=rewind_point,
                    epochs=self.max_epochs,
                )
                if validation is not None:
                    score, ticket_scores = self._validation_scores(*validation)
                    if round_index == 0:
                        self.validation_score_dense_ = score
                    else:
                        curve[-1]["val_score"] = score
                        curve[-1]["ticket_val_score"] = ticket_scores
                        if auto and drop_persists(
                            [self.validation_score_dense_] + [r["val_score"] for r in curve]
                        ):
                            break  # collapsed for two rounds: stop pruning
                if density is None:
                    break
                trained = network.get_weights()
                masks = prune_by_magnitude(
                    {n: trained[n] for n in prunable},
                    {n: m.to(trained[n].device) for n, m in masks.items()},
                    density,
                    self.prune_scope,
                )
                network.set_masks(masks)
                curve.append(self._curve_record(round_index + 1, masks))
                if validation is not None:
                    candidates.append({n: m.cpu() for n, m in masks.items()})
            if auto:
                scores = [self.validation_score_dense_] + [
                    r["val_score"] for r in curve if "val_score" in r
                ]
                collapsed = collapse_from_scores(scores)
                chosen = len(scores) - 1 if collapsed is None else collapsed - 1
                self.auto_round_ = chosen
                network.set_masks(candidates[chosen])

            self._train_stage(
                net,
                data,
                y_train,
                stage="retrain",
                n_copies=n_tickets,
                tied=bool(self.share_weights),
                start=rewind_point,
                epochs=self.max_epochs,
            )
            if self.share_weights:
                network.share()
            net.initialize_optimizer()
        network.eval()
        if not all(bool(torch.isfinite(w).all()) for w in network.get_weights().values()):
            raise ValueError(
                "Training produced non-finite weights (NaN or inf): X probably holds very "
                "large values. Scale it first (e.g. StandardScaler) or lower lr."
            )

        self.router_ = router
        self.n_tickets_ = n_tickets
        self.net_ = net
        self.collapse_curve_ = curve
        detected = detect_collapse(curve)
        self.collapse_detected_ = detected is not None
        self.collapse_sparsity_ = None if detected is None else float(curve[detected]["sparsity"])
        self._set_diagnostics(network)
        return self

    def _router_targets(self, y, y_train):
        return y

    def _validation_scores(self, X_val, y_val, groups_val):
        """Held-out score of the current weights: ``(score, per-ticket scores)``.

        Classifiers: balanced accuracy of the routed prediction; per ticket, under label
        routing the one-vs-rest balanced accuracy of detector ``k`` (logit > 0), else the
        accuracy on the held-out samples routed to ticket ``k`` (NaN if none). Other
        estimators: their ``score`` (per-ticket scores NaN).
        """
        kwargs = {} if groups_val is None else {"groups": groups_val}
        nan = np.full(self.n_tickets_, np.nan)
        if not is_classifier(self):
            return float(self.score(X_val, y_val, **kwargs)), nan
        scores = self._decision(X_val, groups_val)
        y_pred = self.classes_[np.argmax(scores, axis=1)]
        score = float(balanced_accuracy_score(y_val, y_pred))
        ticket_scores = nan.copy()
        if self._loss_task == "ovr":
            # scores are the detectors' log-sigmoids: detector k fires (logit > 0) where
            # its score exceeds log(1/2); no second pass through the tickets
            fires = scores > -np.log(2.0)
            y_index = np.searchsorted(self.classes_, y_val)
            for k in range(self.n_tickets_):
                truth = y_index == k
                if truth.any() and (~truth).any():
                    ticket_scores[k] = balanced_accuracy_score(truth, fires[:, k])
        else:
            routed = self.router_.predict(X_val, groups_val)
            for k in range(self.n_tickets_):
                here = routed == k
                if here.any():
                    ticket_scores[k] = float(np.mean(y_pred[here] == y_val[here]))
        return score, ticket_scores

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

    @staticmethod
    def _curve_record(round_index, masks):
        n_prunable = sum(m[0].numel() for m in masks.values())
        kept = ticket_kept_counts(masks)
        similarity = similarity_matrix({n: m.cpu().numpy() for n, m in masks.items()})
        density = float(kept.mean() / n_prunable)
        return {
            "round": round_index,
            "sparsity": 1.0 - density,
            "ticket_sparsity": 1.0 - kept / n_prunable,
            "similarity": collapse_score(similarity),
            "ticket_similarity": ticket_similarity(similarity),
            "layer_similarity": {
                n: collapse_score(s)
                for n, s in layer_similarity({k: m.cpu().numpy() for k, m in masks.items()}).items()
            },
            "random_similarity": random_mask_jaccard(density),
        }

    def _set_diagnostics(self, network):
        masks = {n: m.cpu() for n, m in network.get_masks().items()}
        n_prunable = sum(m[0].numel() for m in masks.values())
        n_dense_part = sum(
            w[0].numel() for n, w in network.get_weights().items() if n not in network.prunable
        )
        kept = ticket_kept_counts(masks)
        self.n_params_dense_ = int(n_prunable + n_dense_part)
        self.ticket_sparsity_ = 1.0 - kept / n_prunable
        self.sparsity_ = 1.0 - union_kept_count(masks) / n_prunable
        if self.share_weights or self.n_tickets_ == 1:
            self.n_params_ = int(union_kept_count(masks) + n_dense_part)
        else:
            self.n_params_ = int(kept.sum() + self.n_tickets_ * n_dense_part)
        numpy_masks = {n: m.numpy() for n, m in masks.items()}
        self.similarity_ = similarity_matrix(numpy_masks)
        self.layer_similarity_ = layer_similarity(numpy_masks)
        self.layer_sparsity_ = {
            n: 1.0 - m.reshape(len(m), -1).mean(axis=1) for n, m in numpy_masks.items()
        }
        self.collapse_score_ = collapse_score(self.similarity_)

    # ------------------------------------------------------------- inference
    @property
    def masks_(self):
        """Ticket masks: list of length ``n_tickets_`` of ``{layer: bool ndarray}``."""
        check_is_fitted(self, "net_")
        masks = self.net_.module_.get_masks()
        return [{n: m[k].cpu().numpy() for n, m in masks.items()} for k in range(self.n_tickets_)]

    def route(self, X, groups=None):
        """Ticket of every sample.

        For a classifier under ``routing="label"``, a sample's ticket is the class
        whose detector scores highest (``predict``, as an index into ``classes_``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        groups : array-like of shape (n_samples,), default=None
            Every sample's context, required by ``routing="groups"`` (ignored otherwise).

        Returns
        -------
        tickets : ndarray of shape (n_samples,), dtype int
            Values in ``0 .. n_tickets_ - 1``.
        """
        X = self._validate_predict_input(X)
        return self._route(X, groups)

    def _route(self, X, groups=None):
        return self.router_.predict(X, groups).astype(np.int64)

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
        return self._flatten_input(X, reset=False)

    def _flatten_input(self, X, reset):
        """Validated ``X`` as flat rows ``(n_samples, n_values)``; sets ``input_shape_`` on fit."""
        if reset:
            self.input_shape_ = network_input_shape(X.shape[1:], self.module, self.input_shape)
            self._X_sample_shape = tuple(X.shape[1:])
        else:
            self._check_sample_shape(X.shape[1:])
        return X.reshape(len(X), -1)

    def _check_sample_shape(self, shape):
        if tuple(shape) != self._X_sample_shape:
            raise ValueError(
                f"X has samples of shape {tuple(shape)}, but {type(self).__name__} was "
                f"fitted on samples of shape {self._X_sample_shape}."
            )

    def _to_network(self, X):
        """Flat rows reshaped to what the network takes: ``(n_samples, *input_shape_)``."""
        return X.reshape(len(X), *self.input_shape_)

    def _infer(self, X, tickets=None):
        """Network outputs for validated ``X``, in chunks, without gradients.

        Returns a float64 ndarray of shape (n_samples, n_outputs), or
        (n_samples, n_tickets, n_outputs) when ``tickets`` is None (every ticket).
        """
        network = self.net_.module_
        network.eval()
        device = self.net_.device
        if not X.flags.writeable:  # torch refuses to wrap read-only memory (e.g. memmaps)
            X = X.copy()
        outputs = []
        with torch.inference_mode():
            for start in range(0, len(X), _INFER_BATCH):
                xb = torch.as_tensor(
                    self._to_network(X[start : start + _INFER_BATCH]), device=device
                )
                tb = None
                if tickets is not None:
                    tb = torch.as_tensor(tickets[start : start + _INFER_BATCH], device=device)
                outputs.append(network(xb, tb).double().cpu())
        out = torch.cat(outputs).numpy()
        if not np.isfinite(out).all():
            raise ValueError(
                "The network's outputs for X are not finite (NaN or inf): X probably holds "
                "values far larger than the training data. Scale it as in fit."
            )
        return out
