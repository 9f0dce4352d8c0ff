"""The one codec of the fitted network (``encode_network`` / ``decode_network``), shared by
pickle and ``save``: same tensors, same description, buffers included, one validation."""

from __future__ import annotations

import copy
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits, load_iris

from conftest import small_rtl
from sklearn_rtl import MLP, TicketBatchNormNetwork, TicketNetwork, find_prunable
from sklearn_rtl._compact import (
    _inflate,
    available_device,
    check_network_meta,
    decode_network,
    encode_network,
    network_getstate,
)

torch.set_num_threads(1)

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def cnn():
    """A fitted CNN with per-ticket batch-norm statistics and two tickets."""
    digits = load_digits()
    X, y = digits.images[:120].astype(np.float32), digits.target[:120]
    est = small_rtl(routing="groups", module_params=dict(channels=(4,)))
    est.fit(X, y, groups=y % 2)
    assert est.n_tickets_ == 2 and isinstance(est.net_.module_, TicketBatchNormNetwork)
    return est, X, y % 2


@pytest.fixture(scope="module")
def independent():
    """A fitted MLP whose tickets own their weights (``n_copies == n_tickets``)."""
    X, y = load_iris(return_X_y=True)
    est = small_rtl(n_clusters=3, share_weights=False).fit(X.astype(np.float32), y)
    assert est.n_tickets_ >= 2 and est.net_.module_.n_copies == est.n_tickets_
    return est, X.astype(np.float32), None


def _same_tensors(left: dict, right: dict) -> None:
    assert sorted(left) == sorted(right)
    for key in left:
        assert left[key].dtype == right[key].dtype, key
        assert torch.equal(left[key], right[key]), key


def _proba(est, X, groups):
    return est.predict_proba(X, **({} if groups is None else {"groups": groups}))


@pytest.mark.parametrize("case", ["cnn", "independent"])
def test_pickle_and_save_hold_the_same_tensors_and_description(case, request, tmp_path):
    pytest.importorskip("safetensors")
    pytest.importorskip("skops")
    import safetensors.torch

    from sklearn_rtl import save

    est, _, _ = request.getfixturevalue(case)
    network = est.net_.module_
    tensors, meta = encode_network(network)
    assert any(key.startswith("buffer/") for key in tensors) == (case == "cnn")
    # pickle: the codec's tensors (compressed) and its description
    pickled_tensors, pickled_meta = network_getstate(network)["_codec"]
    _same_tensors(tensors, _inflate(pickled_tensors))
    assert pickled_meta == meta
    # save: the same tensors as safetensors, the same description in the manifest
    save(est, tmp_path / "model.rtl")
    with zipfile.ZipFile(tmp_path / "model.rtl") as archive:
        saved = safetensors.torch.load(archive.read("weights.safetensors"))
        manifest = json.loads(archive.read("manifest.json"))
    _same_tensors(tensors, saved)
    n_outputs = manifest["network"].pop("n_outputs")
    assert manifest["network"] == meta
    assert n_outputs == (10 if case == "cnn" else 3)


def test_pickle_stores_batchnorm_statistics_once_and_restores_them(cnn):
    est, X, groups = cnn
    network = est.net_.module_
    state = network_getstate(network)
    # the skeleton's buffers are shape-only meta tensors: the values are in the codec
    skeleton_stats = state["_modules"]["ticket_stats"]
    assert skeleton_stats is not network.ticket_stats
    assert all(b.device.type == "meta" for b in skeleton_stats._buffers.values())
    assert all(b.device.type == "cpu" for b in network.ticket_stats._buffers.values())
    loaded = pickle.loads(pickle.dumps(est))
    for name, value in network.state_dict().items():
        restored = loaded.net_.module_.state_dict()[name]
        assert restored.dtype == value.dtype and torch.equal(restored, value), name
    assert _proba(loaded, X, groups).tobytes() == _proba(est, X, groups).tobytes()


def test_model_pickled_by_0_2_loads_bit_identical():
    """A model pickled by 0.2.0.dev0 (compact arrays under ``_compact``, batch-norm
    statistics in the module tree; committed fixture) predicts exactly as it did."""
    X = np.load(FIXTURES / "rtl_0.2.0.dev0_cnn_X.npy")
    groups = np.load(FIXTURES / "rtl_0.2.0.dev0_cnn_groups.npy")
    expected = np.load(FIXTURES / "rtl_0.2.0.dev0_cnn_proba.npy")
    with open(FIXTURES / "rtl_0.2.0.dev0_cnn.pkl", "rb") as file:
        est = pickle.load(file)
    assert isinstance(est.net_.module_, TicketBatchNormNetwork) and est.n_tickets_ == 2
    assert est.predict_proba(X, groups=groups).tobytes() == expected.tobytes()
    again = pickle.loads(pickle.dumps(est))  # and pickles again in the current format
    assert "_codec" in network_getstate(again.net_.module_)
    assert again.predict_proba(X, groups=groups).tobytes() == expected.tobytes()


