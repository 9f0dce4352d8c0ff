"""Ticket extraction (Alg. 1) equals K separate runs, under every optimizer.

The K tickets' weight copies are trained as one stacked tensor per layer, but ticket ``k``'s
copy must end exactly where a separate single-ticket run on ticket ``k``'s rows ends, with
the same initialization and the same batches. The tickets here have 10, 6 and 3 rows and a
batch size of 4, so per epoch they make 3, 2 and 1 steps: the smaller tickets are absent
from the later steps, and after the first epoch their step counts differ (Adam's bias
correction, AdamW's decoupled decay, SGD's momentum buffer must all be per ticket).
"""

import numpy as np
import pytest
import torch

from sklearn_rtl import MLP, TicketNetwork
from sklearn_rtl._stages import Stage
from sklearn_rtl._training import TicketNet

SIZES = (10, 6, 3)
BATCH = 4
EPOCHS = 3
OPTIMIZERS = {
    "adam": (torch.optim.Adam, {"lr": 0.05}),
    "adam_l2": (torch.optim.Adam, {"lr": 0.05, "weight_decay": 0.1}),
    "adamw": (torch.optim.AdamW, {"lr": 0.05, "weight_decay": 0.1}),
    "adamw_amsgrad": (torch.optim.AdamW, {"lr": 0.05, "weight_decay": 0.1, "amsgrad": True}),
    "sgd_momentum": (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01}),
    "sgd_nesterov": (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
}


class _InOrder:
    """A loader "rng" that does not shuffle: the K-ticket run and the single runs then see
    the same batches of every ticket, in the same order."""

    def permutation(self, indices):
        return np.asarray(indices)


def _data():
    rng = np.random.default_rng(0)
    n = sum(SIZES)
    X = rng.normal(size=(n, 3))
    y = rng.integers(0, 2, size=n)
    ticket = np.repeat(np.arange(len(SIZES)), SIZES)
    return X, y, ticket


def _masks(n_tickets):
    rng = np.random.default_rng(1)
    shapes = {"layers.0.weight": (5, 3), "layers.2.weight": (2, 5)}
    return {
        name: torch.as_tensor(rng.random((n_tickets, *shape)) < 0.7)
        for name, shape in shapes.items()
    }


def _train(X, y, ticket, masks, optimizer, params):
    torch.manual_seed(0)
    template = MLP(3, (5,), 2).double()
    network = TicketNetwork(template, masks["layers.0.weight"].shape[0], list(masks))
    network.set_masks(masks)
    theta0 = {name: w[0].clone() for name, w in network.get_weights().items()}
    trainer = TicketNet(
        module=network,
        criterion=torch.nn.Identity,
        optimizer=optimizer,
        batch_size=BATCH,
        train_split=None,
        verbose=0,
        loader_rng=_InOrder(),
        **{f"optimizer__{k}": v for k, v in params.items()},
    ).initialize()
    trainer.fit_stage(
        Stage("prune_round_1", tied=False, epochs=EPOCHS), {"X": X, "ticket": ticket}, y, theta0
    )
    return trainer


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_extraction_equals_separate_runs(name):
    optimizer, params = OPTIMIZERS[name]
    X, y, ticket = _data()
    masks = _masks(len(SIZES))
    joint = _train(X, y, ticket, masks, optimizer, params).module_.get_weights()
    for k in range(len(SIZES)):
        rows = ticket == k
        own = {n: m[k : k + 1] for n, m in masks.items()}
        alone = _train(X[rows], y[rows], np.zeros(rows.sum(), int), own, optimizer, params)
        for layer, weight in alone.module_.get_weights().items():
            np.testing.assert_allclose(
                joint[layer][k].numpy(), weight[0].numpy(), rtol=0, atol=1e-6, err_msg=layer
            )


def test_every_ticket_counts_its_own_adam_steps():
    X, y, ticket = _data()
    trainer = _train(X, y, ticket, _masks(len(SIZES)), torch.optim.Adam, {"lr": 0.05})
    expected = [EPOCHS * -(-n // BATCH) for n in SIZES]
    stepped = [p for group in trainer.optimizer_.param_groups for p in group["params"]]
    for weight in trainer.module_.weights.values():  # its K per-ticket views, in order
        storage = weight.untyped_storage().data_ptr()
        views = [p for p in stepped if p.untyped_storage().data_ptr() == storage]
        assert len(views) == len(SIZES)
        steps = [int(trainer.optimizer_.state[view]["step"]) for view in views]
        assert steps == expected


def test_tied_stage_keeps_the_stacked_optimizer():
    X, y, ticket = _data()
    trainer = _train(X, y, ticket, _masks(len(SIZES)), torch.optim.Adam, {"lr": 0.05})
    trainer.fit_stage(
        Stage("retrain", tied=True, epochs=1),
        {"X": X, "ticket": ticket},
        y,
        {n: w[0] for n, w in trainer.module_.get_weights().items()},
    )
    assert trainer.run_ is None  # the stage's views went with it
    stacked = {id(p) for p in trainer.module_.weights.values()}
    optimized = {id(p) for group in trainer.optimizer_.param_groups for p in group["params"]}
    assert optimized == stacked
