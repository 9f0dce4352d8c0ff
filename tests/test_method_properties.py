"""The method's defining properties, each stated directly on a fitted estimator.

Each test here fails when the property is broken by hand (see ``docs/mutation.md``):

* independent copies (``share_weights=False``) are trained apart: they differ on the union
  of their masks, and each copy outside its own mask is still ``theta0``, bitwise;
* every pruning round and the joint retraining start from the rewind point (``theta0`` or
  the ``rewind_epoch`` weights), bitwise, in every weight copy;
* under label routing ``predict_proba`` is the detectors' sigmoids, normalised;
* ``sparsity="auto"`` retrains the masks of the round its held-out scores choose.
"""

import numpy as np
import pytest
import torch
from _fit_spy import FitSpy
from sklearn.datasets import make_blobs

from conftest import small_rtl
from sklearn_rtl import RTLClassifier

TINY = dict(hidden_layer_sizes=(16, 8), batch_size=32, n_prune_rounds=2)


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=150, centers=3, n_features=4, random_state=0)
    return X.astype(np.float32), y


def _bitwise_equal(a, b):
    return a.shape == b.shape and a.numpy().tobytes() == b.numpy().tobytes()


def test_independent_copies_train_apart_and_keep_theta0_outside_their_masks(blobs, monkeypatch):
    spy = FitSpy(monkeypatch)
    X, y = blobs
    clf = small_rtl(share_weights=False, n_clusters=3, sparsity=0.6, **TINY).fit(X, y)
    assert clf.net_.module_.n_copies == clf.n_tickets_ == 3
    for name, masks in spy.masks.items():
        weights, theta0 = spy.trained[name], spy.theta0[name]
        assert weights.shape == (3, *theta0.shape)
        for k in range(3):
            outside = ~masks[k]
            assert outside.any()
            assert _bitwise_equal(weights[k][outside], theta0[outside]), (name, k)
        for j in range(3):
            for k in range(j + 1, 3):
                union = masks[j] | masks[k]
                assert not torch.equal(weights[j][union], weights[k][union]), (name, j, k)


@pytest.mark.parametrize("rewind_epoch", [0, 1])
@pytest.mark.parametrize("share_weights", [True, False])
def test_every_stage_starts_from_the_rewind_point(blobs, monkeypatch, rewind_epoch, share_weights):
    spy = FitSpy(monkeypatch)
    X, y = blobs
    small_rtl(
        n_clusters=3, sparsity=0.6, rewind_epoch=rewind_epoch, share_weights=share_weights, **TINY
    ).fit(X, y)
    names = [name for name, *_ in spy.stage_starts]
    expected = ["prune_round_1", "prune_round_2", "retrain"]
    assert names == (["rewind"] if rewind_epoch else []) + expected
    if rewind_epoch:
        # the rewind point is not theta0 but the weights after the dense epochs
        assert any(not torch.equal(spy.rewind[n], spy.theta0[n]) for n in spy.theta0)
    else:
        assert all(_bitwise_equal(spy.rewind[n], spy.theta0[n]) for n in spy.theta0)
    for stage, weights, masks in spy.stage_starts:
        point = spy.theta0 if stage == "rewind" else spy.rewind
        # untied stages train with every copy's pruned weights zeroed in place (premask)
        untied = stage.startswith("prune_round") or (stage == "retrain" and not share_weights)
        assert (masks is not None) == untied, stage
        for name, copies in weights.items():
            assert len(copies) == 3  # one copy per ticket, every one rewound
            for k, copy in enumerate(copies):
                expected = point[name]
                if masks is not None and name in masks:
                    expected = torch.where(masks[name][k], expected, 0.0)
                assert _bitwise_equal(copy, expected), (stage, name)


def test_label_predict_proba_is_the_normalised_sigmoids(blobs):
    X, y = blobs
    clf = small_rtl(routing="label", sparsity=0.5, **TINY).fit(X, y)
    with torch.no_grad():
        logits = clf.net_.module_(torch.tensor(X), None)[..., 0].double().numpy()
    assert logits.shape == (len(X), 3)
    sigmoid = 1.0 / (1.0 + np.exp(-logits))
    expected = sigmoid / sigmoid.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(clf.predict_proba(X), expected, rtol=1e-5, atol=1e-7)
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert np.abs(expected - softmax).max() > 1e-3  # the test can tell the two apart


def test_auto_sparsity_retrains_the_round_the_scores_choose(blobs, monkeypatch):
    """Scores (dense, round 1, ..., round 4) = 0.80, 0.85, 0.86, 0.50, 0.45: the drop
    from round 3 on persists, so pruning stops after round 4 and round 2 is retrained."""
    scripted = iter([0.80, 0.85, 0.86, 0.50, 0.45])
    calls = []

    def score(self, model, targets, X_val, y_val, groups_val):
        calls.append(model.network.tickets.density)
        return next(scripted), np.full(model.network.n_tickets, 0.5)

    monkeypatch.setattr(RTLClassifier, "_held_out_score", score)
    spy = FitSpy(monkeypatch)
    X, y = blobs
    clf = small_rtl(
        n_clusters=3, sparsity="auto", sparsity_ceiling=0.9, **{**TINY, "n_prune_rounds": 4}
    ).fit(X, y)
    assert len(calls) == 5 and calls[0] == 1.0
    assert clf.auto_round_ == 2
    assert len(spy.rounds) == 5  # rounds 0..4 were pruned, none after the stop
    fitted = clf.net_.module_.get_masks()
    for name, chosen in spy.rounds[2].items():
        np.testing.assert_array_equal(fitted[name].numpy(), chosen, err_msg=name)
        assert not np.array_equal(chosen, spy.rounds[1][name])
        assert not np.array_equal(chosen, spy.rounds[3][name])
    np.testing.assert_allclose(clf.ticket_sparsity_, 1 - calls[2], atol=0.01)