def _network(hidden=(8,), n_tickets=2):
    template = MLP(4, hidden, 3)
    return TicketNetwork(template, n_tickets, find_prunable(template))


def test_decode_into_a_fresh_network_is_exact():
    source = _network()
    with torch.no_grad():
        for name in source.prunable:
            mask = getattr(source.masks, name.replace(".", "__"))
            mask[0].bernoulli_(0.5, generator=torch.Generator().manual_seed(0))
    tensors, meta = encode_network(source)
    target = _network()
    decode_network(target, tensors, meta)
    X = torch.randn(6, 4)
    for ticket in range(2):
        assert torch.equal(source.forward_ticket(X, ticket), target.forward_ticket(X, ticket))


@pytest.mark.parametrize(
    "target, match",
    [
        (lambda: _network(hidden=(9,)), r"stored with shape \(8, 4\), the network's is \(9, 4\)"),
        (lambda: _network(n_tickets=3), "Stored 2 tickets, the network has 3"),
        (
            lambda: TicketBatchNormNetwork(MLP(4, (8,), 3), 2, ["layers.0.weight"]),
            "A TicketNetwork was stored, not a TicketBatchNormNetwork",
        ),
    ],
)
def test_decode_refuses_another_architecture(target, match):
    tensors, meta = encode_network(_network())
    with pytest.raises(ValueError, match=match):
        decode_network(target(), tensors, meta)


def test_decode_refuses_tensors_the_description_does_not_list():
    tensors, meta = encode_network(_network())
    with pytest.raises(ValueError, match="not the ones the description lists"):
        decode_network(_network(), {**tensors, "buffer/extra": torch.zeros(1)}, meta)


def _edited(edit):
    _, meta = encode_network(_network())
    meta = copy.deepcopy(meta)
    edit(meta)
    return meta


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda m: m.update({"class": "os.system"}), "class 'os.system'"),
        (lambda m: m.update({"extra": 1}), r"unknown entries \['extra'\]"),
        (lambda m: m["compact"].update({"n_tickets": True}), "n_tickets=True"),
        (lambda m: m["compact"].update({"n_tickets": -1}), "n_tickets=-1"),
        (lambda m: m["compact"].update({"n_copies": 3}), "n_copies=3"),
        (lambda m: m["compact"].update({"format": True}), "compact format True"),
        (lambda m: m["compact"]["shapes"].update({"layers.0.weight": [8, -4]}), "non-negative"),
        (lambda m: m["compact"]["shapes"].update({"layers.0.weight": [8.0, 4]}), "non-negative"),
        (lambda m: m["compact"].update({"prunable": ["nope"]}), "prunable names parameters"),
        (lambda m: m["compact"].pop("shapes"), "compact must hold exactly"),
        (lambda m: m.update({"buffers": {"x": "big"}}), "buffers must map names to shapes"),
        (lambda m: m.update({"device": "warp-drive"}), "not a torch device"),
    ],
)
def test_check_network_meta_validates_types_and_ranges(edit, match):
    check_network_meta(_edited(lambda m: None))  # the untouched description is valid
    with pytest.raises(ValueError, match=f"network description is invalid: .*{match}"):
        check_network_meta(_edited(edit))


def test_available_device_maps_an_absent_gpu_to_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert available_device("cuda") == torch.device("cpu")
    assert available_device("cuda:1") == torch.device("cpu")
    assert available_device("cpu") == torch.device("cpu")


def test_pickle_from_a_gpu_loads_on_the_cpu(monkeypatch):
    """A network pickled on a GPU (its description says ``cuda``) unpickles on the CPU
    when no GPU is available."""
    network = _network()
    state = network_getstate(network)
    state["_codec"][1]["device"] = "cuda:0"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    restored = TicketNetwork.__new__(TicketNetwork)
    restored.__setstate__(state)
    assert {w.device.type for w in restored.get_weights().values()} == {"cpu"}
    X = torch.randn(3, 4)
    assert torch.equal(restored.forward_ticket(X, 1), network.forward_ticket(X, 1))
