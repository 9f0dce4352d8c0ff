"""Image input and custom networks: the default CNN, any torch module, prunable choice,
per-ticket batch norm, pickling / cloning / searching, and the device story."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from torch import nn

from conftest import small_rtl
from sklearn_rtl import RTLClassifier, SmallCNN, TicketBatchNormNetwork, TicketNetwork
from sklearn_rtl._models import network_input_shape
from sklearn_rtl._prunable import resolve_prunable

SMALL = dict(
    n_clusters=2, min_cluster_size=0, lr=5e-3, sparsity=0.5, module_params={"channels": (4, 8)}
)


@pytest.fixture(scope="module")
def images():
    """60 single-channel 8x8 images of 3 classes: a bright pixel whose place is the class."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 20)
    X = rng.normal(scale=0.3, size=(60, 1, 8, 8)).astype(np.float32)
    X[np.arange(60), 0, 2 * y + 1, 2 * y + 1] += 3.0
    return X, y


@pytest.fixture(scope="module")
def fitted(images):
    X, y = images
    return small_rtl(**SMALL).fit(X, y)


class TinyConvNet(nn.Module):
    """A user's module: conv (with bias), batch norm, pooling, two linear layers."""

    def __init__(self, n_classes=3, width=4):
        super().__init__()
        self.conv = nn.Conv2d(1, width, 3, padding=1)
        self.bn = nn.BatchNorm2d(width)
        self.fc = nn.Linear(width, 8)
        self.out = nn.Linear(8, n_classes)

    def forward(self, X):
        h = torch.relu(self.bn(self.conv(X))).mean(dim=(2, 3))
        return self.out(torch.relu(self.fc(h)))


class Conv1dNet(nn.Module):
    """Takes (n, channels, length): 3-D input for a custom module."""

    def __init__(self, n_classes=3):
        super().__init__()
        self.conv = nn.Conv1d(8, 4, 3, padding=1)
        self.out = nn.Linear(4, n_classes)

    def forward(self, X):
        return self.out(torch.relu(self.conv(X)).mean(dim=2))


# ------------------------------------------------------------------ default CNN
def test_image_input_uses_the_default_cnn(fitted, images):
    X, y = images
    assert isinstance(fitted.net_.module_.template, SmallCNN)
    assert fitted.input_shape_ == (1, 8, 8)
    assert fitted.n_features_in_ == 1  # scikit-learn's convention for nd X: X.shape[1]
    # Only the conv weights are pruned; batch norm and the linear head stay dense.
    assert fitted.net_.module_.prunable == ["features.0.weight", "features.4.weight"]
    assert set(fitted.layer_sparsity_) == set(fitted.layer_similarity_)
    for sparsity in fitted.layer_sparsity_.values():
        assert sparsity.shape == (2,)
        np.testing.assert_allclose(sparsity, 0.5, atol=0.02)
    pred = fitted.predict(X)
    assert pred.shape == (60,) and set(pred) <= {0, 1, 2}
    proba = fitted.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-6)
    assert fitted.route(X).shape == (60,)


def test_cnn_learns_the_toy_images(images):
    X, y = images
    clf = small_rtl(**{**SMALL, "max_epochs": 6}).fit(X, y)
    assert clf.score(X, y) > 0.6


def test_three_d_and_flat_input_match_four_d(fitted, images):
    X, y = images
    from_3d = small_rtl(**SMALL).fit(X[:, 0], y)
    assert from_3d.input_shape_ == (1, 8, 8)
    flat = small_rtl(**SMALL, input_shape=(1, 8, 8)).fit(X.reshape(60, -1), y)
    assert flat.input_shape_ == (1, 8, 8) and flat.n_features_in_ == 64
    expected = fitted.predict_proba(X)
    # bit-identical, as the README promises: the same fit whatever the input layout
    np.testing.assert_array_equal(from_3d.predict_proba(X[:, 0]), expected)
    np.testing.assert_array_equal(flat.predict_proba(X.reshape(60, -1)), expected)


def test_2d_input_keeps_the_mlp(images):
    X, y = images
    clf = small_rtl(**{**SMALL, "module_params": None, "hidden_layer_sizes": (8,)})
    clf.fit(X.reshape(60, -1), y)
    assert type(clf.net_.module_.template).__name__ == "MLP"
    assert type(clf.net_.module_) is TicketNetwork  # no batch norm: ticket_batchnorm is moot
    assert clf.input_shape_ == (64,)
    assert clf.layer_sparsity_["layers.0.weight"].shape == (2,)


