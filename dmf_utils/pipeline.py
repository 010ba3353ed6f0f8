"""Run the collection's notebooks with papermill: manifest, typed parameters, staging.

A run validates every parameter against the notebook's single ``parameters`` cell before
anything is written, executes the notebook in this interpreter's own kernel, writes the
executed notebook to ``build/<id>.ipynb`` and moves the declared figures from a staging
directory into the output directory only once the notebook has succeeded and produced all
of them.
"""

from __future__ import annotations

import ast
import contextlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import ipykernel.kernelspec
import nbformat
import yaml
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from traitlets import default

from ._atomic import atomic_write
from .plotting import FIGURES_ENV, _REPO_ROOT

__all__ = [
    "REPO_ROOT",
    "NOTEBOOKS_DIR",
    "BUILD_DIR",
    "FIGURES_DIR",
    "MANIFEST",
    "PipelineError",
    "ParameterError",
    "NotebookFailed",
    "Entry",
    "RunResult",
    "load_manifest",
    "notebook_parameters",
    "parse_value",
    "resolve_parameters",
    "normalize_notebook",
    "run_entry",
    "CurrentEnvKernelManager",
]

REPO_ROOT = _REPO_ROOT
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
BUILD_DIR = REPO_ROOT / "build"
FIGURES_DIR = REPO_ROOT / "figures"
MANIFEST = NOTEBOOKS_DIR / "manifest.yaml"

# The kernel inherits these: stable reprs, one BLAS thread (deterministic last digits and no
# oversubscription on a shared machine), matplotlib's inline backend.
KERNEL_ENV = {
    "PYTHONHASHSEED": "0",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


class PipelineError(Exception):
    """A run could not be done; ``exit_code`` is what the CLI returns."""

    exit_code = 1


class ParameterError(PipelineError):
    """Unknown name, wrong type, or a notebook without exactly one ``parameters`` cell."""

    exit_code = 2


class NotebookFailed(PipelineError):
    """The notebook raised, or finished without writing a declared output."""


@dataclass(frozen=True)
class Entry:
    """One manifest entry: a notebook, the claim it supports, what it must write."""

    id: str
    claim: str
    outputs: tuple[str, ...]
    notebook: Path
    smoke: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RunResult:
    entry: Entry
    parameters: dict
    outputs: tuple[Path, ...]
    executed: Path
    seconds: float


def load_manifest(path: Path = MANIFEST) -> dict[str, Entry]:
    """Entries of ``notebooks/manifest.yaml`` by id, in file order."""
    data = yaml.safe_load(Path(path).read_text())
    entries = {}
    for item in data["notebooks"]:
        entry = Entry(
            id=item["id"],
            claim=" ".join(item["claim"].split()),
            outputs=tuple(item["outputs"]),
            notebook=Path(path).parent / f"{item['id']}.ipynb",
            smoke=dict(item.get("smoke") or {}),
        )
        entries[entry.id] = entry
    return entries


def _parameter_cells(nb) -> list:
    return [
        c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])
    ]


def notebook_parameters(path: Path) -> dict:
    """Names and defaults of the single ``parameters`` cell of a notebook, in order.

    Raises :class:`ParameterError` if there is not exactly one such cell or if it holds
    anything but assignments of literals to names.
    """
    nb = nbformat.read(path, as_version=4)
    cells = _parameter_cells(nb)
    if len(cells) != 1:
        raise ParameterError(
            f"{Path(path).name}: {len(cells)} cells are tagged 'parameters'; exactly one is needed"
        )
    params = {}
    for node in ast.parse(cells[0].source).body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else (
            node.target if isinstance(node, ast.AnnAssign) else None
        )
        try:
            if not isinstance(target, ast.Name) or node.value is None:
                raise ValueError
            params[target.id] = ast.literal_eval(node.value)
        except ValueError:
            raise ParameterError(
                f"{Path(path).name}: the parameters cell may only assign literals to names; "
                f"line {node.lineno} does not"
            ) from None
    return params


def _describe(params: Mapping) -> str:
    return ", ".join(f"{k} ({type(v).__name__}, default {v!r})" for k, v in params.items())


