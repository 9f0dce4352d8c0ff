"""Fits with ``device="cuda"``: the batches are gathered on the GPU, and every output path of
a GPU-fitted model agrees with its ``predict_proba``.

Skipped without a CUDA GPU (CI has none); run on the device machine with
``pytest tests/test_cuda.py``. The loader's CPU path is checked everywhere.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from skorch.dataset import Dataset
from test_agreement import _cnn, _kmeans_default, _predict

import sklearn_rtl
from sklearn_rtl._batches import TicketBatchLoader

GPU = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _loader_batches(device, sparse=False):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 6)).astype(np.float32)
    X = sp.csr_matrix(X) if sparse else X
    ticket = np.repeat(np.arange(3), 100)
    weight = rng.random(300).astype(np.float32)
    dataset = Dataset({"X": X, "ticket": ticket, "weight": weight}, rng.integers(0, 2, 300))
    loader = TicketBatchLoader(dataset, 32, rng=np.random.default_rng(1), device=device)
    return list(loader)


@pytest.mark.parametrize("device", ["cpu", None])
def test_loader_on_the_cpu_gives_numpy_rows(device):
    (batch, y), *_ = _loader_batches(device)
    assert isinstance(batch["X"], np.ndarray) and isinstance(y, np.ndarray)
    assert batch["ticket"].device.type == "cpu"


@GPU
@pytest.mark.parametrize("sparse", [False, True])
def test_loader_gathers_on_the_gpu_the_rows_the_cpu_gathers(sparse):
    on_cpu, on_gpu = _loader_batches("cpu", sparse), _loader_batches("cuda", sparse)
    assert len(on_cpu) == len(on_gpu) > 1
    for (cpu_batch, cpu_y), (gpu_batch, gpu_y) in zip(on_cpu, on_gpu, strict=True):
        # sparse X stays on the CPU (densified one batch at a time); dense X lives on the GPU
        expected = "cpu" if sparse else "cuda"
        assert torch.as_tensor(gpu_batch["X"]).device.type == expected
        assert gpu_batch["ticket"].device.type == "cpu"  # grouped on the CPU: no sync
        np.testing.assert_array_equal(torch.as_tensor(gpu_batch["X"]).cpu(), cpu_batch["X"])
        np.testing.assert_array_equal(torch.as_tensor(gpu_y).cpu(), cpu_y)
        np.testing.assert_array_equal(gpu_batch["weight"].cpu(), cpu_batch["weight"])


def _to_torch_outputs(estimator, X):
    module = estimator.to_torch()
    device = next(module.parameters(), torch.empty(0)).device
    with torch.no_grad():
        return module(torch.as_tensor(X, device=device)).cpu().numpy()


@GPU
@pytest.mark.parametrize(
    "make",
    [
        lambda: _kmeans_default(False, device="cuda"),
        lambda: _kmeans_default(True, device="cuda"),
        lambda: _kmeans_default(False, device="cuda", prune_granularity="neuron"),
        lambda: _cnn(device="cuda"),
    ],
    ids=["kmeans", "kmeans_sparse", "neuron", "cnn"],
)
def test_gpu_fit_agrees_across_outputs(make, tmp_path):
    case = make()  # asserts its ticket count (2 or 3 of 4 clusters kept)
    est = case.estimator
    assert next(est.net_.module_.parameters()).is_cuda
    expected = case.expected()
    np.testing.assert_allclose(_to_torch_outputs(est, case.dense_x()), expected, atol=1e-5)
    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_allclose(_predict(restored, case.X, None), expected, atol=1e-5)
    sklearn_rtl.save(est, tmp_path / "model.rtl")
    loaded = sklearn_rtl.load(tmp_path / "model.rtl")
    np.testing.assert_allclose(_predict(loaded, case.X, None), expected, atol=1e-5)


@GPU
def test_gpu_fit_learns_what_the_cpu_fit_learns():
    """Same seed, same batches: the GPU's kernels round differently, not another model."""
    gpu = _kmeans_default(False, device="cuda")
    cpu = _kmeans_default(False)
    agree = (gpu.estimator.predict(gpu.X) == cpu.estimator.predict(cpu.X)).mean()
    assert gpu.estimator.n_tickets_ == cpu.estimator.n_tickets_
    assert agree > 0.9, agree
