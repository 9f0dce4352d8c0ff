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


def test_fitted_collapse_attributes():
    X, y = load_digits(return_X_y=True)
    clf = RTLClassifier(
        hidden_layer_sizes=(16,),
        n_clusters=2,
        sparsity=0.9,
        n_prune_rounds=2,
        max_epochs=1,
        random_state=0,
    ).fit(X[:300] / 16, y[:300])
    assert isinstance(clf.collapse_detected_, bool)
    index = detect_collapse(clf.collapse_curve_)
    assert clf.collapse_detected_ == (index is not None)
    if index is None:
        assert clf.collapse_sparsity_ is None
    else:
        assert clf.collapse_sparsity_ == pytest.approx(clf.collapse_curve_[index]["sparsity"])
    assert "val_score" not in clf.collapse_curve_[0]  # no validation unless asked


def test_validation_curve_records():
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
    assert 0.0 <= clf.validation_score_dense_ <= 1.0
    for record in clf.collapse_curve_:
        assert 0.0 <= record["val_score"] <= 1.0
        assert np.asarray(record["ticket_val_score"]).shape == (clf.n_tickets_,)
    np.testing.assert_allclose(clf.ticket_sparsity_, 0.9, atol=0.01)


@pytest.fixture
def experiments_path(monkeypatch):
    monkeypatch.syspath_prepend(str(EXPERIMENTS))
    yield
    for name in ("_common", "collapse_curves", "table1"):
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