def _conform(value, default):
    """``value`` converted to the type of ``default``; raises TypeError if it cannot be."""
    if default is None:
        return value
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(default, str):
        if isinstance(value, str):
            return value
    elif isinstance(default, (list, tuple)):
        if isinstance(value, (list, tuple)):
            items = [_conform(v, default[0]) for v in value] if default else list(value)
            return type(default)(items)
    elif isinstance(default, dict):
        if isinstance(value, dict):
            return value
    raise TypeError


def parse_value(raw: str, default):
    """A command-line string as a value of ``default``'s type (THE typing rule of ``-p``).

    Strings stay as given; everything else is read as a Python literal (``3``, ``0.5``,
    ``1e-3``, ``[2, 3]``, ``True``, ``None``), with ``true``/``false``/``null`` also
    accepted. Raises TypeError when the result does not fit the default's type.
    """
    if isinstance(default, str):
        return raw
    aliases = {"true": True, "false": False, "null": None, "none": None}
    if raw.strip().lower() in aliases:
        value = aliases[raw.strip().lower()]
    else:
        try:
            value = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError):
            if default is None:
                return raw
            raise TypeError from None
    return _conform(value, default)


def resolve_parameters(entry: Entry, overrides: Mapping[str, str], *, smoke: bool = False) -> dict:
    """The typed parameters to inject: the manifest's smoke set (if asked), then ``overrides``.

    ``overrides`` maps names to command-line strings. Raises :class:`ParameterError` naming
    the valid parameters for an unknown name or a value of the wrong type.
    """
    declared = notebook_parameters(entry.notebook)
    resolved = {}
    sources = [("smoke set", k, v, False) for k, v in (entry.smoke.items() if smoke else ())]
    sources += [("-p", k, v, True) for k, v in overrides.items()]
    for origin, name, value, is_text in sources:
        if name not in declared:
            raise ParameterError(
                f"{entry.id}: unknown parameter {name!r} ({origin}); valid parameters: "
                f"{_describe(declared)}"
            )
        default = declared[name]
        try:
            resolved[name] = parse_value(value, default) if is_text else _conform(value, default)
        except TypeError:
            raise ParameterError(
                f"{entry.id}: parameter {name!r} expects {type(default).__name__} like its "
                f"default {default!r}, got {value!r} ({origin}); valid parameters: "
                f"{_describe(declared)}"
            ) from None
    return resolved


class _CurrentEnvKernelSpecs(KernelSpecManager):
    """Resolves every kernel name to this interpreter's ipykernel."""

    def get_kernel_spec(self, kernel_name):
        return self.kernel_spec_class(
            resource_dir=ipykernel.kernelspec.RESOURCES, **ipykernel.kernelspec.get_kernel_dict()
        )


class CurrentEnvKernelManager(AsyncKernelManager):
    """Starts ``[sys.executable, -m, ipykernel_launcher, …]`` whatever kernelspec the
    notebook names and whatever kernels the user's Jupyter set-up holds, so notebooks
    always run on the interpreter that runs the pipeline (the venv's)."""

    @default("kernel_spec_manager")
    def _kernel_spec_manager_default(self):
        return _CurrentEnvKernelSpecs(data_dir=self.data_dir)


_TIMING_KEYS = ("start_time", "end_time", "duration")


