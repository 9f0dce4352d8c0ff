import numpy as np
import pytest
import torch
from skorch.callbacks import Callback
from skorch.dataset import Dataset

from conftest import small_rtl, ticket_data
from sklearn_rtl._tasks import OneVsRestTask
from sklearn_rtl._training import TicketBatchLoader


def make_dataset(tickets, y=None):
    tickets = np.asarray(tickets)
    X = np.arange(len(tickets), dtype=np.float32).reshape(-1, 1)
    y = np.zeros(len(tickets), dtype=np.int64) if y is None else np.asarray(y)
    return Dataset({"X": X, "ticket": tickets}, y)


def test_every_step_has_one_batch_per_ticket_and_small_tickets_cycle():
    tickets = np.array([0] * 10 + [1] * 3 + [2] * 5)
    loader = TicketBatchLoader(make_dataset(tickets), batch_size=4, rng=np.random.default_rng(0))
    batches = list(loader)
    assert len(batches) == len(loader) == 3  # ceil(10 / 4) steps for the largest ticket
    seen = {0: [], 1: [], 2: []}
    for Xi, _ in batches:
        step_tickets = Xi["ticket"].numpy()
        counts = np.bincount(step_tickets, minlength=3)
        assert counts.tolist() == [4, 3, 4]
        index = Xi["X"][:, 0].astype(int)
        # every sample of a ticket's batch belongs to that ticket
        np.testing.assert_array_equal(tickets[index], step_tickets)
        for k in range(3):
            seen[k].extend(index[step_tickets == k])
    # the largest ticket sees every sample, the smaller ones are cycled
    assert set(seen[0]) == set(range(10))
    assert set(seen[1]) == {10, 11, 12} and len(seen[1]) == 9
    assert set(seen[2]) == set(range(13, 18)) and len(seen[2]) == 12


def test_ovr_batches_are_half_positives_and_labelled_with_their_detector():
    y = np.array([0] * 6 + [1] * 2 + [2] * 12)
    loader = TicketBatchLoader(
        make_dataset(y, y), batch_size=4, task=OneVsRestTask(), rng=np.random.default_rng(0)
    )
    batches = list(loader)
    # an epoch shows every detector as many samples as the training set holds:
    # ceil(20 rows / 4 per step), not a pass over its own positives (1 step for class 1)
    assert len(batches) == len(loader) == 5
    for Xi, yi in batches:
        for k in range(3):
            rows = Xi["ticket"].numpy() == k
            positives = (yi[rows] == k).sum()
            assert rows.sum() == 4 and positives == 2


def test_ovr_detectors_make_equal_steps_without_cycling():
    # ticket extraction (cycle=False): a small class's detector is not cut short
    y = np.array([0] * 2 + [1] * 14)
    loader = TicketBatchLoader(
        make_dataset(y, y), batch_size=4, task=OneVsRestTask(), cycle=False,
        rng=np.random.default_rng(0),
    )  # fmt: skip
    steps = np.zeros(2, dtype=int)
    for Xi, _ in loader:
        steps += np.bincount(Xi["ticket"].numpy(), minlength=2) > 0
    assert steps.tolist() == [4, 4]


def test_same_rng_seed_gives_same_batches():
    tickets = np.array([0] * 7 + [1] * 9)

    def order(seed):
        loader = TicketBatchLoader(make_dataset(tickets), 3, rng=np.random.default_rng(seed))
        return np.concatenate([Xi["X"][:, 0] for Xi, _ in loader])

    np.testing.assert_array_equal(order(3), order(3))
    assert not np.array_equal(order(3), order(4))


