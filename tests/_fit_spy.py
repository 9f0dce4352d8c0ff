"""A spy on one estimator fit: what every stage really started from, and what it ended at.

``FitSpy(monkeypatch)`` wraps, for the duration of a test, the functions the fit calls:

* ``rewind_point``: ``theta0`` (the real initialization, read from the network when the
  rewind point is asked for) and the rewind point it returns;
* ``TicketNet.on_train_begin``: every copy of every weight at the start of every stage
  (after the stage's rewind), with the stage's name and, where the stage trains with its
  pruned weights zeroed in place (``TicketNetwork.premask``), its masks;
* ``extract_tickets``: the masks of every pruning round;
* ``compact_fitted_net``: the trained weights before compaction zeroes the unused ones.

Nothing is changed: every wrapper returns what the original returns.
"""

from __future__ import annotations

import sklearn_rtl._base as base
from sklearn_rtl._training import TicketNet


def _clone(weights):
    return {name: w.detach().clone() for name, w in weights.items()}


class FitSpy:
    """Records of one fit (see the module docstring)."""

    def __init__(self, monkeypatch):
        self.theta0 = None
        self.rewind = None
        self.stage_starts = []
        self.rounds = None
        self.trained = None
        self.masks = None
        self._wrap(monkeypatch)

    def _wrap(self, monkeypatch):
        rewind_point, extract = base.rewind_point, base.extract_tickets
        compact, train_begin = base.compact_fitted_net, TicketNet.on_train_begin
        spy = self

        def spy_rewind(trainer, *args, **kwargs):
            spy.theta0 = {n: w[0].clone() for n, w in trainer.module_.get_weights().items()}
            point = rewind_point(trainer, *args, **kwargs)
            spy.rewind = _clone(point)
            return point

        def spy_extract(*args, **kwargs):
            rounds, scores = extract(*args, **kwargs)
            spy.rounds = [{n: m.copy() for n, m in r.numpy().items()} for r in rounds]
            return rounds, scores

        def spy_compact(net, *args, **kwargs):
            spy.trained = _clone(net.module_.get_weights())
            spy.masks = _clone(net.module_.get_masks())
            return compact(net, *args, **kwargs)

        def spy_train_begin(self, net, *args, **kwargs):
            stage = getattr(net, "stage_", None)
            name = None if stage is None else stage.name
            network = net.module_
            masks = _clone(network.get_masks()) if network.premasked_ else None
            spy.stage_starts.append((name, _clone(network.get_weights()), masks))
            return train_begin(self, net, *args, **kwargs)

        monkeypatch.setattr(base, "rewind_point", spy_rewind)
        monkeypatch.setattr(base, "extract_tickets", spy_extract)
        monkeypatch.setattr(base, "compact_fitted_net", spy_compact)
        monkeypatch.setattr(TicketNet, "on_train_begin", spy_train_begin)
