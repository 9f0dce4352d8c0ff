"""TicketSet and magnitude pruning on tiny tensors, answers computed by hand."""

import numpy as np
import pytest
import torch

from sklearn_rtl import TicketSet, density_schedule, prune_by_magnitude


def test_density_schedule_is_geometric_and_lands_exactly():
    densities = density_schedule(0.8, 4)
    assert len(densities) == 4
    assert densities[-1] == 1.0 - 0.8
    ratios = np.array(densities[1:]) / np.array(densities[:-1])
    np.testing.assert_allclose(ratios, densities[0], rtol=1e-12)
    assert densities == sorted(densities, reverse=True)


def test_density_schedule_zero_sparsity_keeps_everything():
    assert density_schedule(0.0, 3) == [1.0, 1.0, 1.0]


def test_layer_pruning_hand_computed():
    weights = {
        "a": torch.tensor([[[0.1, -0.9, 0.3, 0.4]], [[5.0, 1.0, -2.0, 0.5]]]),
        "b": torch.tensor([[[2.0, 0.0]], [[0.01, -0.02]]]),
    }
    tickets = TicketSet.full({"a": (1, 4), "b": (1, 2)}, n_tickets=2)
    new = tickets.prune(weights, density=0.5, scope="layer")
    assert new.masks["a"][0].int().tolist() == [[0, 1, 0, 1]]
    assert new.masks["a"][1].int().tolist() == [[1, 0, 1, 0]]
    assert new.masks["b"][0].int().tolist() == [[1, 0]]
    assert new.masks["b"][1].int().tolist() == [[0, 1]]
    # a new value: the input set is untouched
    assert tickets.masks["a"].all() and tickets.masks["b"].all()


def test_global_pruning_ranks_across_layers():
    weights = {"a": torch.tensor([[1.0, 2.0, 3.0]]), "b": torch.tensor([[10.0, 20.0, 30.0]])}
    tickets = TicketSet.full({"a": (3,), "b": (3,)}, n_tickets=1)
    new = tickets.prune(weights, density=0.5, scope="global")
    assert new.masks["a"].int().tolist() == [[0, 0, 0]]
    assert new.masks["b"].int().tolist() == [[1, 1, 1]]
    layer = tickets.prune(weights, density=0.5, scope="layer")
    assert layer.masks["a"].int().tolist() == [[0, 1, 1]]


def test_pruned_weights_are_never_revived():
    weights = {"a": torch.tensor([[9.0, 0.1, 0.2, 0.3]])}
    tickets = TicketSet({"a": torch.tensor([[False, True, True, True]])})
    assert tickets.prune(weights, density=0.5).masks["a"].int().tolist() == [[0, 0, 1, 1]]


def test_bad_scope_raises():
    with pytest.raises(ValueError, match="scope"):
        prune_by_magnitude({"a": torch.ones(1, 2)}, {"a": torch.ones(1, 2, dtype=bool)}, 0.5, "x")


def test_empty_ticket_set_is_refused():
    with pytest.raises(ValueError, match="at least one prunable layer"):
        TicketSet({})


@pytest.fixture
def two_tickets():
    # ticket 0 keeps a0, a2, b0; ticket 1 keeps a0, a1, b1, b2 (6 prunable weights)
    return TicketSet(
        {
            "a": torch.tensor([[True, False, True], [True, True, False]]),
            "b": torch.tensor([[True, False, False], [False, True, True]]),
        }
    )


def test_counts_union_and_density(two_tickets):
    assert two_tickets.n_tickets == 2 and two_tickets.n_prunable == 6
    assert two_tickets.kept().tolist() == [3, 4]
    assert {n: u.int().tolist() for n, u in two_tickets.union().items()} == {
        "a": [1, 1, 1],
        "b": [1, 1, 1],
    }
    assert two_tickets.n_union == 6
    assert two_tickets.density == pytest.approx(3.5 / 6)
    np.testing.assert_allclose(two_tickets.ticket_sparsity(), [0.5, 1 / 3])
    layer = two_tickets.layer_sparsity()
    np.testing.assert_allclose(layer["a"], [1 / 3, 1 / 3])
    np.testing.assert_allclose(layer["b"], [2 / 3, 1 / 3])


def test_similarity_hand_computed(two_tickets):
    # overall: intersection {a0} = 1, union 6 -> 1/6; layer a: 1/3; layer b: 0/3
    similarity = two_tickets.similarity()
    np.testing.assert_allclose(similarity, [[1, 1 / 6], [1 / 6, 1]])
    layers = two_tickets.layer_similarity()
    assert layers["a"][0, 1] == pytest.approx(1 / 3)
    assert layers["b"][0, 1] == 0.0


