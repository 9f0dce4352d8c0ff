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


# ------------------------------------------------ when the fast path may (not) be taken
def _sequential(*layers):
    torch.manual_seed(0)
    return nn.Sequential(*layers)


def _names(module):
    return [name for name, _ in module.named_parameters()]


def test_plan_covers_a_plain_linear_stack_and_nothing_else():
    only_linear = _sequential(nn.Linear(3, 2))
    assert _linear_relu_plan(only_linear, _names(only_linear)) == [("linear", "0.weight", "0.bias")]
    # a Tanh after the last Linear: every parameter is seen, yet the plan cannot run it
    with_tanh = _sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2), nn.Tanh())
    assert _linear_relu_plan(with_tanh, _names(with_tanh)) is None
    network = TicketNetwork(with_tanh, 2, ["0.weight"])
    X, ticket = torch.randn(6, 3), torch.tensor([0, 1, 0, 1, 1, 0])
    fast, generic = _both(network, X, ticket)
    torch.testing.assert_close(fast, generic)  # the Tanh is applied, not skipped


@pytest.mark.parametrize("hook", ["forward", "relu_forward", "forward_pre", "full_backward"])
def test_a_module_with_hooks_takes_the_generic_path(hook):
    template = _sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    calls = []
    if hook == "forward":
        template[0].register_forward_hook(lambda m, i, out: out * 2.0)
    elif hook == "relu_forward":  # a hooked module without parameters
        template[1].register_forward_hook(lambda m, i, out: out - 1.0)
    elif hook == "forward_pre":
        template[0].register_forward_pre_hook(lambda m, i: (i[0] * 3.0,))
    else:
        template[0].register_full_backward_hook(lambda m, gi, go: calls.append(1))
    network = TicketNetwork(template, 2, ["0.weight"])
    assert network.plan_ is None
    X, ticket = torch.randn(6, 3), torch.tensor([0, 1, 0, 1, 1, 0])
    fast, generic = _both(network, X, ticket)
    torch.testing.assert_close(fast, generic)
    if hook == "full_backward":
        network(X.requires_grad_(), ticket).sum().backward()
        assert calls  # the user's hook ran


def test_the_default_mlp_takes_the_batched_path(monkeypatch):
    network = _network()
    assert network.fast_path is True and network.plan_ is not None

    def generic(*args, **kwargs):
        raise AssertionError("the generic path ran for a plain MLP")

    monkeypatch.setattr(network, "_forward_generic", generic)
    X = torch.randn(6, 6)
    assert network(X, torch.tensor([0, 0, 1, 1, 2, 2])).shape == (6, 4)
    assert network(X, None).shape == (6, 3, 4)


def test_two_tickets_with_their_own_weight_copies():
    network = _network(n_tickets=2, n_copies=2)
    X = torch.randn(4, 6)
    for ticket in ([0, 1, 1, 0], [0, 1, 1, 1]):  # balanced groups, then unequal ones
        fast, generic = _both(network, X, torch.tensor(ticket))
        torch.testing.assert_close(fast, generic)
    network.fast_path = False
    expected = network.forward_ticket(X, 1)
    network.fast_path = True
    torch.testing.assert_close(network(X, torch.tensor([1, 1, 1, 1])), expected)
    assert not torch.allclose(network.forward_ticket(X, 0), expected)  # copy 1, not copy 0


def test_every_ticket_on_every_row_with_a_dense_first_layer():
    # the first layer has one (shared, unmasked) copy and the tickets start differing after it
    torch.manual_seed(0)
    template = MLP(6, (8, 5), 4)
    network = TicketNetwork(template, 3, ["layers.2.weight"])
    masks = {"layers.2.weight": torch.rand(3, 5, 8) < 0.5}
    network.set_masks(masks)
    X = torch.randn(5, 6)
    fast, generic = _both(network, X, None)
    assert fast.shape == (5, 3, 4)
    torch.testing.assert_close(fast, generic)
