"""The INR experiment script (experiments/inr.py) on a tiny setting."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PIL")  # load_sample_image needs Pillow (in the dev extra)

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "inr.py"


@pytest.fixture(scope="module")
def inr():
    spec = importlib.util.spec_from_file_location("inr_experiment", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fourier_features_layout(inr):
    coords = np.array([[0.0, 0.0], [0.5, -1.0]])
    features = inr.fourier_features(coords, n_frequencies=16)
    assert features.shape == (2, 34)  # the paper's input width
    np.testing.assert_array_equal(features[:, :2], coords)
    np.testing.assert_allclose(features[0, 2:18], 0.0)  # sin(0)
    np.testing.assert_allclose(features[0, 18:], 1.0)  # cos(0)


def test_psnr(inr):
    reference = np.zeros((4, 3))
    assert inr.psnr(reference, reference + 0.1) == pytest.approx(20.0)


def test_quick_run_compares_rtl_with_the_single_ticket(inr):
    rows, table = inr.main(["--quick"])
    methods = {row["method"]: row for row in rows}
    assert set(methods) == {"RTL", "single"}
    assert methods["RTL"]["n_tickets"] == 3 and methods["single"]["n_tickets"] == 1
    assert methods["RTL"]["n_params"] > methods["single"]["n_params"]
    assert all(np.isfinite(row["psnr"]) and row["psnr"] > 0 for row in rows)
    assert "RTL (paper, ADE20K)" in table
