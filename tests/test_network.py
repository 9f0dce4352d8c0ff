import copy
import pickle

import pytest
import torch
from torch import nn

from sklearn_rtl import MLP, TicketNetwork, find_prunable


def make_network(n_tickets=3, seed=0):
    torch.manual_seed(seed)
    template = MLP(5, (7, 6), 4)
    return TicketNetwork(template, n_tickets, find_prunable(template))


def random_masks(network, density=0.5, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return {
        name: torch.rand(mask.shape, generator=generator) < density
        for name, mask in network.get_masks().items()
    }


def test_find_prunable_excludes_output_layer_and_biases():
    template = MLP(5, (7, 6), 4)
    assert find_prunable(template) == ["layers.0.weight", "layers.2.weight"]
    assert find_prunable(template, prune_output_layer=True)[-1] == "layers.4.weight"


def test_template_becomes_stateless_and_weights_are_stacked():
    network = make_network()
    assert list(network.template.parameters()) == []
    weights = network.get_weights()
    assert weights["layers.0.weight"].shape == (1, 7, 5)
    assert network.get_masks()["layers.0.weight"].shape == (3, 7, 5)
    assert network.get_masks()["layers.0.weight"].dtype == torch.bool


def test_routed_forward_equals_per_ticket_forward():
    network = make_network()
    network.set_masks(random_masks(network))
    X = torch.randn(20, 5)
    ticket = torch.tensor([0, 2, 1, 1, 0, 2, 2, 0, 1, 0] * 2)
    out = network(X, ticket)
    all_tickets = network(X)
    assert all_tickets.shape == (20, 3, 4)
    for i in range(20):
        expected = network.forward_ticket(X[i : i + 1], int(ticket[i]))[0]
        torch.testing.assert_close(out[i], expected)
        torch.testing.assert_close(all_tickets[i, int(ticket[i])], expected)


def test_masked_weight_does_not_change_the_output():
    network = make_network(n_tickets=1)
    masks = random_masks(network)
    network.set_masks(masks)
    X = torch.randn(8, 5)
    before = network(X, torch.zeros(8, dtype=torch.long))
    with torch.no_grad():
        weight = network.weights["layers__0__weight"]
        weight[0][~masks["layers.0.weight"][0]] = 1e6
    torch.testing.assert_close(network(X, torch.zeros(8, dtype=torch.long)), before)


@pytest.mark.parametrize("tied", [True, False])
def test_adam_never_moves_weights_outside_the_masks_bitwise(tied):
    network = make_network(n_tickets=3)
    masks = random_masks(network, density=0.3)
    network.set_masks(masks)
    theta = {n: w[0].clone() for n, w in network.get_weights().items()}
    network.set_weights(theta, n_copies=3)
    optimizer = torch.optim.Adam(network.parameters(), lr=0.1, weight_decay=0.1)
    initial = {n: w.clone() for n, w in network.get_weights().items()}
    X, ticket = torch.randn(30, 5), torch.arange(30) % 3
    for _ in range(5):
        before = network.snapshot()
        optimizer.zero_grad()
        network(X, ticket).pow(2).sum().backward()
        optimizer.step()
        network.masked_update(before, tied=tied)
    after = network.get_weights()
    for name, mask in masks.items():
        if tied:
            unused = ~mask.any(0)
            # every copy holds the same theta, and weights no ticket keeps are bitwise unchanged
            for k in range(1, 3):
                assert torch.equal(after[name][k], after[name][0])
            assert torch.equal(after[name][0][unused], initial[name][0][unused])
            assert not torch.equal(after[name][0][~unused], initial[name][0][~unused])
        else:
            for k in range(3):
                assert torch.equal(after[name][k][~mask[k]], initial[name][k][~mask[k]])
                assert not torch.equal(after[name][k][mask[k]], initial[name][k][mask[k]])


def test_tied_update_is_sum_of_ticket_updates():
    network = make_network(n_tickets=2)
    network.set_masks(random_masks(network, density=0.6))
    network.set_weights({n: w[0] for n, w in network.get_weights().items()}, n_copies=2)
    before = network.snapshot()
    with torch.no_grad():
        for _key, param in network.weights.items():
            param[0] += 1.0
            param[1] += 2.0
    network.masked_update(before, tied=True)
    masks = network.get_masks()
    for name, weight in network.get_weights().items():
        old = before[name.replace(".", "__")][0]
        if name in masks:
            expected = old + masks[name][0].float() * 1.0 + masks[name][1].float() * 2.0
        else:
            expected = old + 3.0
        torch.testing.assert_close(weight[0], expected)


def test_rewind_restores_theta0_on_survivors():
    network = make_network(n_tickets=2)
    theta0 = {n: w[0].clone() for n, w in network.get_weights().items()}
    with torch.no_grad():
        for param in network.weights.values():
            param.add_(torch.randn_like(param))
    network.set_weights(theta0, n_copies=2)
    for name, weight in network.get_weights().items():
        assert weight.shape[0] == 2
        for k in range(2):
            assert torch.equal(weight[k], theta0[name])


def test_share_keeps_one_copy():
    network = make_network(n_tickets=4)
    network.set_weights({n: w[0] for n, w in network.get_weights().items()}, n_copies=4)
    assert network.n_copies == 4
    network.share()
    assert network.n_copies == 1


def test_network_deepcopies_and_pickles():
    network = make_network()
    network.set_masks(random_masks(network))
    X, ticket = torch.randn(6, 5), torch.tensor([0, 1, 2, 0, 1, 2])
    expected = network(X, ticket)
    for other in (copy.deepcopy(network), pickle.loads(pickle.dumps(network))):
        assert torch.equal(other(X, ticket), expected)


def test_batchnorm_template_runs():
    torch.manual_seed(0)
    template = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    network = TicketNetwork(template, 2, find_prunable(template))
    out = network(torch.randn(10, 4), torch.tensor([0, 1] * 5))
    assert out.shape == (10, 3)


def test_untied_update_leaves_absent_tickets_untouched_bitwise():
    network = make_network(n_tickets=3)
    network.set_masks(random_masks(network, density=0.5))
    network.set_weights({n: w[0] for n, w in network.get_weights().items()}, n_copies=3)
    optimizer = torch.optim.Adam(network.parameters(), lr=0.1)
    X = torch.randn(12, 5)
    # a few steps with every ticket, so Adam has momentum for all of them
    for _ in range(3):
        before = network.snapshot()
        optimizer.zero_grad()
        network(X, torch.arange(12) % 3).pow(2).sum().backward()
        optimizer.step()
        network.masked_update(before, tied=False)
    frozen = {n: w[1].clone() for n, w in network.get_weights().items()}
    moving = {n: w[0].clone() for n, w in network.get_weights().items()}
    # now a step where ticket 1 has no samples: its momentum must not move it
    before = network.snapshot()
    optimizer.zero_grad()
    network(X[:8], torch.tensor([0, 2] * 4)).pow(2).sum().backward()
    optimizer.step()
    network.masked_update(before, tied=False, present=torch.tensor([0, 2]))
    after = network.get_weights()
    for name in after:
        assert torch.equal(after[name][1], frozen[name])
    assert any(not torch.equal(after[n][0], moving[n]) for n in after)


def test_tied_update_sees_masks_changed_between_steps():
    # masked_update caches the union of the masks; a weight that no ticket kept must move
    # once a new mask keeps it (the cache follows every write to the masks)
    network = make_network(n_tickets=2)
    network.set_weights({n: w[0] for n, w in network.get_weights().items()}, n_copies=2)
    name = "layers.0.weight"

    def step():
        before = network.snapshot()
        with torch.no_grad():
            for param in network.weights.values():
                param.add_(1.0)
        network.masked_update(before, tied=True)
        return before[name.replace(".", "__")][0, 0, 0], network.get_weights()[name][0, 0, 0]

    masks = {n: torch.ones_like(m) for n, m in network.get_masks().items()}
    masks[name][:, 0, 0] = False
    network.set_masks(masks)
    old, new = step()
    assert new == old  # kept by no ticket: does not move
    masks[name][:, 0, 0] = True
    network.set_masks(masks)
    old, new = step()
    assert new == pytest.approx(float(old) + 2.0)  # kept by both tickets: both updates
    network.get_masks()[name][:, 0, 0] = False  # written in place, not via set_masks
    old, new = step()
    assert new == old
