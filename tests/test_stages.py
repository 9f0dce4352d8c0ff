"""The two stages on a network of two weights, where every number is computed by hand.

The network is ``y = w . x`` (one Linear, no bias, its weight pruned), trained with plain
SGD (lr 0.5) on the squared error, one sample per ticket, one step per epoch:

* ticket 0 sees x = (1, 0), y = 1; ticket 1 sees x = (0, 1), y = -1;
* from w = (0.1, 0.2), ticket 0's gradient is 2 (0.1 - 1) (1, 0) = (-1.8, 0), so its step
  gives (1.0, 0.2); ticket 1's is 2 (0.2 + 1) (0, 1) = (0, 2.4), giving (0.1, -1.0).
"""

import numpy as np
import pytest
import torch

from sklearn_rtl import TicketNetwork, extract_tickets, retrain_jointly
from sklearn_rtl._selection import AutoSparsity
from sklearn_rtl._stages import Stage, rewind_point
from sklearn_rtl._tasks import RegressionTask
from sklearn_rtl._training import StageRun, TicketNet

X = {"X": np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32), "ticket": np.array([0, 1])}
Y = np.array([[1.0], [-1.0]], dtype=np.float32)
THETA0 = torch.tensor([[0.1, 0.2]])


def _trainer():
    template = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        template.weight.copy_(THETA0)
    network = TicketNetwork(template, n_tickets=2, prunable=["weight"])
    return TicketNet(
        module=network,
        criterion=torch.nn.Identity,
        optimizer=torch.optim.SGD,
        lr=0.5,
        max_epochs=1,
        batch_size=1,
        train_split=None,
        task=RegressionTask(),
        loader_rng=np.random.default_rng(0),
        verbose=0,
    ).initialize()


def _start(trainer):
    return rewind_point(trainer, X, Y, epochs=0)


def _extracted_once():
    """A fresh trainer after one pruning round to density 0.5: ``(trainer, start, rounds)``."""
    trainer = _trainer()
    start = _start(trainer)
    rounds, _ = extract_tickets(
        trainer, X, Y, start=start, tickets=trainer.module_.tickets, schedule=[0.5], epochs=1
    )
    return trainer, start, rounds


def test_rewind_point_zero_is_theta0():
    trainer = _trainer()
    assert torch.equal(_start(trainer)["weight"], THETA0)


def test_extraction_round_trains_each_ticket_alone_and_prunes_by_magnitude():
    trainer = _trainer()
    start = _start(trainer)
    rounds, scores = extract_tickets(
        trainer, X, Y, start=start, tickets=trainer.module_.tickets, schedule=[0.5], epochs=1
    )
    assert scores == [] and len(rounds) == 2
    assert rounds[0].masks["weight"].all()
    # trained copies (1.0, 0.2) and (0.1, -1.0): each keeps its largest weight
    assert rounds[1].masks["weight"].int().tolist() == [[[1, 0]], [[0, 1]]]
    trained = trainer.module_.get_weights()["weight"]
    np.testing.assert_allclose(trained.numpy(), [[[1.0, 0.2]], [[0.1, -1.0]]], atol=1e-6)
    stages = [row["stage"] for row in trainer.history]
    assert stages == ["prune_round_1"]


def test_joint_retraining_sums_masked_updates_into_one_theta():
    trainer, start, rounds = _extracted_once()
    retrain_jointly(trainer, X, Y, tickets=rounds[1], start=start, epochs=1, shared=True)
    weights = trainer.module_.get_weights()["weight"]
    assert weights.shape == (1, 1, 2)  # one shared theta
    # from theta0: ticket 0 moves w0 by +0.9 and ticket 1 moves w1 by -1.2 (each on its mask)
    np.testing.assert_allclose(weights[0].numpy(), [[1.0, -1.0]], atol=1e-6)


def test_independent_retraining_keeps_copies_apart_and_theta0_outside_masks():
    trainer, start, rounds = _extracted_once()
    retrain_jointly(trainer, X, Y, tickets=rounds[1], start=start, epochs=1, shared=False)
    weights = trainer.module_.get_weights()["weight"]
    assert weights.shape == (2, 1, 2)
    np.testing.assert_allclose(weights.numpy(), [[[1.0, 0.2]], [[0.1, -1.0]]], atol=1e-6)
    # outside its own mask each copy is still theta0, bitwise
    assert weights[0, 0, 1] == THETA0[0, 1] and weights[1, 0, 0] == THETA0[0, 0]


def test_every_round_starts_from_the_rewind_point():
    trainer = _trainer()
    start = {"weight": torch.tensor([[0.3, -0.4]])}
    starts = []
    original = trainer.fit_stage

    def spy(stage, X_, y_, start, tickets=None):
        starts.append((stage.name, start["weight"].clone()))
        return original(stage, X_, y_, start, tickets)

    trainer.fit_stage = spy
    rounds, _ = extract_tickets(
        trainer, X, Y, start=start, tickets=trainer.module_.tickets, schedule=[0.5, 0.5], epochs=1
    )
    retrain_jointly(trainer, X, Y, tickets=rounds[-1], start=start, epochs=1)
    assert [name for name, _ in starts] == ["prune_round_1", "prune_round_2", "retrain"]
    for _, w in starts:
        assert torch.equal(w, start["weight"])


def test_late_rewinding_trains_the_dense_network_jointly_first():
    trainer = _trainer()
    point = rewind_point(trainer, X, Y, epochs=1)
    # both tickets step on the full mask from theta0: (0.1 + 0.9, 0.2 - 1.2)
    np.testing.assert_allclose(point["weight"].numpy(), [[1.0, -1.0]], atol=1e-6)
    assert [row["stage"] for row in trainer.history] == ["rewind"]


def test_held_out_scores_stop_pruning_and_choose_the_round():
    trainer = _trainer()
    scripted = iter([(0.80, None), (0.85, None), (0.50, None), (0.40, None)])
    selection = AutoSparsity(ceiling=0.75, n_prune_rounds=3)
    rounds, scores = extract_tickets(
        trainer,
        X,
        Y,
        start=_start(trainer),
        tickets=trainer.module_.tickets,
        schedule=[1.0, 0.5, 0.5],
        epochs=1,
        score=lambda: next(scripted),
        stop=selection.should_stop,
    )
    # scores 0.80 (dense), 0.85 (round 1), 0.50, 0.40: two rounds 0.02 below the best -> stop
    assert [s for s, _ in scores] == [0.80, 0.85, 0.50, 0.40]
    assert len(rounds) == 4
    assert selection.choose([s for s, _ in scores], len(rounds) - 1) == 1


@pytest.mark.parametrize("tied", [True, False])
def test_stage_record_decides_cycling(tied):
    trainer = _trainer()
    trainer.run_ = StageRun(Stage("x", tied=tied, epochs=1), start={})
    data = {"X": np.zeros((5, 2), np.float32), "ticket": np.array([0, 0, 0, 0, 1])}
    loader = trainer.get_iterator(trainer.get_dataset(data, np.zeros((5, 1), np.float32)), True)
    assert loader.cycle is tied