# ------------------------------------------------------------- clear errors
def test_wrong_shapes_raise_value_errors(fitted, images):
    X, y = images
    with pytest.raises(ValueError, match=r"fitted on samples of shape \(1, 8, 8\)"):
        fitted.predict(X[:, 0])
    with pytest.raises(ValueError, match=r"fitted on samples of shape \(1, 8, 8\)"):
        fitted.predict(X[:, :, :4, :])
    with pytest.raises(ValueError):
        fitted.predict(X.reshape(60, -1))
    with pytest.raises(ValueError, match="Without a module"):
        small_rtl(**SMALL).fit(X[:, :, None], y)  # 5-D
    with pytest.raises(ValueError, match="input_shape"):
        small_rtl(**SMALL, input_shape=(1, 7, 7)).fit(X.reshape(60, -1), y)
    with pytest.raises(TypeError, match="input_shape"):
        small_rtl(**SMALL, input_shape=64).fit(X.reshape(60, -1), y)
    # A 2-D model refuses image input with scikit-learn's ValueError.
    mlp = small_rtl(**{**SMALL, "module_params": None, "hidden_layer_sizes": (8,)})
    mlp.fit(X.reshape(60, -1), y)
    with pytest.raises(ValueError):
        mlp.predict(X)


def test_module_that_cannot_take_x_gives_value_error(images):
    X, y = images
    module = nn.Sequential(nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 3))
    with pytest.raises(ValueError, match="cannot take X"):
        small_rtl(**{**SMALL, "module_params": None}, module=module).fit(X, y)
    # ... and takes it once flattened by input_shape.
    clf = small_rtl(**{**SMALL, "module_params": None}, module=module, input_shape=(64,))
    assert clf.fit(X, y).predict(X).shape == (60,)


# ------------------------------------------------------------- custom modules
def test_custom_module_class_with_params(images):
    X, y = images
    clf = small_rtl(**{**SMALL, "module_params": {"width": 3}}, module=TinyConvNet)
    clf.fit(X, y)
    network = clf.net_.module_
    # Conv and hidden Linear weights pruned; conv bias, batch norm and output layer dense.
    assert network.prunable == ["conv.weight", "fc.weight"]
    assert network.get_weights()["conv.weight"].shape[1:] == (3, 1, 3, 3)
    assert clf.predict(X).shape == (60,)


def test_custom_module_instance_is_not_modified(images):
    X, y = images
    module = TinyConvNet()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    clf = small_rtl(**{**SMALL, "module_params": None}, module=module).fit(X, y)
    assert clf.module is module
    for key, value in module.state_dict().items():
        torch.testing.assert_close(value, before[key])
    assert len(list(module.parameters())) == 8  # conv, bn, fc, out: weight and bias each


def test_custom_module_on_3d_input():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 8, 5)).astype(np.float32)
    y = (X[:, 0].mean(1) > 0).astype(int) + (X[:, 1].mean(1) > 0).astype(int)
    clf = small_rtl(**{**SMALL, "module_params": None}, module=Conv1dNet).fit(X, y)
    assert clf.input_shape_ == (8, 5)
    assert clf.net_.module_.prunable == ["conv.weight"]
    assert clf.predict(X).shape == (40,)


def test_prunable_names_and_callable(images):
    X, y = images
    template = TinyConvNet()
    assert resolve_prunable(template, None) == ["conv.weight", "fc.weight"]
    assert resolve_prunable(template, None, prune_output_layer=True)[-1] == "out.weight"
    assert resolve_prunable(template, ["fc.weight", "conv.weight"]) == ["conv.weight", "fc.weight"]
    assert resolve_prunable(template, lambda name, p: name.startswith("conv") and p.ndim == 4) == [
        "conv.weight"
    ]
    with pytest.raises(ValueError, match="does not have"):
        resolve_prunable(template, ["nope.weight"])
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        resolve_prunable(template, ["conv.bias"])
    with pytest.raises(TypeError, match="string"):
        resolve_prunable(template, "conv.weight")

    clf = RTLClassifier(
        **{**SMALL, "module_params": None}, module=TinyConvNet, prunable=["out.weight"]
    ).fit(X, y)
    assert list(clf.layer_sparsity_) == ["out.weight"]
    np.testing.assert_allclose(clf.layer_sparsity_["out.weight"], 0.5, atol=0.1)


