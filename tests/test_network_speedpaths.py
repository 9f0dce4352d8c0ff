"""The fast paths of TicketNetwork / TicketNet match the generic ones.

The batched Linear/ReLU path (one masked weight tensor per layer, bmm over tickets) must
give the generic ``functional_call`` path's outputs and gradients (allclose), the masked
update must still leave weights outside every mask bitwise unchanged (with the fused
optimizer too), and pickling (bit-packed masks) must round-trip exactly.
"""

import io
import pickle

import numpy as np
import pytest
import torch
from torch import nn

from sklearn_rtl import MLP, TicketNetwork, find_prunable
from sklearn_rtl._network import _linear_relu_plan
from sklearn_rtl._tickets import prune_by_magnitude


def _network(n_tickets=3, n_copies=1, template=None, seed=0):
    torch.manual_seed(seed)
    template = template if template is not None else MLP(6, (8, 5), 4)
    network = TicketNetwork(template, n_tickets, find_prunable(template))
    weights = {n: w[0] for n, w in network.get_weights().items()}
    network.set_weights(weights, n_copies=n_copies)
    with torch.no_grad():
        for p in network.weights.values():
            p.add_(torch.randn_like(p) * 0.1)  # copies differ when n_copies > 1
    masks = prune_by_magnitude(
        {n: torch.randn_like(m, dtype=torch.float32) for n, m in network.get_masks().items()},
        network.get_masks(),
        density=0.5,
    )
    network.set_masks(masks)
    return network


def _both(network, X, ticket):
    network.fast_path = True
    fast = network(X, ticket)
    network.fast_path = False
    generic = network(X, ticket)
    network.fast_path = True
    return fast, generic


TICKETS = {
    "all": None,
    "balanced_sorted": torch.tensor([0, 0, 1, 1, 2, 2]),
    "balanced_shuffled": torch.tensor([2, 0, 1, 0, 2, 1]),
    "unequal": torch.tensor([1, 0, 0, 2, 0, 1]),
    "one_ticket": torch.tensor([1, 1, 1, 1, 1, 1]),
    "two_of_three": torch.tensor([2, 0, 2, 0, 0, 2]),
}


@pytest.mark.parametrize("n_copies", [1, 3])
@pytest.mark.parametrize("case", sorted(TICKETS))
def test_fast_forward_matches_generic(n_copies, case):
    network = _network(n_copies=n_copies)
    assert network.plan_ is not None
    X = torch.randn(6, 6)
    fast, generic = _both(network, X, TICKETS[case])
    assert fast.shape == generic.shape
    torch.testing.assert_close(fast, generic, rtol=1e-5, atol=1e-6)
    if TICKETS[case] is None:
        assert fast.shape == (6, 3, 4)


@pytest.mark.parametrize("n_copies", [1, 3])
def test_fast_gradients_match_generic(n_copies):
    network = _network(n_copies=n_copies)
    X = torch.randn(6, 6)
    grads = []
    for fast in (True, False):
        network.fast_path = fast
        network.zero_grad()
        network(X, TICKETS["balanced_shuffled"]).square().sum().backward()
        grads.append({k: p.grad.clone() for k, p in network.weights.items()})
    for key in grads[0]:
        torch.testing.assert_close(grads[0][key], grads[1][key], rtol=1e-5, atol=1e-6)


def test_plan_detection():
    assert _linear_relu_plan(MLP(3, (4,), 2), [n for n, _ in MLP(3, (4,), 2).named_parameters()])
    seq = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Sequential(nn.Linear(4, 2, bias=False)))
    assert TicketNetwork(seq, 2, find_prunable(seq)).plan_ is not None
    tanh = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    assert TicketNetwork(tanh, 2, find_prunable(tanh)).plan_ is None


def test_sequential_without_bias_matches_generic():
    seq = nn.Sequential(nn.Linear(6, 8, bias=False), nn.ReLU(), nn.Linear(8, 4))
    network = _network(template=seq)
    for ticket in TICKETS.values():
        fast, generic = _both(network, torch.randn(6, 6), ticket)
        torch.testing.assert_close(fast, generic, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("tied", [False, True])
def test_masked_update_invariant_with_fused_adam(tied):
    network = _network(n_copies=3)
    if tied:
        weights = {n: w[0] for n, w in network.get_weights().items()}
        network.set_weights(weights, n_copies=3)
    optimizer = torch.optim.Adam(network.parameters(), lr=0.1, weight_decay=0.5, fused=True)
    masks = network.get_masks()
    start = {n: w.clone() for n, w in network.get_weights().items()}
    X, ticket = torch.randn(6, 6), TICKETS["balanced_shuffled"]
    for _ in range(3):
        before = network.snapshot(prunable_only=not tied)
        optimizer.zero_grad()
        network(X, ticket).square().sum().backward()
        optimizer.step()
        network.masked_update(before, tied=tied)
    now = network.get_weights()
    for name, mask in masks.items():
        outside = ~mask.any(0) if tied else ~mask
        w0, w1 = start[name], now[name]
        if tied:
            assert torch.equal(w1[:, outside], w0[:, outside])
            assert all(torch.equal(w1[0], w1[k]) for k in range(1, 3))
        else:
            assert torch.equal(w1[outside], w0[outside])
        assert not torch.equal(w1, w0)


def test_pickle_bit_packs_masks_and_round_trips():
    network = _network(n_tickets=8, n_copies=1, template=MLP(50, (64,), 3))
    network.eval()
    blob = pickle.dumps(network)
    restored = pickle.loads(blob)
    X = torch.randn(20, 50)
    ticket = torch.arange(20) % 8
    assert torch.equal(restored(X, ticket), network(X, ticket))
    for name, mask in network.get_masks().items():
        assert restored.get_masks()[name].dtype == torch.bool
        assert torch.equal(restored.get_masks()[name], mask)
    bool_bytes = sum(m.numel() for m in network.get_masks().values())
    weight_bytes = sum(w.numel() * 4 for w in network.get_weights().values())
    assert len(blob) < weight_bytes + bool_bytes / 8 + 8192  # bool bytes would be 25600
    # torch.save (what skorch uses for the module) goes through the same state.
    buffer = io.BytesIO()
    torch.save(network, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    assert torch.equal(loaded(X, ticket), network(X, ticket))


def test_fit_uses_fused_optimizer_unless_user_chooses(monkeypatch):
    from sklearn_rtl import RTLClassifier
    from sklearn_rtl._training import TicketNet

    seen = []
    original = TicketNet.initialize_optimizer

    def spy(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        seen.append(self.optimizer_.defaults.get("fused"))
        return result

    monkeypatch.setattr(TicketNet, "initialize_optimizer", spy)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 5)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    kw = dict(hidden_layer_sizes=(8,), n_clusters=2, n_prune_rounds=1, max_epochs=1, random_state=0)
    clf = RTLClassifier(**kw).fit(X, y)
    assert seen and all(fused is True for fused in seen)
    assert clf.net_.optimizer_ is None  # the fitted model keeps no optimizer state
    seen.clear()
    RTLClassifier(optimizer_params={"foreach": False}, **kw).fit(X, y)
    assert seen and not any(seen)