def normalize_notebook(nb):
    """Remove what changes from run to run or machine to machine (timestamps, paths, random
    injected-cell ids, the Python patch version)."""
    nb.metadata.get("language_info", {}).pop("version", None)
    pm_meta = nb.metadata.get("papermill", {})
    for key in _TIMING_KEYS + ("input_path", "output_path"):
        pm_meta.pop(key, None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        for key in _TIMING_KEYS:
            cell.metadata.get("papermill", {}).pop(key, None)
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.id = "injected-parameters"
    return nb


@contextlib.contextmanager
def _kernel_environment(figures_dir: Path):
    saved = dict(os.environ)
    os.environ.update(KERNEL_ENV)
    os.environ[FIGURES_ENV] = str(figures_dir)
    os.environ.pop("MPLBACKEND", None)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


_STAGING = ".staging-"  # staging directories: .staging-<pid>-<random> inside the figure directory


def _remove_orphaned_staging(out_dir: Path) -> None:
    """Delete staging directories left by runs that were killed (their process is gone)."""
    for path in out_dir.glob(f"{_STAGING}*"):
        pid = path.name[len(_STAGING):].split("-")[0]
        if Path("/proc").is_dir() and not (pid.isdigit() and Path(f"/proc/{pid}").exists()):
            shutil.rmtree(path, ignore_errors=True)


def _failed_cell(nb) -> str:
    own = [c for c in nb.cells if "papermill-error-cell-tag" not in c.metadata.get("tags", [])]
    for i, cell in enumerate(own):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return f"cell {i} raised {out.get('ename')}: {out.get('evalue')}"
    return "no cell output records the error"


def run_entry(
    entry: Entry,
    overrides: Mapping[str, str] | None = None,
    *,
    smoke: bool = False,
    out_dir: Path | None = None,
    build_dir: Path | None = None,
    store: bool = False,
    log: Callable[[str], None] = lambda message: None,
) -> RunResult:
    """Execute one notebook and deliver its declared outputs.

    Parameters
    ----------
    entry : Entry
    overrides : mapping of str to str
        ``-p name=value`` pairs, typed by :func:`resolve_parameters`.
    smoke : bool
        Start from the manifest's smoke parameters.
    out_dir : Path
        Where figures go (default ``figures/``; ``build/smoke/`` for smoke runs, so quick
        figures never replace the real ones).
    build_dir : Path
        Where the executed notebook goes (default ``build/``), as ``<id>.ipynb``; smoke runs
        use its ``smoke/`` subdirectory.
    store : bool
        Also write the executed, normalized notebook back to ``notebooks/<id>.ipynb``
        (default parameters only: it is the committed reference for nbval).
    log : callable
        Receives status lines.

    Raises
    ------
    ParameterError
        Before anything is written.
    NotebookFailed
        The notebook raised or missed an output; the executed notebook is kept in the build
        directory and the previous figures stay untouched.
    """
    import papermill as pm  # heavy import, only needed to execute

    overrides = dict(overrides or {})
    params = resolve_parameters(entry, overrides, smoke=smoke)
    if store and params:
        raise ParameterError(f"{entry.id}: --store keeps default-parameter runs only; drop -p/--smoke")
    build_dir = Path(build_dir or BUILD_DIR) / ("smoke" if smoke else "")
    out_dir = Path(out_dir or (build_dir if smoke else FIGURES_DIR))
    executed = build_dir / f"{entry.id}.ipynb"

    out_dir.mkdir(parents=True, exist_ok=True)
    build_dir.mkdir(parents=True, exist_ok=True)
    _remove_orphaned_staging(out_dir)
    start = time.perf_counter()
    log(f"{entry.id}: running")
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=f"{_STAGING}{os.getpid()}-") as staging:
        staging = Path(staging)
        scratch = staging / "executed.ipynb"
        try:
            with _kernel_environment(staging):
                pm.execute_notebook(
                    str(entry.notebook),
                    str(scratch),
                    parameters=params,
                    kernel_name="python3",
                    kernel_manager_class=CurrentEnvKernelManager,
                    cwd=str(entry.notebook.parent),
                    progress_bar=False,
                    log_output=False,
                )
        except pm.PapermillExecutionError:
            nb = normalize_notebook(nbformat.read(scratch, as_version=4))
            atomic_write(executed, lambda tmp: nbformat.write(nb, tmp))
            raise NotebookFailed(f"{entry.id}: {_failed_cell(nb)}; see {executed}") from None
        nb = normalize_notebook(nbformat.read(scratch, as_version=4))
        atomic_write(executed, lambda tmp: nbformat.write(nb, tmp))
        missing = [name for name in entry.outputs if not (staging / name).is_file()
                   or (staging / name).stat().st_size == 0]
        if missing:
            raise NotebookFailed(
                f"{entry.id}: finished without writing {', '.join(missing)}; see {executed}"
            )
        delivered = []
        for name in entry.outputs:
            os.replace(staging / name, out_dir / name)
            delivered.append(out_dir / name)
    if store:
        atomic_write(entry.notebook, lambda tmp: nbformat.write(nb, tmp))
    seconds = time.perf_counter() - start
    log(f"{entry.id}: done in {seconds:.1f}s")
    return RunResult(entry, params, tuple(delivered), executed, seconds)
