"""prune_granularity="neuron" on the estimator (issue 22): whole units removed, sparsity
counted in weights, compact ticket modules, clear errors where units cannot be removed."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from conftest import small_rtl
from sklearn_rtl import RTLClassifier


@pytest.fixture(scope="module")
def digits():
    return load_digits(return_X_y=True)


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_neuron_tickets_remove_whole_units_at_the_requested_sparsity(digits, scope):
    X, y = digits
    clf = small_rtl(
        prune_granularity="neuron", prune_scope=scope, hidden_layer_sizes=(64, 32),
        sparsity=0.8, n_prune_rounds=2, n_clusters=2,
    ).fit(X, y)  # fmt: skip
    assert clf.n_tickets_ == 2
    np.testing.assert_allclose(clf.ticket_sparsity_, 0.8, atol=0.03)
    for masks in clf.masks_:
        first, second = masks["layers.0.weight"], masks["layers.2.weight"]
        units = first.any(1)  # kept units of layer 1
        assert np.array_equal(first, np.outer(units, np.ones(64, bool)))
        assert np.array_equal(second, np.outer(second.any(1), units))
    assert clf.score(X, y) > 0.5


def test_default_is_weight_tickets(digits):
    X, y = digits
    assert RTLClassifier().prune_granularity == "weight"
    clf = small_rtl(hidden_layer_sizes=(32,), sparsity=0.8, n_clusters=1).fit(X, y)
    rows_kept = clf.masks_[0]["layers.0.weight"].any(1)
    assert rows_kept.all()  # weight tickets keep some weight in (nearly) every unit


def test_neuron_ticket_module_is_small_at_sparsity_0_9():
    """The issue's network: ticket_module(0) holds <= 0.15x the dense parameters."""
    rng = np.random.default_rng(0)
    X = rng.random((300, 784), dtype=np.float32)
    y = rng.integers(0, 10, 300)
    clf = RTLClassifier(
        hidden_layer_sizes=(256, 256), sparsity=0.9, n_clusters=1, prune_granularity="neuron",
        n_prune_rounds=1, max_epochs=1, max_prune_epochs=1, random_state=0,
    ).fit(X, y)  # fmt: skip
    module = clf.ticket_module(0)
    n_params = sum(p.numel() for p in module.parameters())
    dense = 784 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10
    assert n_params <= 0.15 * dense, n_params / dense
    assert [m.in_features for m in module if isinstance(m, nn.Linear)][0] == 784
    with torch.no_grad():
        out = torch.softmax(module(torch.as_tensor(X[:50])), 1).numpy()
    np.testing.assert_allclose(out, clf.predict_proba(X[:50]), atol=1e-5)


@pytest.mark.parametrize("params", [{"module": "tanh"}, {"shared_layers": 1}])
def test_neuron_tickets_need_a_unit_chain(digits, params):
    X, y = digits
    if params.get("module") == "tanh":
        params = {"module": _TanhNet}
    clf = small_rtl(prune_granularity="neuron", **params)
    with pytest.raises(ValueError, match="prune_granularity='neuron' removes whole hidden"):
        clf.fit(X, y)


class _TanhNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 10))

    def forward(self, X):
        return self.layers(X)


def test_bad_granularity_names_the_parameter(digits):
    X, y = digits
    with pytest.raises(ValueError, match="prune_granularity"):
        small_rtl(prune_granularity="unit").fit(X, y)


@pytest.mark.parametrize("routing", ["kmeans", "label"])
def test_predict_runs_the_compact_tickets_as_the_masked_ones(digits, routing):
    """predict reads every ticket's compact network: the same outputs as the masked
    network (within float rounding), for routed and for all-ticket (label) passes."""
    X, y = digits
    clf = small_rtl(
        prune_granularity="neuron", hidden_layer_sizes=(64, 32), sparsity=0.8, routing=routing,
        n_clusters=3, max_epochs=3,
    ).fit(X, y)  # fmt: skip
    assert clf.n_tickets_ >= 3
    model, rows = clf._model(), X.astype(np.float32)  # validated rows, as predict has them
    assert model.compact
    compact = model.decision(rows)
    model.compact = False
    masked = model.decision(rows)
    np.testing.assert_allclose(compact, masked, atol=1e-5, rtol=0)
    network = clf.net_.module_
    widths = [m.out_features for m in network.compact_tickets()[0] if isinstance(m, nn.Linear)]
    assert widths[0] < 64 and widths[1] < 32