def test_network_input_shape_rules():
    assert network_input_shape((64,), None, None) == (64,)
    assert network_input_shape((8, 8), None, None) == (1, 8, 8)
    assert network_input_shape((3, 8, 8), None, None) == (3, 8, 8)
    assert network_input_shape((64,), None, (8, 8)) == (1, 8, 8)
    assert network_input_shape((8, 5), TinyConvNet, None) == (8, 5)
    assert network_input_shape((64,), TinyConvNet, (1, 8, 8)) == (1, 8, 8)
    with pytest.raises(ValueError):
        network_input_shape((1, 1, 8, 8), None, None)


# ---------------------------------------------------------- per-ticket batch norm
def test_ticket_batchnorm_keeps_statistics_per_ticket(images):
    X, y = images
    clf = small_rtl(**SMALL, ticket_batchnorm=True).fit(X, y)
    network = clf.net_.module_
    assert isinstance(network, TicketBatchNormNetwork)
    mean = network.ticket_stat("features.1.running_mean")
    assert mean.shape == (2, 4)
    assert not torch.allclose(mean[0], mean[1])
    assert (network.ticket_stat("features.1.num_batches_tracked") > 0).all()
    # The template's shared statistics are not used (nor updated) in this mode.
    torch.testing.assert_close(network.template.features[1].running_mean, torch.zeros(4))
    assert RTLClassifier().ticket_batchnorm is True  # the measured default
    shared = small_rtl(**SMALL, ticket_batchnorm=False).fit(X, y)
    assert type(shared.net_.module_) is TicketNetwork
    assert not torch.allclose(shared.net_.module_.template.features[1].running_mean, torch.zeros(4))
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    with pytest.raises(TypeError, match="ticket_batchnorm"):
        small_rtl(**SMALL, ticket_batchnorm="yes").fit(X, y)


def _manual_small_cnn(network, X, k, mean, var):
    """Ticket ``k`` of a one-block SmallCNN computed by hand: masked conv, normalisation
    ``(h - mean) / sqrt(var + eps) * gamma + beta`` with the given statistics, ReLU,
    2x2 max-pooling, global average pooling, linear head."""
    w = {name: weight[0] for name, weight in network.get_weights().items()}
    conv = w["features.0.weight"] * network.get_masks()["features.0.weight"][k]
    h = torch.nn.functional.conv2d(X, conv, padding=1)
    eps = network.template.features[1].eps
    shape = (1, -1, 1, 1)
    h = (h - mean.view(shape)) / torch.sqrt(var.view(shape) + eps)
    h = h * w["features.1.weight"].view(shape) + w["features.1.bias"].view(shape)
    h = torch.nn.functional.max_pool2d(torch.relu(h), 2).mean(dim=(2, 3))
    return h @ w["head.weight"].T + w["head.bias"]


def test_ticket_batchnorm_forward_matches_manual_normalization():
    torch.manual_seed(0)
    template = SmallCNN(1, 3, channels=(4,))
    network = TicketBatchNormNetwork(template, 2, ["features.0.weight"])
    with torch.no_grad():
        network.get_masks()["features.0.weight"][1].bernoulli_(0.5)
        network.weights["features__1__weight"].uniform_(0.5, 1.5)
        network.weights["features__1__bias"].normal_()
        network.ticket_stat("features.1.running_mean")[1].copy_(torch.tensor([5.0, -1, 0, 2]))
        network.ticket_stat("features.1.running_var")[1].copy_(torch.tensor([2.0, 0.5, 1, 3]))
    X = torch.randn(3, 1, 4, 4)
    network.eval()
    with torch.no_grad():
        for k in (0, 1):
            mean = network.ticket_stat("features.1.running_mean")[k]
            var = network.ticket_stat("features.1.running_var")[k]
            torch.testing.assert_close(
                network.forward_ticket(X, k), _manual_small_cnn(network, X, k, mean, var)
            )
        # training mode: ticket 0 normalizes with the batch's own statistics and only its
        # running statistics move (momentum 0.1, unbiased variance)
        network.train()
        out = network(X, torch.tensor([0, 0, 0]))
        masked = network.get_weights()["features.0.weight"][0]
        masked = masked * network.get_masks()["features.0.weight"][0]
        conv = torch.nn.functional.conv2d(X, masked, padding=1)
        batch_mean = conv.mean(dim=(0, 2, 3))
        batch_var = conv.var(dim=(0, 2, 3), unbiased=False)
        torch.testing.assert_close(out, _manual_small_cnn(network, X, 0, batch_mean, batch_var))
        torch.testing.assert_close(
            network.ticket_stat("features.1.running_mean")[0], 0.1 * batch_mean
        )
        n = conv.numel() / conv.shape[1]
        torch.testing.assert_close(
            network.ticket_stat("features.1.running_var")[0],
            0.9 + 0.1 * batch_var * n / (n - 1),
        )
    assert int(network.ticket_stat("features.1.num_batches_tracked")[0]) == 1
    assert int(network.ticket_stat("features.1.num_batches_tracked")[1]) == 0
    assert network.ticket_stat("features.1.running_mean")[1].tolist() == [5.0, -1, 0, 2]


