import numpy as np
import pytest
import torch

from sklearn_rtl._tickets import (
    density_schedule,
    full_masks,
    pack_masks,
    prune_by_magnitude,
    ticket_kept_counts,
    union_kept_count,
    unpack_masks,
)


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
    masks = full_masks({"a": (1, 4), "b": (1, 2)}, n_tickets=2)
    new = prune_by_magnitude(weights, masks, density=0.5, scope="layer")
    assert new["a"][0].int().tolist() == [[0, 1, 0, 1]]
    assert new["a"][1].int().tolist() == [[1, 0, 1, 0]]
    assert new["b"][0].int().tolist() == [[1, 0]]
    assert new["b"][1].int().tolist() == [[0, 1]]
    # inputs untouched
    assert masks["a"].all() and masks["b"].all()


def test_global_pruning_ranks_across_layers():
    weights = {"a": torch.tensor([[1.0, 2.0, 3.0]]), "b": torch.tensor([[10.0, 20.0, 30.0]])}
    masks = full_masks({"a": (3,), "b": (3,)}, n_tickets=1)
    new = prune_by_magnitude(weights, masks, density=0.5, scope="global")
    assert new["a"].int().tolist() == [[0, 0, 0]]
    assert new["b"].int().tolist() == [[1, 1, 1]]
    layer = prune_by_magnitude(weights, masks, density=0.5, scope="layer")
    assert layer["a"].int().tolist() == [[0, 1, 1]]


def test_pruned_weights_are_never_revived():
    weights = {"a": torch.tensor([[9.0, 0.1, 0.2, 0.3]])}
    masks = {"a": torch.tensor([[False, True, True, True]])}
    new = prune_by_magnitude(weights, masks, density=0.5, scope="layer")
    assert new["a"].int().tolist() == [[0, 0, 1, 1]]


def test_bad_scope_raises():
    with pytest.raises(ValueError, match="scope"):
        prune_by_magnitude({"a": torch.ones(1, 2)}, {"a": torch.ones(1, 2, dtype=bool)}, 0.5, "x")


def test_counts_union_and_packing_round_trip():
    masks = {
        "a": torch.tensor([[True, False, True], [True, True, False]]),
        "b": torch.tensor([[[False]], [[True]]]),
    }
    assert ticket_kept_counts(masks).tolist() == [2, 3]
    assert union_kept_count(masks) == 4
    unpacked = unpack_masks(pack_masks(masks))
    for name in masks:
        assert torch.equal(unpacked[name], masks[name])
