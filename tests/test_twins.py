"""Every notebook has a jupytext py:percent twin in sync with it (issue 8), so that a change
to a notebook is reviewable as a plain-text diff."""

import shutil
from pathlib import Path

import jupytext
import pytest
from jupytext.config import find_jupytext_configuration_file, load_jupytext_configuration_file

from dmf_utils.pipeline import NOTEBOOKS_DIR, load_manifest
from dmf_utils.report import twin_text

FIX = "run `make twins` (jupytext --sync) after editing a notebook or its twin"


def stale_twins(notebooks_dir: Path) -> list[str]:
    """What is out of sync in ``notebooks_dir``: twins missing, differing, or without a notebook."""
    problems = []
    for notebook in sorted(notebooks_dir.glob("*.ipynb")):
        twin = notebook.with_suffix(".py")
        if not twin.is_file():
            problems.append(f"{twin.name} is missing")
        elif twin.read_text() != twin_text(notebook):
            problems.append(f"{twin.name} differs from {notebook.name}")
    problems += [f"{twin.name} has no notebook" for twin in sorted(notebooks_dir.glob("*.py"))
                 if not twin.with_suffix(".ipynb").is_file()]
    return problems


def test_the_notebooks_are_paired_with_py_percent_twins():
    config = load_jupytext_configuration_file(find_jupytext_configuration_file(str(NOTEBOOKS_DIR)))
    assert config.formats in ("ipynb,py:percent", ["ipynb,py:percent"])
    assert {e.notebook.with_suffix(".py") for e in load_manifest().values()} == set(NOTEBOOKS_DIR.glob("*.py"))


def test_every_twin_is_in_sync_with_its_notebook():
    problems = stale_twins(NOTEBOOKS_DIR)
    assert not problems, "; ".join(problems) + f": {FIX}"


@pytest.mark.parametrize("notebook", sorted(NOTEBOOKS_DIR.glob("*.ipynb")), ids=lambda p: p.stem)
def test_a_twin_round_trips_to_its_notebook_cells(notebook):
    """Syncing from the twin (`make twins` after editing the .py) rewrites no cell of the
    notebook: same sources, same metadata (the pipeline keeps only tags)."""
    import nbformat

    cells = lambda nb: [(c.cell_type, c.source, dict(c.metadata)) for c in nb.cells]
    twin = jupytext.read(notebook.with_suffix(".py"), fmt="py:percent")
    assert cells(twin) == cells(nbformat.read(notebook, as_version=4))


@pytest.fixture
def copy_of_notebooks(tmp_path):
    """fig_depth.ipynb, the pairing and a freshly written twin, whatever state the real twin is in."""
    for path in (NOTEBOOKS_DIR / "fig_depth.ipynb", NOTEBOOKS_DIR / "jupytext.toml"):
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "fig_depth.py").write_text(twin_text(tmp_path / "fig_depth.ipynb"))
    assert stale_twins(tmp_path) == []
    return tmp_path


def test_editing_a_notebook_without_its_twin_is_caught(copy_of_notebooks):
    import nbformat

    path = copy_of_notebooks / "fig_depth.ipynb"
    nb = nbformat.read(path, as_version=4)
    next(c for c in nb.cells if "parameters" in c.metadata.get("tags", [])).source += "\nextra = 1"
    nbformat.write(nb, path)
    assert stale_twins(copy_of_notebooks) == ["fig_depth.py differs from fig_depth.ipynb"]


def test_editing_a_twin_alone_or_losing_it_is_caught(copy_of_notebooks):
    twin = copy_of_notebooks / "fig_depth.py"
    twin.write_text(twin.read_text() + "\n# %%\nprint('added in the twin only')\n")
    assert stale_twins(copy_of_notebooks) == ["fig_depth.py differs from fig_depth.ipynb"]
    twin.rename(copy_of_notebooks / "fig_renamed.py")
    assert stale_twins(copy_of_notebooks) == ["fig_depth.py is missing", "fig_renamed.py has no notebook"]


def test_output_changes_alone_keep_the_twin_in_sync(copy_of_notebooks):
    """The twin holds sources only: re-executing a notebook (make store) never stales it."""
    import nbformat

    path = copy_of_notebooks / "fig_depth.ipynb"
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nbformat.write(nb, path)
    assert stale_twins(copy_of_notebooks) == []
