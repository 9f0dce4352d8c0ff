"""``n_clusters="auto"`` (the default): the clusters' tickets against one shared ticket,
decided on held-out rows (``sklearn_rtl/_choice.py``)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from skorch.dataset import Dataset

from conftest import ticket_data
from sklearn_rtl import RTLClassifier, RTLRegressor
from sklearn_rtl._batches import TicketBatchLoader
from sklearn_rtl._choice import MARGIN_SE, TicketChoice

torch.set_num_threads(1)

# the default network and floor; one pruning round and 10 epochs (the comparison's own
# 10 epochs, max_prune_epochs, are the default's)
AUTO = dict(n_prune_rounds=1, max_epochs=10, random_state=0)


def _fit(pays, estimator=RTLClassifier, **params):
    X, y, target = ticket_data(pays)
    est = estimator(**{**AUTO, **params})
    return est.fit(X, y if estimator is RTLClassifier else target), X


def _outputs(est, X):
    return est.predict_proba(X) if hasattr(est, "predict_proba") else est.predict(X)


# ----------------------------------------------------------------- the decision
def test_choice_from_losses_pools_weighs_and_needs_two_standard_errors():
    ticket = np.array([0, 0, 1, 1])
    own = np.array([0.1, 0.3, 0.5, 0.7])
    shared = np.array([0.2, 0.4, 0.6, 0.6])
    choice = TicketChoice.from_losses(np.array([3, 5, 7]), ticket, own, shared, [1, 1, 1, 3])
    assert choice.loss == pytest.approx({"clusters": 3.0 / 6, "shared": 3.0 / 6})
    np.testing.assert_allclose(choice.own_loss[:2], [0.2, 0.65])
    np.testing.assert_allclose(choice.shared_loss[:2], [0.3, 0.6])
    assert np.isnan(choice.own_loss[2]) and choice.n_held_out.tolist() == [2, 2, 0]
    assert choice.gain == pytest.approx(0.0) and choice.kept == "shared"  # a tie: shared
    # every row 0.1 better: no spread, a sure gain
    sure = TicketChoice.from_losses([0, 1], ticket, own, own + 0.1)
    assert sure.gain == pytest.approx(0.1) and sure.gain_se == pytest.approx(0.0)
    assert sure.kept == "clusters"


@pytest.mark.parametrize(
    "ratio, kept", [(0.9 * MARGIN_SE, "shared"), (1.1 * MARGIN_SE, "clusters")]
)
def test_the_clusters_must_win_by_the_margin(ratio, kept):
    # differences +-1 around a mean gain g over n rows: standard error 1/sqrt(n)
    n = 400
    diff = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    gain = ratio / np.sqrt(n)
    own = np.full(n, 1.0)
    choice = TicketChoice.from_losses([0, 1], np.arange(n) % 2, own, own + gain + diff)
    assert choice.gain_se == pytest.approx(1 / np.sqrt(n))
    assert choice.kept == kept


@pytest.mark.parametrize(
    "ratio, kept", [(0.9 * MARGIN_SE, "clusters"), (1.1 * MARGIN_SE, "shared")]
)
def test_a_lead_that_shrank_since_halfway_by_the_margin_shares_one_ticket(ratio, kept):
    # the end: a gain of 3 standard errors (0.15, s.e. 0.05); halfway: a larger gain, the
    # per-row change +-1 around its mean (standard error 0.05 again)
    n = 400
    rows = np.arange(n)
    diff = np.where(rows % 2 == 0, 1.0, -1.0)
    wobble = np.where(rows // 2 % 2 == 0, 1.0, -1.0)
    own = np.full(n, 1.0)
    shared = own + 0.15 + diff
    halfway_gain = 0.15 + ratio * 0.05
    halfway = (own, own + halfway_gain + diff + wobble)
    choice = TicketChoice.from_losses([0, 1], rows % 2, own, shared, halfway=halfway)
    assert choice.gain == pytest.approx(0.15) and choice.gain_se == pytest.approx(0.05)
    assert choice.halfway_gain == pytest.approx(halfway_gain)
    assert choice.change_se == pytest.approx(0.05)
    assert choice.kept == kept
    # a lead that grew since halfway is no reason against the clusters
    grew = TicketChoice.from_losses([0, 1], rows % 2, own, shared, halfway=(own, own + diff))
    assert grew.halfway_gain == pytest.approx(0.0) and grew.kept == "clusters"
    plain = TicketChoice.from_losses([0, 1], rows % 2, own, shared)
    assert plain.halfway_gain is None and plain.change_se is None and plain.kept == "clusters"


# ---------------------------------------------------------------- end to end
def test_clusters_with_their_own_rules_keep_their_tickets():
    est, X = _fit(pays=True)
    choice = est.ticket_choice_
    assert choice["kept"] == "clusters" and est.n_tickets_ == 4
    assert choice["candidates"] == {"clusters": 4, "shared": 1}
    assert choice["gain"] > MARGIN_SE * choice["gain_se"] > 0
    assert choice["loss"]["clusters"] < choice["loss"]["shared"]
    # scored halfway too (epoch 5 of 10): the clusters' lead did not shrink by the margin
    change = choice["gain"] - choice["halfway_gain"]
    assert choice["change_se"] > 0 and change >= -MARGIN_SE * choice["change_se"]
    assert sum(choice["n_held_out"]) == pytest.approx(0.1 * len(X), abs=1)
    assert sorted(set(est.route(X).tolist())) == [0, 1, 2, 3]


def test_one_rule_everywhere_shares_one_ticket():
    est, X = _fit(pays=False)
    assert est.ticket_choice_["kept"] == "shared"
    assert est.n_tickets_ == 1 and est.router_.shared_
    assert len(est.router_.cluster_sizes_) == 4  # the clusters stay, with one ticket
    np.testing.assert_array_equal(est.route(X), 0)
    assert "share one ticket" in est.router_.merge_note()


@pytest.mark.parametrize("pays, n_clusters", [(True, 4), (False, 1)])
def test_the_choice_is_exactly_one_of_the_two_candidates(pays, n_clusters):
    """The comparison runs beside the fit (its own copies and random streams): a default
    fit that keeps the clusters is the ``n_clusters=4`` fit, one that shares a ticket the
    ``n_clusters=1`` fit, bit for bit."""
    auto, X = _fit(pays)
    explicit, _ = _fit(pays, n_clusters=n_clusters)
    assert explicit.ticket_choice_ is None
    assert auto.n_tickets_ == explicit.n_tickets_ == n_clusters
    assert _outputs(auto, X).tobytes() == _outputs(explicit, X).tobytes()


def test_the_regressor_chooses_too():
    est, X = _fit(pays=False, estimator=RTLRegressor)
    assert est.ticket_choice_["kept"] == "shared" and est.n_tickets_ == 1
    assert est.predict(X).shape == (len(X),)


def test_sparse_rows_make_the_same_choice():
    dense, X = _fit(pays=True)
    _, y, _ = ticket_data(pays=True)
    sparse = RTLClassifier(**AUTO).fit(sp.csr_matrix(X), y)
    assert sparse.ticket_choice_["kept"] == dense.ticket_choice_["kept"] == "clusters"
    np.testing.assert_allclose(sparse.ticket_choice_["gain"], dense.ticket_choice_["gain"])


def test_an_integer_n_clusters_keeps_its_meaning():
    est, _ = _fit(pays=False, n_clusters=4)
    assert est.n_tickets_ == 4 and est.ticket_choice_ is None


@pytest.mark.parametrize(
    "params", [{"routing": "label"}, {"routing": "groups"}], ids=["label", "groups"]
)
def test_other_routings_choose_nothing(params):
    X, y, _ = ticket_data(pays=False)
    est = RTLClassifier(**AUTO, **params).fit(X, y, groups=np.arange(len(X)) % 3)
    assert est.ticket_choice_ is None and est.n_tickets_ == 3


def test_one_cluster_left_by_the_floor_chooses_nothing():
    X, y, _ = ticket_data(pays=True, n=80)  # 4 x 80 rows: no cluster clears 200
    est = RTLClassifier(**AUTO).fit(X, y)
    assert est.n_tickets_ == 1 and est.ticket_choice_ is None


def test_tiny_data_fits_under_auto():
    X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0]])
    est = RTLClassifier(**AUTO, min_cluster_size=0).fit(X, [0, 1, 0])
    assert est.n_tickets_ >= 1 and est.predict(X).shape == (3,)


def test_sample_weights_reach_the_comparison():
    X, y, _ = ticket_data(pays=True)
    weight = np.where(np.arange(len(y)) % 2 == 0, 1.0, 3.0)
    plain = RTLClassifier(**AUTO).fit(X, y).ticket_choice_
    weighted = RTLClassifier(**AUTO).fit(X, y, sample_weight=weight).ticket_choice_
    assert weighted["loss"] != plain["loss"]


def test_verbose_prints_the_evidence(capsys):
    _fit(pays=True, verbose=1)
    out = capsys.readouterr().out
    assert "n_clusters='auto': 4 cluster tickets against one shared ticket" in out
    assert "keeps 4 tickets" in out
    assert "halfway through the round the gain was" in out
    assert "held-out rows  own ticket  shared ticket" in out


def test_a_one_epoch_comparison_has_no_halfway():
    est, _ = _fit(pays=True, max_prune_epochs=1)
    choice = est.ticket_choice_
    assert choice["halfway_gain"] is None and choice["change_se"] is None
    assert choice["kept"] in ("clusters", "shared")


@pytest.mark.parametrize("value", ["four", 0, 2.5])
def test_bad_n_clusters_names_the_parameter(value):
    X, y, _ = ticket_data(pays=False, n=10)
    with pytest.raises((ValueError, TypeError), match="n_clusters"):
        RTLClassifier(n_clusters=value).fit(X, y)


# ------------------------------------------------------------- the shared ticket
def test_the_shared_ticket_draws_every_row_in_as_many_steps():
    ticket = np.repeat([0, 1], [30, 10])
    X = np.arange(40, dtype=np.float32).reshape(-1, 1)
    dataset = Dataset({"X": X, "ticket": ticket}, np.zeros(40, dtype=np.int64))
    loader = TicketBatchLoader(
        dataset, 10, rng=np.random.default_rng(0), cycle=True, shared_ticket=2
    )
    seen = {0: [], 1: [], 2: []}
    steps = 0
    for batch, _ in loader:
        steps += 1
        for k in seen:
            rows = batch["X"][batch["ticket"].numpy() == k, 0]
            assert len(rows) == 10  # every ticket in every step: equal steps
            seen[k].extend(rows.tolist())
    assert steps == 4  # the shared ticket's pass over all 40 rows
    assert sorted(seen[2]) == list(range(40))
    assert set(seen[0]) == set(range(30)) and set(seen[1]) == set(range(30, 40))
