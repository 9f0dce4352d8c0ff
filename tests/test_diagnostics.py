import numpy as np
import pytest

from sklearn_rtl import (
    collapse_score,
    jaccard,
    layer_similarity,
    random_mask_jaccard,
    similarity_matrix,
    ticket_similarity,
)


def test_jaccard_hand_computed():
    assert jaccard([1, 1, 0, 0], [1, 0, 1, 0]) == pytest.approx(1 / 3)
    assert jaccard([1, 1], [1, 1]) == 1.0
    assert jaccard([1, 0], [0, 1]) == 0.0
    assert jaccard([0, 0], [0, 0]) == 1.0
    with pytest.raises(ValueError, match="same shape"):
        jaccard([1, 0], [1, 0, 1])


def test_similarity_matrix_over_layers_matches_pairwise_jaccard():
    rng = np.random.default_rng(0)
    masks = {"a": rng.random((3, 4, 5)) > 0.5, "b": rng.random((3, 7)) > 0.3}
    matrix = similarity_matrix(masks)
    flat = np.concatenate([masks["a"].reshape(3, -1), masks["b"]], axis=1)
    for i in range(3):
        for j in range(3):
            expected = 1.0 if i == j else jaccard(flat[i], flat[j])
            assert matrix[i, j] == pytest.approx(expected)
    layers = layer_similarity(masks)
    assert set(layers) == {"a", "b"}
    assert layers["b"][0, 1] == pytest.approx(jaccard(masks["b"][0], masks["b"][1]))


def test_ticket_similarity_and_collapse_score():
    sim = np.array([[1.0, 0.2, 0.4], [0.2, 1.0, 0.6], [0.4, 0.6, 1.0]])
    np.testing.assert_allclose(ticket_similarity(sim), [0.3, 0.4, 0.5])
    assert collapse_score(sim) == pytest.approx(0.4)
    assert collapse_score([[1.0]]) == 1.0


def test_random_mask_jaccard_matches_simulation():
    rng = np.random.default_rng(0)
    density = 0.3
    a, b = rng.random((2, 200_000)) < density
    assert jaccard(a, b) == pytest.approx(random_mask_jaccard(density), abs=0.005)
    np.testing.assert_allclose(random_mask_jaccard(np.array([0.5, 1.0])), [1 / 3, 1.0])


# ------------------------------------------------- tests added from mutation testing
def test_similarity_of_empty_and_single_weight_masks():
    from sklearn_rtl import similarity_matrix, ticket_similarity

    # two empty masks are identical (Jaccard 1 by convention, as jaccard() says)
    np.testing.assert_array_equal(similarity_matrix([[0, 0], [0, 0]]), np.ones((2, 2)))
    # a union of one weight that only one ticket keeps: Jaccard 0
    assert similarity_matrix([[1, 0], [0, 0]])[0, 1] == 0.0
    assert ticket_similarity([[1.0]]).tolist() == [1.0]
