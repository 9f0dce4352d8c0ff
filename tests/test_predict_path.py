"""The lean predict path: one chunk for small inputs, cached masked weights, CSR kernels
where they pay, KMeans routing without repeated validation; same predictions as before."""

import copy
import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn
import torch
from torch import nn

from conftest import small_rtl
from sklearn_rtl import MLP, RTLClassifier, TicketNetwork, _inference, find_prunable
from sklearn_rtl._inference import RoutedModel
from sklearn_rtl._network import _compact_pass
from sklearn_rtl._routing import KMeansRouter


def _data(n=300, d=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5)
    return X, y, (X[:, 3] > 0).astype(int)


def _uncached(clf):
    """The estimator's model on the path of the original code: masked weights formed in
    every forward, no sparse kernels."""
    model = clf._model()
    return RoutedModel(model.router, model.network, model.input_shape, model.device,
                       model.task, cached=False)  # fmt: skip


@pytest.fixture(scope="module", params=["kmeans", "label", "groups"])
def fitted(request):
    X, y, groups = _data()
    clf = small_rtl(routing=request.param)
    if request.param == "kmeans":
        clf.set_params(n_clusters=3)
    clf.fit(X, y, groups=groups)
    assert clf.n_tickets_ >= 2
    return clf, request.param


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("n_rows", [1, 8200])
def test_lean_path_gives_the_outputs_of_the_chunked_uncached_path(fitted, sparse, n_rows,
                                                                    monkeypatch):  # fmt: skip
    clf, routing = fitted
    rng = np.random.default_rng(1)
    X = rng.normal(size=(n_rows, 6)).astype(np.float32)
    X_in = sp.csr_matrix(X) if sparse else X
    groups = (X[:, 3] > 0).astype(int) if routing == "groups" else None
    lean = clf.predict_proba(X_in, groups=groups)
    # the original path (chunks of 8,192 rows: 8,200 rows are two), uncached weights
    Xv = clf._validate_predict_input(X_in)
    scores = _uncached(clf).decision(Xv, groups)
    proba = np.exp(scores - scores.max(axis=1, keepdims=True))
    np.testing.assert_array_equal(lean, proba / proba.sum(axis=1, keepdims=True))
    # other chunks: a ticket's rows split elsewhere, the same outputs up to rounding
    monkeypatch.setattr(_inference, "_INFER_BATCH", 4096)
    np.testing.assert_allclose(clf.predict_proba(X_in, groups=groups), lean, rtol=0, atol=1e-6)


def test_cache_follows_set_masks_inplace_writes_and_new_weights():
    X, y, _ = _data()
    clf = small_rtl(n_clusters=3).fit(X, y)
    network = clf.net_.module_
    before = clf.predict_proba(X)
    masks = network.tickets
    # set_masks: every ticket takes ticket 0's mask
    network.set_masks({n: m[:1].expand_as(m).clone() for n, m in masks.masks.items()})
    after_masks = clf.predict_proba(X)
    assert not np.array_equal(after_masks, before)
    np.testing.assert_array_equal(after_masks, _proba(_uncached(clf), clf, X))
    # an in-place write to a weight
    name = network.prunable[0]
    with torch.no_grad():
        network.get_weights()[name].mul_(2.0)
    doubled = clf.predict_proba(X)
    assert not np.array_equal(doubled, after_masks)
    np.testing.assert_array_equal(doubled, _proba(_uncached(clf), clf, X))
    # set_weights replaces the parameters
    network.set_weights({n: w[0] * 0.5 for n, w in network.get_weights().items()}, 1)
    np.testing.assert_array_equal(clf.predict_proba(X), _proba(_uncached(clf), clf, X))
    network.set_masks(masks)


def _proba(model, clf, X):
    scores = model.decision(clf._validate_predict_input(X))
    proba = np.exp(scores - scores.max(axis=1, keepdims=True))
    return proba / proba.sum(axis=1, keepdims=True)


def test_refit_predicts_with_the_new_weights():
    X, y, _ = _data()
    clf = small_rtl(n_clusters=2).fit(X, y)
    first = clf.predict_proba(X)
    clf.set_params(random_state=7).fit(X, y)
    second = clf.predict_proba(X)
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(second, _proba(_uncached(clf), clf, X))


def test_cache_is_not_pickled_nor_copied():
    X, y, _ = _data()
    clf = small_rtl(n_clusters=2).fit(X, y)
    size = len(pickle.dumps(clf))
    proba = clf.predict_proba(X)
    assert vars(clf.net_.module_)["_inference"].value is not None
    assert abs(len(pickle.dumps(clf)) - size) < 64  # an empty cache, not the weights
    for other in (pickle.loads(pickle.dumps(clf)), copy.deepcopy(clf)):
        assert vars(other.net_.module_)["_inference"].value is None
        np.testing.assert_array_equal(other.predict_proba(X), proba)