def test_round_record_hand_computed(two_tickets):
    record = two_tickets.round_record(2)
    assert record["round"] == 2
    assert record["sparsity"] == pytest.approx(1 - 3.5 / 6)
    assert record["similarity"] == pytest.approx(1 / 6)
    np.testing.assert_allclose(record["ticket_similarity"], [1 / 6, 1 / 6])
    assert record["layer_similarity"] == pytest.approx({"a": 1 / 3, "b": 0.0})
    d = 3.5 / 6
    assert record["random_similarity"] == pytest.approx(d / (2 - d))


def test_ticket_and_pack_round_trip(two_tickets):
    assert {n: m.tolist() for n, m in two_tickets.ticket(1).items()} == {
        "a": [True, True, False],
        "b": [False, True, True],
    }
    packed = two_tickets.pack()
    assert packed["a"][1].nbytes == 1  # 6 bits in one byte
    assert TicketSet.unpack(packed) == two_tickets
    assert TicketSet.unpack(packed) != TicketSet.full({"a": (3,), "b": (3,)}, 2)


# ------------------------------------------- mutation-testing survivors (docs/mutation.md)
def test_keep_top_breaks_ties_by_position():
    """Equal magnitudes (e.g. weights rewound to one value) keep the earliest entries, so
    pruning is deterministic: a stable sort, on a tensor long enough for torch's CPU sort
    to be unstable otherwise."""
    from sklearn_rtl._tickets import _keep_top

    kept = _keep_top(torch.ones(100_000), 50_000)
    assert kept[:50_000].all() and not kept[50_000:].any()
    assert not _keep_top(torch.ones(3), 0).any()


def test_prune_by_magnitude_default_scope_is_per_layer_and_rejects_others():
    from sklearn_rtl._tickets import prune_by_magnitude

    weights = {"a": torch.tensor([[1.0, 2.0, 3.0, 4.0]]), "b": torch.tensor([[10.0, 20.0]])}
    masks = {name: torch.ones_like(w, dtype=torch.bool) for name, w in weights.items()}
    default = prune_by_magnitude(weights, masks, density=0.5)
    assert default["a"].int().tolist() == [[0, 0, 1, 1]] and default["b"].int().tolist() == [[0, 1]]
    with pytest.raises(ValueError, match=r"^scope must be 'layer' or 'global', got 'x'\.$"):
        prune_by_magnitude(weights, masks, density=0.5, scope="x")


# ------------------------------------------------- tests added from mutation testing
def test_global_pruning_of_weights_below_one():
    # magnitudes below 1 (the usual case): the count of survivors must not depend on them
    weights = {"a": torch.tensor([[0.1, 0.2, 0.3]]), "b": torch.tensor([[0.4, 0.5, 0.6]])}
    tickets = TicketSet.full({"a": (3,), "b": (3,)}, n_tickets=1)
    pruned = tickets.prune(weights, density=0.5, scope="global")
    assert pruned.masks["a"].int().tolist() == [[0, 0, 0]]
    assert pruned.masks["b"].int().tolist() == [[1, 1, 1]]


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_a_higher_density_never_revives_pruned_weights(scope):
    weights = {"a": torch.tensor([[9.0, 0.1, 0.2, 0.3]])}
    tickets = TicketSet({"a": torch.tensor([[False, True, True, True]])})
    assert tickets.prune(weights, density=1.0, scope=scope).masks["a"].int().tolist() == [
        [0, 1, 1, 1]
    ]


def test_one_ticket_set_counts_and_records():
    one = TicketSet({"a": torch.tensor([[True, False, True, True]])})
    assert one.n_prunable == 4 and one.density == 0.75
    record = one.round_record(1)
    assert sorted(record) == [
        "layer_similarity",
        "random_similarity",
        "round",
        "similarity",
        "sparsity",
        "ticket_similarity",
        "ticket_sparsity",
    ]
    np.testing.assert_allclose(record["ticket_sparsity"], [0.25])


def test_equality_and_repr(two_tickets):
    assert (two_tickets == "not a ticket set") is False
    assert two_tickets != TicketSet({"other": torch.ones(2, 3, dtype=torch.bool)})
    assert repr(two_tickets) == "TicketSet(n_tickets=2, layers=2, density=0.5833)"
