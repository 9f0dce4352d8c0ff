"""Test-wide settings for tests/ and the doctests in sklearn_rtl/."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tiny test networks train faster on one thread, and the suite never oversubscribes
    the cores when other processes (joblib or Dask workers, notebooks) run beside it."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
