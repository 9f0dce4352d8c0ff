"""Sphinx configuration of sklearn-rtl. Builds offline (no intersphinx) with -W."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))

import sklearn_rtl  # noqa: E402

project = "sklearn-rtl"
author = "sklearn-rtl developers"
copyright = "2026, sklearn-rtl developers"
release = sklearn_rtl.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
default_role = "literal"  # `name` in docstrings renders as code
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]
templates_path: list[str] = []

# API reference: one explicit page (api.rst); no stub files are generated into the tree.
autosummary_generate = False
autodoc_typehints = "none"
autodoc_member_order = "bysource"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# Markdown pages (the changelog and the results pages other scripts write).
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]

html_theme = "alabaster"
html_static_path = ["_static"]
html_title = f"sklearn-rtl {release}"
html_theme_options = {
    "description": "Routing the Lottery: adaptive sparse tickets as scikit-learn estimators",
    "fixed_sidebar": True,
    "page_width": "1100px",
    "sidebar_width": "240px",
}

# ---------------------------------------------------------------------------------------
# Results pages (benchmarks.md, paper-reproduction.md, scaling.md, images.md, ...) are
# written by the benchmark scripts and other contributors and may or may not exist yet.
# index.rst lists them through the placeholder below, replaced by every top-level page that
# exists besides the core pages, so the build (with -W) passes whichever pages exist and
# never warns about a page missing from the toctree.
CORE_PAGES = {
    "index", "install", "user_guide", "examples", "api", "changelog", "design", "architecture"
}
PREFERRED_ORDER = ["benchmarks", "paper-reproduction", "scaling"]
_PLACEHOLDER = "   __optional_pages__"


def _existing_optional_pages() -> list[str]:
    pages = {
        path.stem for suffix in ("*.md", "*.rst") for path in DOCS.glob(suffix)
        if not path.name.startswith(("_", ".")) and path.stem not in CORE_PAGES
    }
    first = [page for page in PREFERRED_ORDER if page in pages]
    return first + sorted(pages - set(first))


def _fill_optional_pages(app, docname, source):
    if docname != "index" or _PLACEHOLDER not in source[0]:
        return
    pages = _existing_optional_pages()
    body = "\n".join(f"   {page}" for page in pages) if pages else ""
    source[0] = source[0].replace(_PLACEHOLDER, body)
    if not pages:
        # An empty toctree is fine, but keep its caption out of the sidebar.
        source[0] = source[0].replace(":caption: Results\n", ":caption: Results\n   :hidden:\n")


# ---------------------------------------------------------------------------------------
# API reference: generated from ``sklearn_rtl.__all__`` so every public name is documented
# (a name added to __all__ appears without editing api.rst), grouped by the module that
# defines it.
_API_PLACEHOLDER = "__api_sections__"
_API_GROUPS = [
    ("Estimators", ("_classifier", "_regressor"),
     "The scikit-learn estimators. Fitted attributes are listed in each docstring."),
    ("Diagnostics", ("_diagnostics", "_collapse"),
     "Mask similarity between tickets (paper Eq. 8), the collapse score and collapse "
     "detection. The estimators compute them in ``fit``; the functions work on any masks."),
    ("Pruning", ("_tickets",), "Pure functions of ticket extraction."),
    ("Networks", ("_network", "_cnn"), "The torch modules and helpers."),
]


def _public_methods(cls):
    """Public methods defined by sklearn_rtl classes in ``cls``'s MRO (plus ``score``)."""
    names = []
    for klass in cls.__mro__:
        if not klass.__module__.startswith("sklearn_rtl"):
            continue
        for name, value in vars(klass).items():
            if name.startswith("_") or name in names:
                continue
            if callable(value) or isinstance(value, property):
                if getattr(value, "__doc__", None):
                    names.append(name)
    if hasattr(cls, "score") and "score" not in names and hasattr(cls, "fit"):
        names.append("score")
    return names


def _api_rst() -> str:
    import inspect

    objects = {name: getattr(sklearn_rtl, name) for name in sklearn_rtl.__all__}
    placed: set[str] = set()
    out = []
    groups = list(_API_GROUPS)
    leftovers = [n for n, o in objects.items()
                 if not any(o.__module__.endswith(m) for _, mods, _ in groups for m in mods)]
    for title, modules, intro in groups + [("Other", (), "")]:
        if title == "Other":
            names = leftovers
        else:
            names = [n for n, o in objects.items()
                     if any(o.__module__ == f"sklearn_rtl.{m}" for m in modules)]
            names.sort(key=lambda n: (modules.index(objects[n].__module__.split(".")[-1]),
                                      sklearn_rtl.__all__.index(n)))
        if not names:
            continue
        out += [title, "-" * len(title), ""]
        if intro:
            out += [intro, ""]
        out += [".. autosummary::", ""] + [f"   {n}" for n in names] + [""]
        for name in names:
            obj = objects[name]
            placed.add(name)
            if inspect.isclass(obj):
                methods = [m for m in _public_methods(obj) if not isinstance(
                    inspect.getattr_static(obj, m, None), property)]
                out.append(f".. autoclass:: {name}")
                if methods:
                    out.append(f"   :members: {', '.join(methods)}")
            else:
                out.append(f".. autofunction:: {name}")
            out.append("")
    return "\n".join(out)


def _fill_api(app, docname, source):
    if docname == "api" and _API_PLACEHOLDER in source[0]:
        source[0] = source[0].replace(_API_PLACEHOLDER, _api_rst())


def setup(app):
    app.connect("source-read", _fill_optional_pages)
    app.connect("source-read", _fill_api)
    return {"parallel_read_safe": True}


if os.environ.get("SKLEARN_RTL_DOCS_DEBUG"):
    print("optional pages:", _existing_optional_pages())
