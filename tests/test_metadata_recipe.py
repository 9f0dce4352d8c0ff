"""The README's metadata-routing recipe for routing="groups" inside a Pipeline: every
method that takes groups is requested, predict_proba included (issue 21)."""

import numpy as np
import pytest
import sklearn
from sklearn.datasets import load_iris
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from conftest import small_rtl


def test_readme_recipe_routes_groups_to_every_method():
    X, y = load_iris(return_X_y=True)
    groups = np.arange(len(y)) % 2
    with sklearn.config_context(enable_metadata_routing=True):
        rtl = (
            small_rtl(routing="groups")
            .set_fit_request(groups=True)
            .set_predict_request(groups=True)
            .set_predict_proba_request(groups=True)
            .set_score_request(groups=True)
        )
        pipe = make_pipeline(StandardScaler(), rtl).fit(X, y, groups=groups)
        proba = pipe.predict_proba(X, groups=groups)
        assert pipe[-1].n_tickets_ == 2
        np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-6)
        np.testing.assert_array_equal(pipe.predict(X, groups=groups), proba.argmax(1))
        assert 0.0 <= pipe.score(X, y, groups=groups) <= 1.0
        unrequested = small_rtl(routing="groups").set_fit_request(groups=True)
        unrequested.set_predict_request(groups=True)
        pipe = make_pipeline(StandardScaler(), unrequested).fit(X, y, groups=groups)
        with pytest.raises(Exception, match="groups"):
            pipe.predict_proba(X, groups=groups)
