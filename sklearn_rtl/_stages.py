"""The two stages of RTL as functions of a trainer, testable on a tiny network alone.

* :func:`extract_tickets` is the paper's Alg. 1: per pruning round, train every ticket's own
  weight copy on its own samples under the round's masks (starting from the rewind point),
  score the copies on held-out rows if a scorer is given, then stop or prune by magnitude.
* :func:`retrain_jointly` is Alg. 2: one shared ``theta``, rewound, trained with every
  sample through its own ticket's mask (``shared=False``: the independent-models baseline,
  every ticket retrained alone on its own copy).
* :func:`rewind_point` is the start of both: ``theta0``, or the weights after a few epochs
  of dense joint training ("late rewinding").

The trainer is a :class:`~sklearn_rtl._training.TicketNet` (anything with ``module_`` and
``fit_stage(stage, X, y, start, tickets)``); a stage is described by a :class:`Stage` record,
and the trainer runs each as a short-lived :class:`~sklearn_rtl._training.StageRun` (its own
history and callbacks), so these functions pass every stage its start and masks and keep
nothing else between stages.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Stage", "extract_tickets", "retrain_jointly", "rewind_point"]


@dataclass(frozen=True)
class Stage:
    """One training of the fit: its name in the history, whether the tickets' weight
    copies are tied into one shared ``theta``, its number of epochs and, for the comparison
    of ``n_clusters="auto"`` (``_choice.py``), the ticket that draws from every row (the
    shared candidate, trained beside the clusters' own tickets)."""

    name: str
    tied: bool
    epochs: int
    shared_ticket: int | None = None


def _first_copy(network):
    return {name: w[0].clone() for name, w in network.get_weights().items()}


def rewind_point(trainer, X, y, epochs=0):
    """The weights every stage starts from: ``theta0`` (the initialization) when ``epochs``
    is 0, else the weights after ``epochs`` epochs of joint dense training from ``theta0``.

    Returns ``{name: tensor of the weight's shape}``.
    """
    theta0 = _first_copy(trainer.module_)
    if epochs == 0:
        return theta0
    trainer.fit_stage(Stage("rewind", tied=True, epochs=epochs), X, y, start=theta0)
    return _first_copy(trainer.module_)


def extract_tickets(
    trainer,
    X,
    y,
    *,
    start,
    tickets,
    schedule,
    epochs,
    scope="layer",
    score=None,
    stop=None,
    shared=(),
    chain=None,
    score_last=True,
):
    """Alg. 1: iterative magnitude pruning of every ticket, the K runs batched together.

    Parameters
    ----------
    trainer : TicketNet
    X, y : training data as the trainer takes it (``{"X", "ticket"}`` dict, targets)
    start : dict of str to Tensor
        The rewind point every round starts from.
    tickets : TicketSet
        The masks of round 0 (usually all ones).
    schedule : list of float
        Density every ticket keeps after each pruning round.
    epochs : int
        Epochs of every round.
    scope : {"layer", "global"}, default="layer"
        Magnitude ranking per layer or over all prunable layers.
    score : callable, default=None
        ``score() -> (score, per-ticket scores)`` of the trained copies on held-out rows.
        With a scorer, round ``r``'s masks are scored after training under them (round 0
        is the dense network), and one extra training scores the last round.
    stop : callable, default=None
        ``stop(scores) -> bool`` on the held-out scores so far: stop pruning.
    chain : list of str, default=None
        With the network's unit chain (:func:`~sklearn_rtl._units.unit_chain`), every
        round removes whole units (``prune_granularity="neuron"``); None prunes weights.
    shared : sequence of str, default=()
        Prunable layers whose mask all tickets share (see :meth:`TicketSet.prune`).
    score_last : bool, default=True
        With a scorer, train once more under the last round's masks to score them too.

    Returns
    -------
    rounds : list of TicketSet
        ``rounds[0]`` is ``tickets``; ``rounds[r]`` the masks after round ``r``.
    scores : list of tuple
        ``(score, per-ticket scores)`` of ``rounds[r]`` for every scored round (empty
        without a scorer).

    Examples
    --------
    >>> import numpy as np, torch
    >>> from sklearn_rtl import MLP, TicketNetwork, extract_tickets, retrain_jointly
    >>> from sklearn_rtl._stages import rewind_point
    >>> from sklearn_rtl._training import TicketNet
    >>> _ = torch.manual_seed(0)
    >>> network = TicketNetwork(MLP(4, (8,), 2), n_tickets=2, prunable=["layers.0.weight"])
    >>> trainer = TicketNet(module=network, criterion=torch.nn.Identity, max_epochs=1,
    ...                     batch_size=8, train_split=None, verbose=0).initialize()
    >>> X = {"X": np.random.rand(16, 4).astype("float32"), "ticket": np.arange(16) % 2}
    >>> y = np.arange(16) // 8
    >>> start = rewind_point(trainer, X, y)
    >>> rounds, _ = extract_tickets(trainer, X, y, start=start, tickets=network.tickets,
    ...                             schedule=[0.5, 0.25], epochs=1)
    >>> [round(t.density, 2) for t in rounds]
    [1.0, 0.5, 0.25]
    >>> _ = retrain_jointly(trainer, X, y, tickets=rounds[-1], start=start, epochs=1)
    >>> network.n_copies  # one shared theta
    1
    """
    network = trainer.module_
    rounds, scores = [tickets], []
    n_trainings = len(schedule) + (score is not None and score_last)
    for r in range(n_trainings):
        name = f"prune_round_{r + 1}" if r < len(schedule) else "validate"
        stage = Stage(name, tied=False, epochs=epochs)
        trainer.fit_stage(stage, X, y, start=start, tickets=rounds[-1])
        if score is not None:
            scores.append(score())
            if stop is not None and stop([s for s, _ in scores]):
                break
        if r == len(schedule):
            break
        trained = network.get_weights()
        trained = {n: trained[n] for n in network.prunable}
        rounds.append(rounds[-1].prune(trained, schedule[r], scope, shared, chain))
    return rounds, scores


def retrain_jointly(trainer, X, y, *, tickets, start, epochs, shared=True):
    """Alg. 2: retrain the tickets from ``start`` under their final masks.

    ``shared=True`` keeps one shared ``theta`` (the copies are tied after every step and
    merged into one at the end); ``shared=False`` retrains every ticket alone on its own
    copy (the independent-models baseline).

    Examples
    --------
    ``y = w . x`` with two tickets, each keeping one of the two weights; one SGD step (lr
    0.5) on the squared error moves ``w0`` by ``-0.5 * 2 * (0.1 - 1) = 0.9`` for ticket 0
    and ``w1`` by ``-0.5 * 2 * (0.2 + 1) = -1.2`` for ticket 1, both into one ``theta``:

    >>> import numpy as np, torch
    >>> from sklearn_rtl import TicketNetwork, TicketSet, retrain_jointly
    >>> from sklearn_rtl._tasks import RegressionTask
    >>> from sklearn_rtl._training import TicketNet
    >>> network = TicketNetwork(torch.nn.Linear(2, 1, bias=False), 2, ["weight"])
    >>> trainer = TicketNet(module=network, criterion=torch.nn.Identity, lr=0.5,
    ...                     optimizer=torch.optim.SGD, max_epochs=1, batch_size=1,
    ...                     train_split=None, verbose=0, task=RegressionTask()).initialize()
    >>> tickets = TicketSet({"weight": torch.tensor([[[True, False]], [[False, True]]])})
    >>> X = {"X": np.eye(2, dtype="float32"), "ticket": np.array([0, 1])}
    >>> y = np.array([[1.0], [-1.0]], dtype="float32")
    >>> start = {"weight": torch.tensor([[0.1, 0.2]])}
    >>> _ = retrain_jointly(trainer, X, y, tickets=tickets, start=start, epochs=1)
    >>> network.get_weights()["weight"]
    tensor([[[ 1., -1.]]])
    """
    stage = Stage("retrain", tied=shared, epochs=epochs)
    trainer.fit_stage(stage, X, y, start=start, tickets=tickets)
    if shared:
        trainer.module_.share()
    trainer.initialize_optimizer()
    return trainer
