"""The example notebooks execute headless, top to bottom, and are committed with outputs.

Each notebook runs on the small settings it ships with (well under a minute on a CPU). The
figures they save go to a temporary folder (``SKLEARN_RTL_FIGURES``), so running the tests
never rewrites the committed ``docs/_static`` images.
"""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NOTEBOOKS = {
    "tabular.ipynb": {
        "tabular_collapse_curve.png",
        "tabular_similarity.png",
        "tabular_ticket_sparsity.png",
    },
    "images.ipynb": {
        "images_clusters.png",
        "images_similarity_label.png",
        "images_layer_similarity.png",
        "images_collapse_curves.png",
    },
}


def _code_cells(nb):
    return [cell for cell in nb.cells if cell.cell_type == "code"]


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_committed_with_outputs(name):
    """Stored notebooks read well on a code host: every code cell ran, in order, no errors."""
    nb = nbformat.read(EXAMPLES / name, as_version=4)
    nbformat.validate(nb)
    cells = _code_cells(nb)
    assert [cell.execution_count for cell in cells] == list(range(1, len(cells) + 1))
    outputs = [out for cell in cells for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    assert sum("image/png" in out.get("data", {}) for out in outputs) >= 2


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_notebook_executes(name, tmp_path, monkeypatch):
    monkeypatch.setenv("SKLEARN_RTL_FIGURES", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(EXAMPLES / name, as_version=4)
    client = NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(EXAMPLES)}},
    )
    client.execute()  # raises CellExecutionError with the cell's traceback on failure

    saved = {p.name for p in tmp_path.glob("*.png")}
    assert saved == NOTEBOOKS[name]
    assert all((tmp_path / f).stat().st_size > 10_000 for f in saved)
    outputs = [out for cell in _code_cells(nb) for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    text = "".join(out.get("text", "") for out in outputs if out.output_type == "stream")
    assert "notebook ran in" in text