def _sparse_network(density=0.05, n_tickets=3, seed=0):
    """A 300-256-256-4 ticket network with random masks of ``density``."""
    torch.manual_seed(seed)
    template = MLP(300, (256, 256), 4)
    network = TicketNetwork(template, n_tickets, find_prunable(template))
    generator = torch.Generator().manual_seed(seed)
    network.set_masks({
        name: torch.rand(m.shape, generator=generator) < density
        for name, m in network.get_masks().items()
    })  # fmt: skip
    return network.eval()


def test_sparse_kernels_follow_the_rule_and_agree_with_dense():
    network = _sparse_network(density=0.05)
    kernels = network.inference_kernels()
    # 300x256 and 256x256 layers keeping 5 %: CSR for every ticket; the output layer is
    # not prunable (dense, not listed)
    assert kernels == {"layers.0.weight": ["csr"] * 3, "layers.2.weight": ["csr"] * 3}
    dense_kept = _sparse_network(density=0.3)
    assert set(sum(dense_kept.inference_kernels().values(), [])) == {"dense"}
    X = torch.randn(700, 300)
    ticket = torch.randint(0, 3, (700,))
    with torch.inference_mode():
        for rows in (slice(0, 1), slice(0, 5), slice(0, 64), slice(None)):
            cached = network(X[rows], ticket[rows], cached=True)
            plain = network(X[rows], ticket[rows])
            torch.testing.assert_close(cached, plain, rtol=0, atol=1e-5)
        torch.testing.assert_close(network(X, cached=True), network(X), rtol=0, atol=1e-5)
        # deterministic: the same call gives the same bits
        assert torch.equal(network(X, ticket, cached=True), network(X, ticket, cached=True))


def test_sparse_kernels_recorded_on_the_fitted_estimator_and_predictions_agree():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(240, 300)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    clf = RTLClassifier(hidden_layer_sizes=(256,), n_clusters=1, sparsity=0.95,
                        n_prune_rounds=1, max_epochs=1, max_prune_epochs=1,
                        random_state=0).fit(X, y)  # fmt: skip
    kernels = clf.net_.module_.inference_kernels()
    assert kernels == {"layers.0.weight": ["csr"]}
    np.testing.assert_allclose(clf.predict_proba(X), _proba(_uncached(clf), clf, X), atol=1e-5)
    np.testing.assert_array_equal(clf.predict(X), clf.predict(X))


def test_one_row_with_an_unknown_ticket_still_raises():
    network = _sparse_network()
    with torch.inference_mode(), pytest.raises(IndexError):
        network(torch.randn(1, 300), torch.tensor([5]), cached=True)


def test_kmeans_fast_routing_is_sklearns_predict():
    X, _, _ = _data(n=600, d=6)
    for min_size in (0, 200):  # every cluster a ticket; some merged into the nearest
        router = KMeansRouter(4, random_state=0, min_size=min_size)
        router.fit(X)
        rows = np.random.default_rng(3).normal(size=(256, 6)).astype(np.float32) * 2
        slow = router._tickets(rows, router.estimator_.predict(rows))
        np.testing.assert_array_equal(router.predict(rows), slow)
        np.testing.assert_array_equal(router.predict(rows[:1]), slow[:1])
        np.testing.assert_array_equal(router.predict(rows.astype(np.float64)), slow)
        big = np.random.default_rng(4).normal(size=(3000, 6)).astype(np.float32)
        np.testing.assert_array_equal(
            router.predict(big), router._tickets(big, router.estimator_.predict(big))
        )


def test_compact_tickets_run_their_layers_with_rows_as_columns_from_16_rows(monkeypatch):
    torch.manual_seed(0)
    chains = {
        "bias": nn.Sequential(
            nn.Linear(30, 9), nn.ReLU(), nn.Linear(9, 5), nn.ReLU(), nn.Linear(5, 3)
        ),
        "no bias": nn.Sequential(nn.Linear(30, 9, bias=False), nn.ReLU(), nn.Linear(9, 3)),
    }  # fmt: skip
    products = []  # the columns layout's products, W @ h^T (+ b)
    addmm, matmul = torch.addmm, torch.Tensor.__matmul__
    monkeypatch.setattr(torch, "addmm", lambda *a: products.append(1) or addmm(*a))
    monkeypatch.setattr(torch.Tensor, "__matmul__", lambda a, b: products.append(1) or matmul(a, b))
    for name, chain in chains.items():
        calls = []
        chain.register_forward_hook(lambda *args, calls=calls: calls.append(1))
        for n_rows in (1, 15, 16, 200):
            X = torch.randn(n_rows, 30)
            products.clear()
            with torch.inference_mode():
                got = _compact_pass(chain, X)
            assert len(products) == (len(chain) + 1) // 2 * (n_rows >= 16), (name, n_rows)
            with torch.no_grad():
                expected = chain(X)
            torch.testing.assert_close(got, expected, rtol=0, atol=1e-5, msg=name)
        assert len(calls) == 4, name  # only the expected values called the module
    conv = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten())
    X = torch.randn(20, 1, 5, 5)
    torch.testing.assert_close(_compact_pass(conv, X), conv(X))


