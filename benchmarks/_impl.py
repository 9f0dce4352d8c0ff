"""Switch between the current implementation and the pre-issue-4 one, in one process.

``legacy()`` reproduces what the code did before the speed work: every ticket through
``functional_call`` (generic path) and skorch's default optimizer construction (the
single-tensor Adam loop). Everything else is the same code, so "before" and "after" are
measured side by side in one run on the same data.
"""

from __future__ import annotations

import contextlib

import torch
from skorch import NeuralNet

from sklearn_rtl import _network, _training

_original_init = _network.TicketNetwork.__init__
_original_opt = _training.TicketNet.initialize_optimizer


def _legacy_init(self, *args, **kwargs):
    _original_init(self, *args, **kwargs)
    self.fast_path = False


def _legacy_opt(self, *args, **kwargs):
    return NeuralNet.initialize_optimizer(self)


@contextlib.contextmanager
def implementation(name: str):
    """``"after"`` (current code) or ``"before"`` (generic path, unfused optimizer)."""
    if name == "after":
        yield
        return
    _network.TicketNetwork.__init__ = _legacy_init
    _training.TicketNet.initialize_optimizer = _legacy_opt
    try:
        yield
    finally:
        _network.TicketNetwork.__init__ = _original_init
        _training.TicketNet.initialize_optimizer = _original_opt


def set_threads(n: int) -> None:
    torch.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    except ImportError:  # pragma: no cover
        pass


ROUTER_SECONDS = []


def _timed_make_router(original):
    import time

    def make(*args, **kwargs):
        router = original(*args, **kwargs)
        fit = router.fit

        def timed_fit(*a, **k):
            start = time.perf_counter()
            result = fit(*a, **k)
            ROUTER_SECONDS.append(time.perf_counter() - start)
            return result

        router.fit = timed_fit
        return router

    return make


def time_routers() -> None:
    """Record every router fit's seconds in ``ROUTER_SECONDS`` (to split routing off)."""
    from sklearn_rtl import _base

    if not getattr(_base.make_router, "_timed", False):
        _base.make_router = _timed_make_router(_base.make_router)
        _base.make_router._timed = True
