"""Neuron-level tickets (issue 22): unit pruning on hand-checked tensors, and compact
tickets that compute what the masked ticket computes."""

import pytest
import torch
from torch import nn

from sklearn_rtl import MLP, SmallCNN, TicketNetwork, find_prunable
from sklearn_rtl._network import make_ticket_network
from sklearn_rtl._units import compact_cnn, compact_mlp, kept_units, prune_units, unit_chain


def _ones(weights):
    return {n: torch.ones_like(w, dtype=torch.bool) for n, w in weights.items()}


def test_layer_scope_removes_the_weakest_units_rows_and_columns():
    # unit norms: 1.41, 0.14, 2.83 -> unit 1 goes; 5 of 9 weights kept
    w = {"a": torch.tensor([[[1.0, 1.0], [0.1, 0.1], [2.0, 2.0]]]), "b": torch.ones(1, 1, 3)}
    new = prune_units(w, _ones(w), density=5 / 9, scope="layer", chain=["a", "b"])
    assert new["a"][0].int().tolist() == [[1, 1], [0, 0], [1, 1]]
    assert new["b"][0].int().tolist() == [[1, 0, 1]]


def test_removed_units_stay_removed_and_weights_are_counted():
    torch.manual_seed(0)
    template = MLP(20, (32, 16), 5)
    net = TicketNetwork(template, 3, find_prunable(template))
    chain = unit_chain(net.template, net.prunable)
    assert chain == ["layers.0.weight", "layers.2.weight", "layers.4.weight"]
    w = {n: torch.randn(3, *net.get_weights()[n].shape[1:]) for n in net.prunable}
    n_prunable = 20 * 32 + 32 * 16
    for scope in ("layer", "global"):
        first = prune_units(w, net.get_masks(), 0.3, scope, chain)
        second = prune_units(w, first, 0.1, scope, chain)
        for masks, density in ((first, 0.3), (second, 0.1)):
            kept = sum(m.flatten(1).sum(1) for m in masks.values()) / n_prunable
            assert torch.all((kept - density).abs() < 0.05), (scope, kept)
        assert all(torch.all(second[n] <= first[n]) for n in first)
        for k in range(3):  # structured: every kept row keeps exactly the kept columns
            units = kept_units(second, chain, k)
            expected = units[1][:, None] & units[0][None]
            assert torch.equal(second["layers.2.weight"][k], expected)


def test_global_scope_ranks_units_of_all_layers_together():
    # layer a: units of RMS 1 and 3; layer b: units of RMS 2 and 0.5 (fan-in 2 each)
    w = {
        "a": torch.tensor([[[1.0, 1.0], [3.0, 3.0]]]),
        "b": torch.tensor([[[2.0, 2.0], [0.5, 0.5]]]),
        "c": torch.ones(1, 1, 2),
    }
    masks = _ones({"a": w["a"], "b": w["b"]})
    new = prune_units(w, masks, density=0.5, scope="global", chain=["a", "b", "c"])
    # dropping b's unit 1 (RMS 0.5) leaves 6 of 8 weights; then a's unit 0 (RMS 1): 2 + 1
    assert new["a"][0].int().tolist() == [[0, 0], [1, 1]]
    assert new["b"][0].int().tolist() == [[0, 1], [0, 0]]


def test_unsupported_networks_have_no_unit_chain():
    template = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    assert unit_chain(template, ["0.weight"]) is None
    template = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    assert unit_chain(template, ["0.weight"]) == ["0.weight", "2.weight"]
    assert unit_chain(template, ["2.weight"]) is None  # a hidden layer must be prunable
    with pytest.raises(ValueError, match="scope must be"):
        prune_units({}, {"a": torch.ones(1, 2, 2, dtype=torch.bool)}, 0.5, "row", ["a", "b"])


def test_compact_mlp_computes_the_masked_ticket():
    torch.manual_seed(0)
    template = MLP(20, (32, 16), 5)
    net = TicketNetwork(template, 2, find_prunable(template))
    chain = unit_chain(net.template, net.prunable)
    w = {n: torch.randn(2, *net.get_weights()[n].shape[1:]) for n in net.prunable}
    with torch.no_grad():  # non-zero biases: removed units leave relu(b) behind
        for key, value in net.weights.items():
            if key.endswith("bias"):
                value.normal_()
    net.set_masks(prune_units(w, net.get_masks(), 0.2, "layer", chain))
    x = torch.randn(50, 20)
    for k in range(2):
        small = compact_mlp(net.ticket_parameters(k), chain, kept_units(net.get_masks(), chain, k))
        widths = [m.out_features for m in small if isinstance(m, nn.Linear)]
        assert widths[-1] == 5 and widths[0] < 32 and widths[1] < 16
        with torch.no_grad():
            torch.testing.assert_close(small(x), net.forward_ticket(x, k), atol=1e-5, rtol=0)


@pytest.mark.parametrize("ticket_batchnorm", [True, False])
def test_compact_cnn_computes_the_masked_ticket(ticket_batchnorm):
    torch.manual_seed(0)
    template = SmallCNN(1, 4, channels=(6, 8), input_hw=(8, 8))
    net = make_ticket_network(template, 2, find_prunable(template), ticket_batchnorm)
    net.train()
    with torch.no_grad():  # running statistics away from their initial values
        for _ in range(3):
            net(torch.randn(16, 1, 8, 8), torch.tensor([0, 1] * 8))
    chain = unit_chain(net.template, net.prunable)
    w = {n: torch.randn(2, *net.get_weights()[n].shape[1:]) for n in net.prunable}
    net.set_masks(prune_units(w, net.get_masks(), 0.3, "layer", chain))
    net.eval()
    x = torch.randn(10, 1, 8, 8)
    for k in range(2):
        keep = kept_units(net.get_masks(), chain, k)
        assert [int(u.sum()) for u in keep] < [6, 8]
        small = compact_cnn(net.template, net.ticket_parameters(k), keep).eval()
        with torch.no_grad():
            torch.testing.assert_close(small(x), net.forward_ticket(x, k), atol=1e-5, rtol=0)
