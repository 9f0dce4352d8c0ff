"""Issue 16: the wrong answers an adversarial round of tests found, one test per case.

Every test first reproduces the case, then asserts the expected clear error (a
``ValueError`` / ``TypeError`` whose message names the parameter and the value) or the
correct result.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator
from sklearn.cluster import KMeans
from sklearn.utils._param_validation import InvalidParameterError

from conftest import small_rtl
from sklearn_rtl import MLP, RTLClassifier, RTLRegressor, _inference, find_prunable
from sklearn_rtl._fitdata import split_held_out

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 4))
    y = np.arange(90) % 3
    return X, y


def _clf(**params):
    return small_rtl(**{"max_epochs": 1, "n_clusters": 2, **params})


# ------------------------------------------------------------------- 1. Ctrl-C
_CHILD = textwrap.dedent(
    """
    import json, signal, sys
    # Ctrl-C as in an interactive interpreter, also where the test runner was started with
    # SIGINT ignored (in the background, under nohup), which the child would inherit
    signal.signal(signal.SIGINT, signal.default_int_handler)
    import numpy as np
    from skorch.callbacks import Callback
    from sklearn_rtl import RTLClassifier

    class Started(Callback):
        def on_epoch_end(self, net, **kwargs):
            if len(net.history) == 1 and getattr(net, "stage_", None) is not None:
                print("TRAINING", flush=True)

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    # a throwaway fit first, so that the interrupt lands in training, not in torch's
    # first-time set-up (lazy imports at the first optimizer step)
    RTLClassifier(hidden_layer_sizes=(8,), n_prune_rounds=1, max_epochs=1, n_clusters=2,
                  random_state=0).fit(X, y)
    est = RTLClassifier(hidden_layer_sizes=(8,), n_prune_rounds=1, max_epochs=1,
                        n_clusters=2, random_state=0)
    refit = sys.argv[1] == "refit"
    if refit:
        est.fit(X, y)
    before = (id(getattr(est, "net_", None)), est.predict(X).tolist() if refit else None)
    est.set_params(max_epochs=100000, max_prune_epochs=100000, n_iter_no_change=100000,
                   callbacks=[Started()])
    try:
        est.fit(X, y)
        outcome = "returned"
    except KeyboardInterrupt:
        outcome = "KeyboardInterrupt"
    after = (id(getattr(est, "net_", None)), est.predict(X).tolist() if refit else None)
    fitted = sorted(k for k in vars(est) if k.endswith("_") and not k.startswith("_"))
    print(json.dumps({"outcome": outcome, "has_net": hasattr(est, "net_"),
                      "unchanged": before == after, "fitted": fitted,
                      "max_epochs": est.max_epochs}), flush=True)
    """
)


@pytest.mark.parametrize("mode", ["fresh", "refit"])
def test_sigint_stops_the_whole_fit_and_leaves_the_estimator_as_before(mode):
    # Before: skorch's partial_fit swallowed KeyboardInterrupt, so every Ctrl-C ended one
    # stage and fit went on with the next; after four presses it returned "fitted".
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        for line in child.stdout:
            if line.strip() == "TRAINING":
                break
        else:
            pytest.fail(f"the child never started training: {child.stderr.read()}")
        time.sleep(0.5)
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)  # one Ctrl-C
        out, err = child.communicate(timeout=60)
        elapsed = time.monotonic() - sent
    finally:
        if child.poll() is None:
            child.kill()
    result = json.loads(out.strip().splitlines()[-1])
    assert result["outcome"] == "KeyboardInterrupt", (result, err)
    assert elapsed < 15, elapsed
    assert result["unchanged"]
    assert result["max_epochs"] == 100000  # set_params survives; fitted state is restored
    if mode == "fresh":
        assert not result["has_net"] and result["fitted"] == [], result
    else:
        assert result["has_net"]


# ---------------------------------------------- 2. label routing + held-out split
def _rare_class_data(seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(41, 3))
    y = np.r_[np.zeros(20, int), np.ones(20, int), [2]]  # class 2 has a single row
    return X, y


@pytest.mark.parametrize("seed", range(20))
def test_split_keeps_a_training_row_for_every_class(seed):
    X, y = _rare_class_data(seed)
    train, held_out = split_held_out({"X": X, "y": y}, y, None, 0.3, seed, stratify=True)
    assert set(train["y"].tolist()) == {0, 1, 2}
    assert len(held_out["y"]) > 0


@pytest.mark.parametrize(
    "params",
    [
        {"routing": "label", "validation_fraction": 0.3},
        {"routing": "label", "sparsity": "auto", "n_prune_rounds": 2},
        {"routing": "kmeans", "validation_fraction": 0.5},
    ],
    ids=["label-validation", "label-auto", "kmeans-validation"],
)
@pytest.mark.parametrize("seed", range(4))
def test_every_class_gets_its_ticket_and_its_column(params, seed):
    X, y = _rare_class_data(seed)
    clf = _clf(random_state=seed, **params).fit(X, y)
    assert clf.predict_proba(X).shape == (len(X), 3)
    assert clf.decision_function(X).shape == (len(X), 3)
    if params["routing"] == "label":
        assert clf.n_tickets_ == 3


def test_split_that_cannot_keep_every_class_is_a_clear_error():
    X = np.random.default_rng(0).normal(size=(4, 2))
    y = np.array([0, 1, 2, 3])  # every class a single row: nothing can be held out
    with pytest.raises(ValueError, match=r"validation_fraction=0\.5\) leaves no held-out row"):
        _clf(routing="label", validation_fraction=0.5).fit(X, y)


def test_groups_split_keeps_a_training_row_for_every_group(data):
    X, y = data
    groups = np.r_[np.zeros(89, int), [1]]  # group 1 has a single row
    for seed in range(6):
        clf = _clf(routing="groups", validation_fraction=0.5, random_state=seed)
        clf.fit(X, y, groups=groups)
        assert clf.n_tickets_ == 2
        assert clf.predict(X, groups=groups).shape == (len(X),)


# -------------------------------------------------------- 3. NaN / None in groups
@pytest.mark.parametrize(
    "groups",
    [
        np.r_[np.zeros(45), np.full(45, np.nan)],
        np.array([0, None] * 45, dtype=object),
        ["a", None] * 45,
        np.array(["a", float("nan")] * 45, dtype=object),
    ],
    ids=["float-nan", "object-none", "list-none", "object-nan"],
)
def test_missing_groups_are_an_error_at_fit(data, groups):
    # Before: fit made NaN a ticket of its own; predict on the same groups then raised
    # "values never seen during fit: [nan]".
    with pytest.raises(ValueError, match="groups holds missing values"):
        _clf(routing="groups").fit(*data, groups=groups)


def test_missing_groups_at_predict(data):
    X, y = data
    groups = np.arange(len(X)) % 2
    with_nan = np.where(np.arange(len(X)) < 5, np.nan, groups)
    clf = _clf(routing="groups").fit(X, y, groups=groups)
    with pytest.raises(ValueError, match=r"never seen during fit: \[nan\]"):
        clf.predict(X, groups=with_nan)
    nearest = _clf(routing="groups", unknown_group="nearest").fit(X, y, groups=groups)
    assert nearest.predict(X, groups=with_nan).shape == (len(X),)


# ----------------------------------------------- 4. only the output layer to prune
def test_find_prunable_keeps_a_lone_output_layer_dense():
    # Before: the `len(names) > 1` guard pruned the only layer, the output layer.
    assert find_prunable(MLP(4, (), 3)) == []
    assert find_prunable(MLP(4, (), 3), prune_output_layer=True) == ["layers.0.weight"]


def test_no_hidden_layers_without_pruning_the_output_layer_is_an_error(data):
    with pytest.raises(ValueError, match=r"prune_output_layer=False.*hidden_layer_sizes=\(\)"):
        _clf(hidden_layer_sizes=()).fit(*data)


class _OneLinear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.head = torch.nn.Linear(4, 3)

    def forward(self, X):
        return self.head(X)


def test_module_with_only_an_output_layer_is_an_error(data):
    with pytest.raises(ValueError, match="prune_output_layer=False keeps the network's only"):
        _clf(module=_OneLinear).fit(*data)


def test_no_hidden_layers_with_prune_output_layer_prunes_the_output_layer(data):
    clf = _clf(hidden_layer_sizes=(), prune_output_layer=True, sparsity=0.5).fit(*data)
    assert list(clf.masks_[0]) == ["layers.0.weight"]
    np.testing.assert_allclose(clf.ticket_sparsity_, 0.5, atol=0.1)


# ------------------------------------------------------- 5. a router class, not instance
def test_router_class_instead_of_instance_is_a_type_error(data):
    # Before: an opaque AttributeError from inside KMeans.fit.
    with pytest.raises(TypeError, match=r"got the class KMeans: pass an instance"):
        _clf(routing=KMeans).fit(*data)


# ---------------------------------------------------------------- 6. non-finite
def test_regressor_targets_whose_squares_overflow(data):
    # Before: y.std() overflowed to inf and every prediction was NaN.
    X, _ = data
    y = X[:, 0] - 2 * X[:, 1]
    reg = small_rtl(RTLRegressor, max_epochs=3, n_clusters=2)
    plain = reg.fit(X, y).predict(X)
    huge = reg.fit(X, y * 1e200).predict(X)
    assert np.isfinite(huge).all()
    np.testing.assert_allclose(huge / 1e200, plain, rtol=1e-3, atol=1e-3 * np.abs(plain).max())


def test_regressor_targets_too_large_to_predict(data):
    X, y = data
    with pytest.raises(ValueError, match="y holds values too large"):
        small_rtl(RTLRegressor).fit(X, (y + 1) * 1e306)


@pytest.mark.parametrize("estimator", [RTLClassifier, RTLRegressor])
def test_inputs_whose_squared_gradients_overflow_float32(data, estimator):
    # Before (classifier): Adam's second moment overflowed to inf, every update became 0,
    # the weights stayed finite at their initial values and fit returned a chance-level
    # model. (Regressor): the weights of a pruning round went to NaN, the masks were
    # ranked by NaN, and the retraining, rewound to finite weights, hid it.
    X, y = data
    match = r"(overflowed float32|non-finite weights).*largest \|X\| = "
    with pytest.raises(ValueError, match=match):
        small_rtl(estimator, n_clusters=2).fit(X * 1e30, y)


# ---------------------------------------------------------- 7. errors that name it
@pytest.mark.parametrize(
    "y, error, match",
    [
        (np.array(["a", 1, 2] * 30, dtype=object), TypeError, r"y mixes value types.*int, str"),
        (np.array(["a", None, "b"] * 30, dtype=object), ValueError, "y holds missing values"),
        (np.array([1, None, 2] * 30, dtype=object), ValueError, "y holds missing values"),
    ],
    ids=["str-int", "str-none", "int-none"],
)
def test_mixed_or_missing_labels_in_y(data, y, error, match):
    with pytest.raises(error, match=match):
        _clf().fit(data[0], y)


def test_mixed_types_in_groups(data):
    groups = np.array(["a", 1] * 45, dtype=object)
    with pytest.raises(TypeError, match=r"groups mixes value types.*int, str"):
        _clf(routing="groups").fit(*data, groups=groups)


class _Router(BaseEstimator):
    def __init__(self, labels=("a", 1)):
        self.labels = labels

    def fit(self, X):
        return self

    def predict(self, X):
        return np.resize(np.array(self.labels, dtype=object), len(X))


@pytest.mark.parametrize(
    "labels, error, match",
    [
        (("a", 1), TypeError, "output of the router .* mixes value types"),
        ((1.0, float("nan")), ValueError, "output of the router .* holds missing values"),
    ],
)
def test_mixed_or_missing_router_outputs(data, labels, error, match):
    with pytest.raises(error, match=match):
        _clf(routing=_Router(labels)).fit(*data)


@pytest.mark.parametrize("device", ["mps", "meta", "cuda:7", torch.device("meta")])
def test_devices_torch_cannot_train_on_here(data, device):
    if str(device) == "cuda:7" and torch.cuda.device_count() > 7:
        pytest.skip("this machine has 8 GPUs")
    if str(device) == "mps" and torch.backends.mps.is_available():
        pytest.skip("MPS is available here")
    with pytest.raises(ValueError, match=rf"device.*{str(device)!r}"):
        _clf(device=device).fit(*data)


@pytest.mark.parametrize(
    "params, error",
    [
        ({"betas": 5}, TypeError),
        ({"no_such_option": 1}, TypeError),
        ({"weight_decay": -1.0}, ValueError),
    ],
)
def test_bad_optimizer_params(data, params, error):
    with pytest.raises(error, match=r"optimizer_params=\{'[a-z_]+': .*optimizer=Adam"):
        _clf(optimizer_params=params).fit(*data)


def test_optimizer_param_groups_still_reach_skorch(data):
    groups = [("weights.*", {"lr": 1e-3})]
    _clf(optimizer_params={"param_groups": groups}).fit(*data)


def test_bad_module_params(data):
    with pytest.raises(TypeError, match=r"module_params=\{'no_such_option': 1\}"):
        _clf(module_params={"no_such_option": 1}).fit(*data)


def test_callbacks_that_are_not_callbacks(data):
    match = r"callbacks must hold skorch callbacks .*got 5 in callbacks=\[5\]"
    with pytest.raises(TypeError, match=match):
        _clf(callbacks=[5]).fit(*data)


def test_prune_output_layer_must_be_a_bool(data):
    with pytest.raises(InvalidParameterError, match=r"'prune_output_layer' .* Got 'yes'"):
        _clf(prune_output_layer="yes").fit(*data)


# ---------------------------------------------------------- 8. predict memory
@pytest.mark.parametrize("routing", ["kmeans", "groups", "label"])
def test_routing_runs_in_chunks_with_the_same_result(data, routing, monkeypatch):
    X, y = data
    groups = np.arange(len(X)) % 3
    clf = _clf(routing=routing).fit(X, y, groups=groups)
    whole, tickets = clf.predict_proba(X, groups=groups), clf.route(X, groups=groups)
    seen = []
    router_predict = clf.router_.predict

    def spy(X_part, groups=None):
        seen.append(len(X_part))
        return router_predict(X_part, groups)

    monkeypatch.setattr(_inference, "_INFER_BATCH", 16)
    monkeypatch.setattr(clf.router_, "predict", spy)
    np.testing.assert_array_equal(clf.route(X, groups=groups), tickets)
    # the network's chunks change too: the same values up to float32 rounding
    np.testing.assert_allclose(clf.predict_proba(X, groups=groups), whole, rtol=1e-5)
    if routing == "label":  # the detectors route, in the network's chunks
        assert seen == []
    else:
        assert seen and max(seen) <= 16


def test_predict_never_copies_all_of_X():
    # Before: KMeans routing standardized all of X at once (one full copy).
    rng = np.random.default_rng(0)
    clf = _clf().fit(rng.normal(size=(100, 64)), np.arange(100) % 3)
    X = rng.normal(size=(160_000, 64)).astype(np.float32)  # 41 MB; a chunk is 2 MB
    X_read_only = X.copy()
    X_read_only.flags.writeable = False
    for rows in (X, X_read_only):
        tracemalloc.start()
        clf.predict(rows)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 0.25 * X.nbytes, (peak, X.nbytes)
