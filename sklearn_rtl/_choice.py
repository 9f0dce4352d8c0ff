"""``n_clusters="auto"``: whether the KMeans clusters' own tickets pay, decided on held-out
rows.

A ticket per cluster trains on a fraction of the data. On some tables that specialization
pays (phoneme, vowel); on others the tickets trail one shared ticket trained on every row
(issue 23). Which case a table is in cannot be read from its shape, so the fit measures it.

The measurement is the first round of ticket extraction (Alg. 1) run for both candidate
partitions at once, from the same ``theta0``: one copy per cluster trained on that cluster's
rows, and one more copy, the shared ticket, trained on every row
(:class:`~sklearn_rtl._stages.Stage` ``shared_ticket``). Every copy makes the same number of
steps, as in Alg. 2's balanced batches, so that a small cluster's ticket is not judged
undertrained. Each held-out row is then scored by its own cluster's ticket and by the shared
ticket, with the task's loss (cross-entropy, or squared error on standardized targets).

The decision is one for the whole partition: the clusters keep their tickets when their
pooled held-out loss is lower than the shared ticket's by more than ``MARGIN_SE`` standard
errors of the paired difference, else every cluster routes to one shared ticket
(``KMeansRouter.share_one_ticket``). The margin makes the simpler model the default: a
ticket per cluster is kept only on clear evidence, since specialized tickets that win by
noise cost accuracy later, when Alg. 2 cycles their few rows for many epochs.

The comparison is short (``max_prune_epochs``); the final fit trains far longer. A ticket
per cluster learns its few rows faster, so early in training the clusters lead on many
tables, and where that lead is only speed it shrinks as both candidates train on: on
segment it fell from 0.19 to 0.06 to 0.02 nats at 5, 10 and 20 epochs, and the full fit's
tickets trailed the single ticket; on vowel, where they pay, it grew (0.10, 0.17, 0.19),
on phoneme it held. So the held-out rows are scored halfway through the round as well,
and the clusters must also not have lost ground over the second half: the change of their
lead may not fall below ``-MARGIN_SE`` standard errors of the paired change.

Deciding per cluster instead (a cluster falls back to the shared ticket, the others keep
theirs, as scikit-lego's grouped estimators fall back to a global model) was not taken: a
shared ticket that serves some clusters would have to train on every row in Alg. 2 to stay
the ticket that was measured, making every retraining step one batch longer and the fit
slower than either candidate, and each decision would rest on a quarter of the held-out
rows.

The comparison trains beside the fit, on its own copies and random streams: the fit that
follows is exactly the fit of the candidate kept (``n_clusters=4``, or ``n_clusters=1``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from skorch.callbacks import Callback

__all__ = [
    "AUTO_CLUSTERS",
    "CHOICE_FRACTION",
    "MARGIN_SE",
    "HalfwayLosses",
    "TicketChoice",
    "held_out_losses",
]

#: the KMeans clusters ``n_clusters="auto"`` starts from (each must still clear the floor)
AUTO_CLUSTERS = 4
#: the share of the training rows held out for the comparison (they train the final model)
CHOICE_FRACTION = 0.1
#: how many standard errors of the paired held-out difference the clusters' tickets must
#: win by (and may lose ground by over the round's second half): the one shared ticket is
#: the simpler model, kept unless the evidence is clear
MARGIN_SE = 2.0


def _mean_se(values, p):
    """The ``p``-weighted mean of ``values`` and its standard error."""
    mean = float(np.sum(p * values))
    return mean, float(np.sqrt(np.sum(p * (values - mean) ** 2) * np.sum(p**2)))


@dataclass(frozen=True)
class TicketChoice:
    """The evidence of ``n_clusters="auto"`` and its decision.

    Attributes
    ----------
    clusters : ndarray of int
        The KMeans clusters that cleared the floor: the candidates' tickets, in order.
    n_held_out : ndarray of int
        Held-out rows of every cluster.
    own_loss, shared_loss : ndarray of float
        Every cluster's mean held-out loss under its own ticket and under the shared ticket
        (NaN for a cluster without held-out rows).
    loss : dict of str to float
        The pooled held-out loss of each candidate: ``"clusters"`` (every row through its
        cluster's ticket) and ``"shared"`` (every row through the one shared ticket).
    gain, gain_se : float
        ``loss["shared"] - loss["clusters"]`` and its standard error over the paired
        held-out rows.
    halfway_gain, change_se : float or None
        The gain halfway through the round, and the standard error of the paired change
        ``gain - halfway_gain``; None where the round has a single epoch.
    kept : str
        ``"clusters"`` where ``gain`` exceeds ``MARGIN_SE`` standard errors and its change
        since halfway is above ``-MARGIN_SE`` standard errors, else ``"shared"``.
    """

    clusters: np.ndarray
    n_held_out: np.ndarray
    own_loss: np.ndarray
    shared_loss: np.ndarray
    loss: dict
    gain: float
    gain_se: float
    halfway_gain: float | None
    change_se: float | None
    kept: str

    @classmethod
    def from_losses(cls, clusters, ticket, own, shared, weight=None, halfway=None):
        """The choice from every held-out row's ``ticket`` (index into ``clusters``) and
        its loss under its ``own`` ticket and the ``shared`` one (``weight``: its weight);
        ``halfway``: the pair ``(own, shared)`` of losses halfway through the round."""
        weight = np.ones(len(ticket)) if weight is None else np.asarray(weight, np.float64)
        k = len(clusters)
        mass = np.bincount(ticket, weight, minlength=k)
        with np.errstate(invalid="ignore", divide="ignore"):
            own_loss = np.bincount(ticket, weight * own, minlength=k) / mass
            shared_loss = np.bincount(ticket, weight * shared, minlength=k) / mass
        loss = {
            "clusters": float(np.average(own, weights=weight)),
            "shared": float(np.average(shared, weights=weight)),
        }
        p = weight / weight.sum()
        gain, gain_se = _mean_se(shared - own, p)
        kept = gain > MARGIN_SE * gain_se
        halfway_gain = change_se = None
        if halfway is not None:
            lead = shared - own - (halfway[1] - halfway[0])  # per row: the lead's change
            change, change_se = _mean_se(lead, p)
            halfway_gain = gain - change
            kept = kept and change >= -MARGIN_SE * change_se
        return cls(
            clusters=np.asarray(clusters),
            n_held_out=np.bincount(ticket, minlength=k),
            own_loss=own_loss,
            shared_loss=shared_loss,
            loss=loss,
            gain=gain,
            gain_se=gain_se,
            halfway_gain=halfway_gain,
            change_se=change_se,
            kept="clusters" if kept else "shared",
        )

    def as_dict(self):
        """The fitted attribute ``ticket_choice_``: plain values, one entry per cluster
        under ``"clusters"``, ``"n_held_out"``, ``"own_loss"`` and ``"shared_loss"``
        (``pandas.DataFrame`` of those four reads as a table)."""
        return {
            "candidates": {"clusters": len(self.clusters), "shared": 1},
            "clusters": self.clusters.tolist(),
            "n_held_out": self.n_held_out.tolist(),
            "own_loss": self.own_loss.tolist(),
            "shared_loss": self.shared_loss.tolist(),
            "loss": dict(self.loss),
            "gain": self.gain,
            "gain_se": self.gain_se,
            "halfway_gain": self.halfway_gain,
            "change_se": self.change_se,
            "kept": self.kept,
        }

    def report(self):
        """The lines a verbose fit prints."""
        lines = [
            f"n_clusters='auto': {len(self.clusters)} cluster tickets against one shared "
            f"ticket, held-out loss {self.loss['clusters']:.4f} against "
            f"{self.loss['shared']:.4f} (gain {self.gain:+.4f} ± {self.gain_se:.4f}, needs "
            f"{MARGIN_SE:g} standard errors): keeps "
            + (f"{len(self.clusters)} tickets" if self.kept == "clusters" else "one ticket"),
        ]
        if self.halfway_gain is not None:
            lines.append(
                f"  halfway through the round the gain was {self.halfway_gain:+.4f}: changed "
                f"by {self.gain - self.halfway_gain:+.4f} ± {self.change_se:.4f} since (may "
                f"not fall below {-MARGIN_SE:g} standard errors)"
            )
        lines.append("  cluster  held-out rows  own ticket  shared ticket")
        for c, n, own, shared in zip(
            self.clusters, self.n_held_out, self.own_loss, self.shared_loss, strict=True
        ):
            lines.append(f"  {c:>7d}  {n:>13d}  {own:>10.4f}  {shared:>13.4f}")
        return "\n".join(lines)


def held_out_losses(model, task, rows, ticket, shared_ticket):
    """Every held-out row's loss under its own ticket and under ``shared_ticket``.

    ``model`` is a :class:`~sklearn_rtl._inference.RoutedModel` of the comparison's network,
    ``rows`` the held-out :class:`~sklearn_rtl._fitdata.Rows`, ``ticket`` their clusters'
    tickets. Returns two float64 arrays of shape ``(n_rows,)``.
    """
    y = torch.as_tensor(rows.y_train)
    losses = []
    for tickets in (ticket, np.full(len(ticket), shared_ticket, dtype=np.int64)):
        outputs = torch.as_tensor(model.outputs(rows.X, tickets))
        loss = task.per_sample_loss(outputs, y, torch.as_tensor(tickets))
        losses.append(loss.double().numpy())
    return losses[0], losses[1]


class HalfwayLosses(Callback):
    """Every held-out row's losses (``score()``, :func:`held_out_losses`) at the end of
    epoch ``epoch`` of the comparison; ``losses`` stays None if the stage ends before.

    One instance serves the stage (``spans_fit``: not copied), so the caller reads it.
    Scoring leaves the network in eval mode, which the next training step switches back.
    """

    spans_fit = True

    def __init__(self, epoch, score):
        self.epoch = epoch
        self.score = score
        self.losses = None

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            self.losses = self.score()
