"""The documentation builds offline with warnings as errors, and covers the public API."""

import re
import subprocess
import sys
from pathlib import Path

import sklearn_rtl

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def test_sphinx_build_warnings_as_errors(tmp_path):
    out = tmp_path / "html"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-E",
            "-q",
            "-b",
            "html",
            "-d",
            str(tmp_path / "doctrees"),
            str(DOCS),
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert result.returncode == 0, f"sphinx-build -W failed:\n{result.stdout}\n{result.stderr}"

    pages = ["index", "install", "user_guide", "examples", "api", "changelog"]
    for page in pages:
        assert (out / f"{page}.html").exists(), page
    # every other top-level page (benchmarks.md, scaling.md, ... when they exist) is built
    # and listed in the index's toctree
    index = (out / "index.html").read_text(encoding="utf-8")
    for source in [*DOCS.glob("*.md"), *DOCS.glob("*.rst")]:
        if source.stem not in pages and not source.name.startswith("_"):
            assert (out / f"{source.stem}.html").exists(), source.name
            assert f'href="{source.stem}.html"' in index, source.name

    api = (out / "api.html").read_text(encoding="utf-8")
    for name in sklearn_rtl.__all__:
        assert f'id="sklearn_rtl.{name}"' in api, f"{name} is missing from the API reference"
    for name in (
        "plot_similarity",
        "plot_layer_similarity",
        "plot_collapse_curve",
        "plot_ticket_sparsity",
    ):
        assert f'id="sklearn_rtl.plotting.{name}"' in api
    assert "Examples" in api

    # every figure the pages show was copied, i.e. exists in docs/_static
    for page in pages:
        html = (out / f"{page}.html").read_text(encoding="utf-8")
        for src in re.findall(r'<img [^>]*src="([^"]+)"', html):
            assert (out / src).exists(), src


def test_readme_links_docs_and_notebooks():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for target in ("docs/", "examples/tabular.ipynb", "examples/images.ipynb"):
        assert target in readme, target
    for link in re.findall(r"\]\(((?:docs|examples)/[^)#]+)", readme):
        assert (ROOT / link).exists(), link


def test_every_public_name_has_a_runnable_example():
    """Every public class and function documents itself with an Examples section (run as
    a doctest by ``python -m pytest``, which collects ``sklearn_rtl/``)."""
    import sklearn_rtl
    import sklearn_rtl.plotting as plotting

    names = [(name, getattr(sklearn_rtl, name)) for name in sklearn_rtl.__all__]
    names += [(name, getattr(plotting, name)) for name in dir(plotting) if name.startswith("plot_")]
    missing = [name for name, obj in names if ">>> " not in (obj.__doc__ or "")]
    assert missing == []
