"""Collapse detection (label-free and held-out) and the reproduction experiments' quick runs."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

from sklearn_rtl import (
    RTLClassifier,
    collapse_from_scores,
    detect_collapse,
    drop_persists,
    similarity_lift,
)

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def test_collapse_from_scores():
    assert collapse_from_scores([0.9, 0.91, 0.9, 0.85, 0.5]) == 3
    assert collapse_from_scores([0.9, 0.89, 0.9]) is None
    assert collapse_from_scores([0.9, 0.5], tol=0.5) is None
    assert collapse_from_scores([0.9]) is None
    assert collapse_from_scores([0.9, 0.85, 0.9, 0.5]) == 3  # a dip that recovers


def test_drop_persists():
    assert drop_persists([0.9, 0.8, 0.7])
    assert not drop_persists([0.9, 0.8, 0.9])
    assert not drop_persists([0.9, 0.8])
    assert drop_persists([0.9, 0.8], patience=1)


def _curve(densities, sims):
    return [
        {"sparsity": 1 - d, "similarity": j, "layer_similarity": {"a": j, "b": j}}
        for d, j in zip(densities, sims, strict=False)
    ]


def test_detect_collapse_plateau_and_rise():
    d = [0.5, 0.25, 0.125, 0.0625]
    assert detect_collapse(_curve(d, [0.8, 0.6, 0.4, 0.2])) is None
    assert detect_collapse(_curve(d, [0.8, 0.6, 0.59, 0.5])) == 2  # stops falling
    assert detect_collapse(_curve(d, [0.8, 0.6, 0.65, 0.2]), rule="rise") == 2
    assert detect_collapse(_curve(d, [0.8, 0.6, 0.65, 0.2]), rule="rise", rise=0.1) is None
    assert detect_collapse(_curve(d, [1.0] * 4)) is None  # single ticket
    curve = _curve(d, [0.8, 0.6, 0.4, 0.2])
    curve[2]["layer_similarity"]["b"] = 0.6  # one layer plateaus
    assert detect_collapse(curve) == 2
    with pytest.raises(ValueError):
        detect_collapse(curve, rule="spike")


def test_similarity_lift():
    lift = similarity_lift(
        [
            {"similarity": 0.5, "random_similarity": 0.25},
            {"similarity": 0.1, "random_similarity": 0.1},
        ]
    )
    np.testing.assert_allclose(lift, [2.0, 1.0])


def _plateau_by_hand(curve, min_elasticity=0.13):
    """First round where some layer's Jaccard falls by less than ``d ** 0.13``."""
    for i in range(1, len(curve)):
        step = np.log((1 - curve[i]["sparsity"]) / (1 - curve[i - 1]["sparsity"]))
        for name, j in curve[i]["layer_similarity"].items():
            previous = curve[i - 1]["layer_similarity"][name]
            if np.log(max(j, 1e-12) / max(previous, 1e-12)) / step < min_elasticity:
                return i
    return None


def _jaccard(a, b):
    return (a & b).sum() / (a | b).sum()


def test_fitted_collapse_attributes(monkeypatch):
    X, y = load_digits(return_X_y=True)
    params = dict(hidden_layer_sizes=(16,), n_clusters=2, sparsity=0.9, n_prune_rounds=3,
                  max_epochs=1, random_state=0, min_cluster_size=0)  # fmt: skip
    clf = RTLClassifier(**params).fit(X[:300] / 16, y[:300])
    curve = clf.collapse_curve_
    # the last record describes the fitted masks: its Jaccard, computed by hand
    a, b = (np.concatenate([m[n].ravel() for n in sorted(m)]) for m in clf.masks_)
    assert curve[-1]["similarity"] == pytest.approx(_jaccard(a, b))
    for name in clf.masks_[0]:
        by_hand = _jaccard(clf.masks_[0][name], clf.masks_[1][name])
        assert curve[-1]["layer_similarity"][name] == pytest.approx(by_hand)
    np.testing.assert_allclose([r["sparsity"] for r in curve], [0.536, 0.785, 0.9], atol=0.01)
    index = _plateau_by_hand(curve)
    assert clf.collapse_detected_ is (index is not None)
    expected = None if index is None else curve[index]["sparsity"]
    assert clf.collapse_sparsity_ == expected
    assert "val_score" not in curve[0]  # no validation unless asked
    # the attributes report the rule's round, whichever it is
    import sklearn_rtl._base as base

    monkeypatch.setattr(base, "detect_collapse", lambda curve: 1)
    clf = RTLClassifier(**params).fit(X[:300] / 16, y[:300])
    assert clf.collapse_detected_ is True
    assert clf.collapse_sparsity_ == clf.collapse_curve_[1]["sparsity"]
    monkeypatch.setattr(base, "detect_collapse", lambda curve: None)
    clf = RTLClassifier(**params).fit(X[:300] / 16, y[:300])
    assert clf.collapse_detected_ is False and clf.collapse_sparsity_ is None


