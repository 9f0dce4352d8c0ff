"""shared_layers: prunable layers whose mask all tickets share."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from conftest import small_rtl
from sklearn_rtl import TicketSet
from sklearn_rtl._prunable import resolve_shared_layers

LAYERS = ["a.weight", "b.weight", "c.weight"]


def test_shared_layer_is_ranked_by_mean_magnitude_over_tickets():
    weights = {
        # ticket 0 prefers a0, ticket 1 prefers a1; the mean magnitude is (2.0, 2.5, 0.2, 1.0)
        "a": torch.tensor([[3.0, 1.0, 0.1, 1.0], [1.0, 4.0, 0.3, 1.0]]),
        "b": torch.tensor([[3.0, 1.0], [1.0, 4.0]]),
    }
    tickets = TicketSet.full({"a": (4,), "b": (2,)}, n_tickets=2)
    pruned = tickets.prune(weights, density=0.5, shared=("a",))
    assert pruned.masks["a"].int().tolist() == [[1, 1, 0, 0], [1, 1, 0, 0]]
    assert pruned.masks["b"].int().tolist() == [[1, 0], [0, 1]]  # own magnitudes
    assert pruned.layer_similarity()["a"][0, 1] == 1.0


def test_shared_layer_keeps_its_density_under_global_scope():
    weights = {"a": torch.tensor([[1.0, 2.0], [1.0, 2.0]]), "b": torch.tensor([[9.0, 8.0]] * 2)}
    tickets = TicketSet.full({"a": (2,), "b": (2,)}, n_tickets=2)
    pruned = tickets.prune(weights, density=0.5, scope="global", shared=("a",))
    assert pruned.masks["a"].int().tolist() == [[0, 1], [0, 1]]
    assert pruned.masks["b"].int().tolist() == [[1, 0], [1, 0]]


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, ()),
        (0, ()),
        (1, ("a.weight",)),
        (2, ("a.weight", "b.weight")),
        (-1, ("c.weight",)),
        (["c.weight", "a.weight"], ("a.weight", "c.weight")),
        ("b.weight", ("b.weight",)),
    ],
)
def test_resolve_shared_layers(value, expected):
    assert resolve_shared_layers(value, LAYERS) == expected


def test_resolve_shared_layers_errors():
    with pytest.raises(ValueError, match="shared_layers=4 asks for more layers than the 3"):
        resolve_shared_layers(4, LAYERS)
    with pytest.raises(ValueError, match="not prunable: \\['d.weight'\\]"):
        resolve_shared_layers(["d.weight"], LAYERS)


def test_estimator_shares_the_first_layer_only():
    X, y = load_digits(return_X_y=True)
    clf = small_rtl(hidden_layer_sizes=(16, 16), n_clusters=3, n_prune_rounds=2, sparsity=0.75)
    clf.set_params(shared_layers=1).fit(X / 16, y)
    first, second = clf.layer_similarity_.values()
    np.testing.assert_array_equal(first, np.ones((3, 3)))
    assert second[0, 1] < 1.0
    np.testing.assert_allclose(clf.ticket_sparsity_, 0.75, atol=0.01)
    # the union of the first layer is one ticket's mask: fewer weights than without sharing
    unshared = small_rtl(hidden_layer_sizes=(16, 16), n_clusters=3, n_prune_rounds=2).set_params(
        sparsity=0.75
    )
    assert clf.n_params_ < unshared.fit(X / 16, y).n_params_
    with pytest.raises(TypeError, match="'shared_layers' parameter"):
        small_rtl(shared_layers=1.5).fit(X / 16, y)