@pytest.fixture(scope="module")
def tabular():
    X, y, _ = _data()
    return small_rtl(n_clusters=3).fit(X, y), X


def _validated(clf, X):
    """What scikit-learn's ``validate_data`` makes of ``X`` at predict time."""
    from sklearn.utils.validation import validate_data

    return validate_data(clf, X, dtype=np.float32, accept_sparse=("csr", "csc"),
                         ensure_all_finite=True, reset=False)  # fmt: skip


def test_plain_rows_are_what_validate_data_returns(tabular):
    clf, X = tabular
    X64 = X.astype(np.float64) * 1.1
    read_only, large_read_only = X.copy(), np.tile(X, (40, 1))
    read_only.flags.writeable = large_read_only.flags.writeable = False
    cases = {
        "float32": X, "float64": X64, "F order": np.asfortranarray(X64),
        "strided": X64[::3], "read-only": read_only, "one row": X64[:1],
        "large (torch's sum)": np.tile(X, (40, 1)), "large, strided": np.tile(X64, (80, 1))[::2],
    }  # fmt: skip
    cases["large, read-only"] = large_read_only  # torch's sum, without its read-only warning
    for name, rows in cases.items():
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            plain = clf._plain_rows(rows)
        expected = _validated(clf, rows)
        assert plain is not None, name
        assert plain.dtype == expected.dtype == np.float32, name
        np.testing.assert_array_equal(plain, expected, err_msg=name)
        # no copy where validate_data makes none (float32 in, float32 out)
        assert np.shares_memory(plain, rows) == np.shares_memory(expected, rows), name
    with sklearn.config_context(assume_finite=True):  # validate_data skips the check too
        nan = X[:2].copy()
        nan[0, 0] = np.nan
        np.testing.assert_array_equal(clf._plain_rows(nan), _validated(clf, nan))


def test_other_inputs_go_to_validate_data_and_its_messages(tabular):
    clf, X = tabular
    nan, inf = X[:3].copy(), X[:3].astype(np.float64)
    nan[1, 2], inf[0, 0] = np.nan, 1e39  # finite in float64, inf in float32
    huge = np.full((4, 6), 3e38, dtype=np.float32)  # finite values whose sum overflows
    refused = {
        "list": X[:2].tolist(), "int": X[:2].astype(np.int64), "1-D": X[0],
        "3-D": X[:2, :, None], "no rows": X[:0], "width": X[:2, :4], "NaN": nan,
        "too large for float32": inf, "big-endian": X[:2].astype(">f4"),
        "sum overflows": huge, "NaN, large": np.tile(nan, (4000, 1)),
        "inf, large": np.tile(inf, (4000, 1)), "sum overflows, large": np.tile(huge, (3000, 1)),
    }  # fmt: skip
    for name, rows in refused.items():
        assert clf._plain_rows(rows) is None, name
    assert refused["NaN, large"].size >= 65536  # torch's sum decides
    messages = {
        "1-D": "Expected 2D array", "3-D": "Found array with dim 3", "no rows": "0 sample",
        "width": "X has 4 features", "NaN": "Input X contains NaN",
        "too large for float32": "infinity or a value too large",
    }  # fmt: skip
    for name, message in messages.items():
        with pytest.raises(ValueError, match=message):
            clf.predict_proba(refused[name])
    np.testing.assert_array_equal(clf._validate_predict_input(huge), huge)  # sklearn takes it
    np.testing.assert_array_equal(clf.predict_proba(X[:2].astype(">f4")), clf.predict_proba(X[:2]))


def test_estimator_fitted_with_feature_names_still_warns_on_plain_rows():
    pd = pytest.importorskip("pandas")
    X, y, _ = _data()
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])
    clf = small_rtl().fit(frame, y)
    assert clf._plain_rows(X) is None
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        clf.predict_proba(X[:2])
    np.testing.assert_array_equal(clf.predict_proba(frame[:2]), clf.predict_proba(X[:2]))


def test_image_estimator_takes_no_flat_shortcut():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(60, 1, 4, 4)).astype(np.float32)
    clf = small_rtl(n_clusters=1).fit(images, rng.integers(0, 2, 60))
    rows = images[:, :, 0, 0]  # 2-D, as wide as the images' channels (n_features_in_)
    assert clf.n_features_in_ == rows.shape[1]
    assert clf._plain_rows(rows) is None
    with pytest.raises(ValueError, match="samples of shape"):
        clf.predict(rows)