def _ovr_balanced_accuracy(truth, fires):
    return (np.mean(fires[truth]) + np.mean(~fires[~truth])) / 2


def test_validation_curve_records(monkeypatch):
    """Every record's held-out scores are those of its round's masks on the held-out rows:
    the balanced accuracy of the routed prediction and, per detector, its one-vs-rest
    balanced accuracy, both recomputed by hand from the network's outputs while the
    round's copies are trained."""
    recorded = []
    original = RTLClassifier._held_out_score

    def spy(self, model, targets, X_val, y_val, groups_val):
        score, per_ticket = original(self, model, targets, X_val, y_val, groups_val)
        logits = model.outputs(X_val)[..., 0]  # (n_val, n_detectors)
        y_index = np.searchsorted(targets["classes_"], y_val)
        predicted = logits.argmax(1)
        recalls = [np.mean(predicted[y_index == c] == c) for c in np.unique(y_index)]
        assert score == pytest.approx(np.mean(recalls))
        fires = logits > 0
        by_hand = [_ovr_balanced_accuracy(y_index == k, fires[:, k]) for k in range(10)]
        np.testing.assert_allclose(per_ticket, by_hand)
        recorded.append((score, per_ticket, model.network.tickets.density, len(y_val)))
        return score, per_ticket

    monkeypatch.setattr(RTLClassifier, "_held_out_score", spy)
    X, y = load_digits(return_X_y=True)
    clf = RTLClassifier(
        hidden_layer_sizes=(16,),
        routing="label",
        sparsity=0.9,
        n_prune_rounds=2,
        max_epochs=1,
        validation_fraction=0.2,
        random_state=0,
    ).fit(X[:400] / 16, y[:400])
    assert len(recorded) == 3  # dense, round 1, round 2
    assert all(n_val == 80 for *_, n_val in recorded)  # 20 % of 400 rows held out
    assert clf.validation_score_dense_ == recorded[0][0] and recorded[0][2] == 1.0
    rounds = zip(clf.collapse_curve_, recorded[1:], strict=True)
    for record, (score, per_ticket, density, _) in rounds:
        assert record["val_score"] == score
        np.testing.assert_array_equal(record["ticket_val_score"], per_ticket)
        assert record["sparsity"] == pytest.approx(1 - density)
    np.testing.assert_allclose(clf.ticket_sparsity_, 0.9, atol=0.01)


@pytest.fixture
def experiments_path(monkeypatch):
    # benchmarks/ has a _common too: whichever an earlier test imported must not be reused
    names = ("_common", "collapse_curves", "table1")
    for name in names:
        sys.modules.pop(name, None)
    monkeypatch.syspath_prepend(str(EXPERIMENTS))
    yield
    for name in names:
        sys.modules.pop(name, None)


def test_collapse_experiment_quick(tmp_path, experiments_path):
    import collapse_curves

    runs, rules = collapse_curves.main(
        ["--quick", "--out", str(tmp_path), "--figures", str(tmp_path)]
    )
    assert runs and all(len(r["curve"]) == 3 for r in runs)
    assert (tmp_path / "collapse_curves.png").stat().st_size > 0
    saved = json.loads((tmp_path / "collapse_rules.json").read_text())
    assert set(saved) == set(rules)


def test_table1_experiment_quick(tmp_path, experiments_path):
    import table1

    rows = table1.main(["--quick", "--out", str(tmp_path)])
    methods = {r["method"] for r in rows}
    assert {"RTL", "independent", "single"} <= methods
    for row in rows:
        assert 0.0 <= row["balanced_accuracy"] <= 1.0 and row["params"] > 0
