"""Every notebook has a jupytext py:percent twin in sync with it (issue 8), so that a change
to a notebook is reviewable as a plain-text diff."""

import shutil
from pathlib import Path

import jupytext
import pytest
from jupytext.config import find_jupytext_configuration_file, load_jupytext_configuration_file

from dmf_utils.pipeline import NOTEBOOKS_DIR, load_manifest

FIX = "run `make twins` (jupytext --sync) after editing a notebook or its twin"


def stale_twins(notebooks_dir: Path) -> list[str]:
    """What is out of sync in ``notebooks_dir``: twins missing, differing, or without a notebook."""
    config = load_jupytext_configuration_file(find_jupytext_configuration_file(str(notebooks_dir)))
    problems = []
    for notebook in sorted(notebooks_dir.glob("*.ipynb")):
        twin = notebook.with_suffix(".py")
        expected = jupytext.writes(jupytext.read(notebook), fmt="py:percent", config=config)
        if not twin.is_file():
            problems.append(f"{twin.name} is missing")
        elif twin.read_text() != expected:
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


@pytest.fixture
def copy_of_notebooks(tmp_path):
    for path in [*NOTEBOOKS_DIR.glob("fig_depth.*"), NOTEBOOKS_DIR / "jupytext.toml"]:
        shutil.copy(path, tmp_path / path.name)
    assert stale_twins(tmp_path) == []
    return tmp_path


def test_editing_a_notebook_without_its_twin_is_caught(copy_of_notebooks):
    path = copy_of_notebooks / "fig_depth.ipynb"
    path.write_text(path.read_text().replace("seeds = 3  # noise draws", "seeds = 4  # noise draws"))
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