# ------------------------------------------------- pickle, clone, searches
def test_pickle_and_clone(fitted, images):
    X, y = images
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict_proba(X), fitted.predict_proba(X))
    assert restored.input_shape_ == fitted.input_shape_
    for layer, masks in fitted.masks_[0].items():
        np.testing.assert_array_equal(restored.masks_[0][layer], masks)
    unfitted = clone(fitted)
    assert not hasattr(unfitted, "net_")
    assert unfitted.get_params()["module_params"] == {"channels": (4, 8)}
    refit = unfitted.fit(X, y)
    np.testing.assert_array_equal(refit.predict_proba(X), fitted.predict_proba(X))  # bitwise


def test_clone_with_module_instance(images):
    X, y = images
    clf = RTLClassifier(
        **{**SMALL, "module_params": None}, module=TinyConvNet(), prunable=["conv.weight"]
    )
    twin = clone(clf)
    assert twin.module is not clf.module and isinstance(twin.module, TinyConvNet)
    assert twin.fit(X, y).predict(X).shape == (60,)


def test_grid_search_on_images(images):
    X, y = images
    search = GridSearchCV(
        small_rtl(**{**SMALL, "max_epochs": 1}),
        {"ticket_batchnorm": [False, True], "sparsity": [0.5]},
        cv=2,
    ).fit(X, y)
    assert len(search.cv_results_["params"]) == 2
    assert search.best_estimator_.input_shape_ == (1, 8, 8)
    assert search.predict(X).shape == (60,)


# ------------------------------------------------------------------- devices
def test_cuda_without_gpu_is_a_clear_error(images, monkeypatch):
    X, y = images
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA GPU"):
        small_rtl(**SMALL, device="cuda").fit(X, y)


def test_model_saved_for_cuda_loads_on_cpu(fitted, images, monkeypatch):
    """What a GPU-fitted model does on a CPU-only machine, simulated on CPU: the skorch
    net says ``device="cuda"``; unpickling without CUDA maps every tensor (weights, packed
    masks, batch-norm statistics) to the CPU and predicts the same."""
    X, _ = images
    from skorch.exceptions import DeviceWarning

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    fitted_copy = pickle.loads(pickle.dumps(fitted))
    fitted_copy.net_.device = "cuda"
    payload = pickle.dumps(fitted_copy)
    with pytest.warns(DeviceWarning):
        restored = pickle.loads(payload)
    assert torch.device(restored.net_.device).type == "cpu"
    assert all(b.device.type == "cpu" for b in restored.net_.module_.buffers())
    np.testing.assert_array_equal(restored.predict(X), fitted.predict(X))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("ticket_batchnorm", [False, True])
def test_fit_on_gpu_predict_on_cpu_after_unpickling(images, monkeypatch, ticket_batchnorm):
    X, y = images
    clf = small_rtl(**SMALL, device="cuda", ticket_batchnorm=ticket_batchnorm).fit(X, y)
    assert next(clf.net_.module_.parameters()).is_cuda
    assert all(b.is_cuda for b in clf.net_.module_.buffers())
    gpu_pred = clf.predict(X)
    payload = pickle.dumps(clf)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        restored = pickle.loads(payload)
    assert torch.device(restored.net_.device).type == "cpu"
    assert not any(b.is_cuda for b in restored.net_.module_.buffers())
    assert (restored.predict(X) == gpu_pred).mean() > 0.95  # GPU vs CPU kernels may differ