def test_without_cycling_every_ticket_makes_only_its_own_steps():
    tickets = np.array([0] * 10 + [1] * 3 + [2] * 5)
    loader = TicketBatchLoader(
        make_dataset(tickets), batch_size=4, cycle=False, rng=np.random.default_rng(0)
    )
    batches = list(loader)
    assert len(batches) == len(loader) == 3
    steps = {k: 0 for k in range(3)}
    seen = {k: [] for k in range(3)}
    for Xi, _ in batches:
        step_tickets = Xi["ticket"].numpy()
        index = Xi["X"][:, 0].astype(int)
        np.testing.assert_array_equal(tickets[index], step_tickets)
        for k in np.unique(step_tickets):
            steps[k] += 1
            seen[k].extend(index[step_tickets == k])
    # ceil(10/4) = 3, ceil(3/3) = 1, ceil(5/4) = 2 steps: as three separate trainings
    assert steps == {0: 3, 1: 1, 2: 2}
    assert sorted(seen[1]) == [10, 11, 12]
    assert set(seen[2]) == set(range(13, 18)) and len(seen[2]) == 8


# ----------------------------------------------------------- the lean training step
class _BatchCounter(Callback):
    """Counts the per-batch notifications its copies get (every stage trains with a fresh
    copy of the callbacks: the count is the class's), and the gradients it is shown."""

    calls = {}

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        self.calls["begin"] += training

    def on_grad_computed(self, net, named_parameters, batch=None, training=False, **kwargs):
        self.calls["grad"] += sum(1 for _, p in named_parameters if p.grad is not None) > 0

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        self.calls["end"] += training


@pytest.mark.parametrize("optimizer", [torch.optim.Adam, torch.optim.RMSprop])
def test_every_training_step_notifies_the_callbacks_that_listen(optimizer):
    """The step skips skorch's no-op callbacks (and, for Adam, the closure), not one that
    implements a per-batch method: each gets every step, with the gradients computed."""
    X, y, _ = ticket_data(pays=True, n=60)
    _BatchCounter.calls.update(begin=0, grad=0, end=0)
    est = small_rtl(callbacks=[_BatchCounter()], optimizer=optimizer, max_epochs=3).fit(X, y)
    calls = _BatchCounter.calls
    assert est.n_tickets_ == 4
    assert calls["begin"] == calls["grad"] == calls["end"] > 10, calls
    # the history's training loss is the batches' (weighted by their sizes)
    assert all(np.isfinite(loss) and loss > 0 for loss in est.net_.history[:, "train_loss"])


def test_column_major_X_fits_exactly_as_row_major():
    """A column-major X (a DataFrame's values) is made row-major for the batches: the
    same fit, bit for bit."""
    X, y, _ = ticket_data(pays=True, n=60)
    X = X.astype(np.float32)
    row_major = small_rtl().fit(np.ascontiguousarray(X), y)
    column_major = small_rtl().fit(np.asfortranarray(X), y)
    np.testing.assert_array_equal(column_major.predict_proba(X), row_major.predict_proba(X))


def test_premasked_step_resets_pruned_weights_to_zero_and_unmask_restores_them():
    """A premasked stage (one ticket) holds pruned weights at 0; after a step moved every
    weight, ``zero_pruned`` puts the pruned ones back to 0 and leaves the kept ones as the
    step left them; ``unmask`` restores the pruned values of the stage's start."""
    X, y, _ = ticket_data(pays=False, n=60)
    network = small_rtl(n_clusters=1, sparsity=0.7).fit(X, y).net_.module_
    torch.manual_seed(0)
    start = {name: torch.randn_like(w[0]) for name, w in network.get_weights().items()}
    network.set_weights(start, n_copies=1)
    masks = network.get_masks()
    assert all((~m).any() for m in masks.values())
    network.premask()
    with torch.no_grad():
        for weight in network.weights.values():
            weight.add_(1.0)  # a step that moves every weight
    network.zero_pruned()
    weights = network.get_weights()
    for name, mask in masks.items():
        assert (weights[name][~mask] == 0).all()
        assert torch.equal(weights[name][mask], start[name].unsqueeze(0)[mask] + 1.0)
    network.unmask(start)
    for name, mask in masks.items():
        assert torch.equal(network.get_weights()[name][~mask], start[name].unsqueeze(0)[~mask])
