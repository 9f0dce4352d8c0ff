"""export_onnx options (issue 21): the TorchScript exporter (dynamo=False) names dynamic
axes instead of dynamic shapes; both give a file that takes any batch size."""

import numpy as np
import pytest
from sklearn.datasets import load_iris

from conftest import small_rtl
from sklearn_rtl import export_onnx

onnxruntime = pytest.importorskip("onnxruntime")


@pytest.mark.parametrize("routing", ["kmeans", "groups"])
def test_export_onnx_without_dynamo(tmp_path, routing):
    X, y = load_iris(return_X_y=True)
    groups = np.arange(len(y)) % 3
    clf = small_rtl(routing=routing, n_clusters=2).fit(X, y, groups=groups)
    assert clf.n_tickets_ >= 2
    path = tmp_path / "m.onnx"
    export_onnx(clf, path, dynamo=False)
    feeds = {"x": X.astype(np.float32)}
    if routing == "groups":
        feeds["groups"] = groups.astype(np.int64)
    proba = onnxruntime.InferenceSession(str(path)).run(None, feeds)[0]
    np.testing.assert_allclose(proba, clf.predict_proba(X, groups=groups), atol=1e-5)
