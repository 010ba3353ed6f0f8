"""Run the collection's notebooks with papermill: manifest, kernel, staging, builds.

A run validates every parameter against the notebook's single ``parameters`` cell before
anything is written, executes the notebook in this interpreter's own kernel, writes the
executed notebook to ``build/<id>.ipynb`` and moves the declared figures — plus their
provenance record ``<id>.json`` — from a staging directory into the output directory only
once the notebook has succeeded and produced all of them. A build runs every manifest entry,
skipping those whose inputs are unchanged, optionally in parallel.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import importlib.util
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Callable, Mapping

import nbformat
import yaml
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager, KernelManager
from traitlets import default

from . import provenance
from ._atomic import atomic_write
from .parameters import (
    ParameterError,
    PipelineError,
    conform,
    describe,
    notebook_parameters,
    parse_value,
)
from .plotting import _REPO_ROOT, FIGURES_ENV

__all__ = [
    "REPO_ROOT",
    "NOTEBOOKS_DIR",
    "BUILD_DIR",
    "FIGURES_DIR",
    "MANIFEST",
    "LOCK_FILE",
    "PipelineError",
    "ParameterError",
    "NotebookFailed",
    "KernelUnavailable",
    "Entry",
    "RunResult",
    "load_manifest",
    "resolve_parameters",
    "preflight_kernel",
    "normalize_notebook",
    "run_entry",
    "build",
    "CurrentEnvKernelManager",
]

REPO_ROOT = _REPO_ROOT
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
BUILD_DIR = REPO_ROOT / "build"
FIGURES_DIR = REPO_ROOT / "figures"
MANIFEST = NOTEBOOKS_DIR / "manifest.yaml"
LOCK_FILE = REPO_ROOT / "requirements.lock"
PACKAGE_DIR = Path(__file__).resolve().parent

# The kernel inherits these: stable reprs, one BLAS thread (deterministic last digits and no
# oversubscription on a shared machine, also when notebooks run in parallel), inline figures.
KERNEL_ENV = {
    "PYTHONHASHSEED": "0",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


class NotebookFailed(PipelineError):
    """The notebook raised, or finished without writing a declared output."""


class KernelUnavailable(PipelineError):
    """The notebook kernel cannot be started; the message says how to fix it."""


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
    """What a run did: ``status`` is ``"done"`` or ``"skipped"`` (inputs unchanged)."""

    entry: Entry
    status: str
    parameters: dict
    outputs: tuple[Path, ...]
    executed: Path | None
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


def resolve_parameters(entry: Entry, overrides: Mapping[str, str] | None = None, *, smoke: bool = False,
                       file_values: Mapping | None = None) -> dict:
    """The typed parameters to inject, from (lowest priority first) the manifest's smoke
    set, a parameter file's values and ``-p`` strings.

    Raises :class:`ParameterError` naming the valid parameters for an unknown name or a
    value of the wrong type.
    """
    declared = notebook_parameters(entry.notebook)
    sources = [("smoke set", k, v, False) for k, v in (entry.smoke.items() if smoke else ())]
    sources += [("parameter file", k, v, False) for k, v in (file_values or {}).items()]
    sources += [("-p", k, v, True) for k, v in (overrides or {}).items()]
    resolved = {}
    for origin, name, value, is_text in sources:
        if name not in declared:
            raise ParameterError(
                f"{entry.id}: unknown parameter {name!r} ({origin}); valid parameters: {describe(declared)}"
            )
        default_value = declared[name]
        try:
            resolved[name] = parse_value(value, default_value) if is_text else conform(value, default_value)
        except TypeError:
            hint = " (quote it in YAML to make it a string)" if isinstance(default_value, str) else ""
            raise ParameterError(
                f"{entry.id}: parameter {name!r} expects {type(default_value).__name__} like its default "
                f"{default_value!r}, got {value!r} ({origin}){hint}; valid parameters: {describe(declared)}"
            ) from None
    return resolved


class _CurrentEnvKernelSpecs(KernelSpecManager):
    """Resolves every kernel name to this interpreter's ipykernel."""

    def get_kernel_spec(self, kernel_name):
        import ipykernel.kernelspec  # imported late: preflight_kernel reports it missing

        return self.kernel_spec_class(
            resource_dir=ipykernel.kernelspec.RESOURCES, **ipykernel.kernelspec.get_kernel_dict()
        )


class _CurrentEnvMixin:
    """This interpreter's kernel, on private IPC sockets, shut down without the SIGINT that
    jupyter_client sends first (it only makes the kernel log a spurious
    ``KeyboardInterrupt caught in kernel``; the shutdown request that follows stops it).

    IPC sockets with a unique path per kernel avoid the TCP race of concurrent kernel
    starts (a free port picked by one process and taken by another: "Address already in
    use", then "Kernel died before replying to kernel_info")."""

    @default("kernel_spec_manager")
    def _kernel_spec_manager_default(self):
        return _CurrentEnvKernelSpecs(data_dir=self.data_dir)

    @default("transport")
    def _transport_default(self):
        return "ipc"

    @default("ip")
    def _ip_default(self):
        return os.path.join(tempfile.gettempdir(), f"dmf-kernel-{uuid.uuid4().hex}-ipc")

    async def _async_interrupt_kernel(self):
        if not self.shutting_down:
            await super()._async_interrupt_kernel()


class CurrentEnvKernelManager(_CurrentEnvMixin, AsyncKernelManager):
    """Starts ``[sys.executable, -m, ipykernel_launcher, …]`` whatever kernelspec the
    notebook names and whatever kernels the user's Jupyter set-up holds, so notebooks
    always run on the interpreter that runs the pipeline (the venv's)."""


class _CurrentEnvSyncKernelManager(_CurrentEnvMixin, KernelManager):
    """The same kernel, blocking API (for the pre-flight check)."""


def preflight_kernel(timeout: float = 60) -> None:
    """Start and stop the notebook kernel once; raise :class:`KernelUnavailable` with the
    exact command that fixes the installation if it cannot start."""
    fix = f"{sys.executable} -m pip install --force-reinstall -r {LOCK_FILE}"
    if importlib.util.find_spec("ipykernel") is None:
        raise KernelUnavailable(f"ipykernel is not installed for {sys.executable}; fix: {fix}")
    km = _CurrentEnvSyncKernelManager(kernel_name="python3")
    client = None
    try:
        km.start_kernel(env={**os.environ, **KERNEL_ENV})
        client = km.client()
        client.start_channels()
        client.wait_for_ready(timeout=timeout)
    except Exception as err:  # any failure to start means the same remedy
        raise KernelUnavailable(
            f"the notebook kernel ({sys.executable} -m ipykernel_launcher) cannot start: "
            f"{type(err).__name__}: {err}; fix: {fix}"
        ) from None
    finally:
        if client is not None:
            client.stop_channels()
        if km.has_kernel:
            km.shutdown_kernel()


_TIMING_KEYS = ("start_time", "end_time", "duration")


def normalize_notebook(nb):
    """Remove what changes from run to run or machine to machine (timestamps, paths, random
    injected-cell ids, the Python patch version) and what only papermill reads (its per-cell
    status, empty tag lists), so that a notebook and its jupytext twin round-trip exactly."""
    nb.metadata.get("language_info", {}).pop("version", None)
    pm_meta = nb.metadata.get("papermill", {})
    for key in _TIMING_KEYS + ("input_path", "output_path"):
        pm_meta.pop(key, None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("papermill", None)
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.id = "injected-parameters"
        if cell.metadata.get("tags") == []:
            del cell.metadata["tags"]
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


def _relative(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def intact_executed_notebook(record: dict) -> Path | None:
    """The executed notebook a provenance record vouches for, if it is there unchanged."""
    executed = record.get("executed_notebook", {})
    path = REPO_ROOT / executed.get("path", "")  # as _relative recorded it
    return path if path.is_file() and provenance.sha256_file(path) == executed.get("sha256") else None


@functools.lru_cache(maxsize=None)
def _code_hashes() -> tuple[str, str]:
    """(dmf_utils source hash, lock-file hash), once per process."""
    lock = provenance.sha256_file(LOCK_FILE) if LOCK_FILE.is_file() else "no lock file"
    return provenance.tree_hash(PACKAGE_DIR), lock


@dataclass(frozen=True)
class _Plan:
    """Everything a run decides before executing: typed parameters, paths, inputs key."""

    params: dict
    effective: dict
    out_dir: Path
    build_dir: Path
    notebook_hash: str
    key: str


def _plan(entry: Entry, overrides=None, *, file_values=None, smoke=False, out_dir=None, build_dir=None) -> _Plan:
    params = resolve_parameters(entry, overrides, smoke=smoke, file_values=file_values)
    effective = {**notebook_parameters(entry.notebook), **params}
    build_dir = Path(build_dir or BUILD_DIR) / ("smoke" if smoke else "")
    out_dir = Path(out_dir or (build_dir if smoke else FIGURES_DIR))
    notebook_hash = provenance.notebook_source_hash(entry.notebook)
    key = provenance.inputs_key(notebook_hash, effective, *_code_hashes())
    return _Plan(params, effective, out_dir, build_dir, notebook_hash, key)


def _unchanged(entry: Entry, out_dir: Path, key: str) -> bool:
    """The last successful run into ``out_dir`` had the same inputs and its files are intact."""
    record_path = out_dir / f"{entry.id}.json"
    try:
        record = provenance.read_record(record_path)
    except (OSError, ValueError):
        return False
    if record.get("inputs_key") != key:
        return False
    return intact_executed_notebook(record) is not None and all(
        (out_dir / name).is_file() and provenance.sha256_file(out_dir / name) == record["outputs"].get(name)
        for name in entry.outputs
    )


def run_entry(
    entry: Entry,
    overrides: Mapping[str, str] | None = None,
    *,
    file_values: Mapping | None = None,
    smoke: bool = False,
    out_dir: Path | None = None,
    build_dir: Path | None = None,
    store: bool = False,
    incremental: bool = False,
    log: Callable[[str], None] = lambda message: None,
) -> RunResult:
    """Execute one notebook and deliver its declared outputs and provenance record.

    Parameters
    ----------
    entry : Entry
    overrides : mapping of str to str
        ``-p name=value`` pairs, typed by :func:`resolve_parameters`.
    file_values : mapping
        Values from a parameter file (``--params FILE.yaml``), typed the same way.
    smoke : bool
        Start from the manifest's smoke parameters.
    out_dir : Path
        Where figures and ``<id>.json`` go (default ``figures/``; ``build/smoke/`` for smoke
        runs, so quick figures never replace the real ones).
    build_dir : Path
        Where the executed notebook goes (default ``build/``), as ``<id>.ipynb``; smoke runs
        use its ``smoke/`` subdirectory.
    store : bool
        Also write the executed, normalized notebook back to ``notebooks/<id>.ipynb``
        (default parameters only: it is the committed reference for nbval).
    incremental : bool
        Skip the run if the inputs are unchanged since the last successful run into
        ``out_dir`` and its outputs are intact.
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

    plan = _plan(entry, overrides, file_values=file_values, smoke=smoke, out_dir=out_dir, build_dir=build_dir)
    if store and plan.params:
        raise ParameterError(f"{entry.id}: --store keeps default-parameter runs only; drop -p/--params/--smoke")
    params, effective, out_dir, build_dir, key = plan.params, plan.effective, plan.out_dir, plan.build_dir, plan.key
    executed = build_dir / f"{entry.id}.ipynb"
    package_hash, lock_hash = _code_hashes()
    if incremental and _unchanged(entry, out_dir, key):
        log(f"{entry.id}: skipped (inputs unchanged)")
        return RunResult(entry, "skipped", effective, tuple(out_dir / n for n in entry.outputs), None, 0.0)

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
                    str(entry.notebook), str(scratch), parameters=params, kernel_name="python3",
                    kernel_manager_class=CurrentEnvKernelManager, cwd=str(entry.notebook.parent),
                    progress_bar=False, log_output=False,
                )
        except pm.PapermillExecutionError:
            nb = normalize_notebook(nbformat.read(scratch, as_version=4))
            atomic_write(executed, lambda tmp: nbformat.write(nb, tmp))
            raise NotebookFailed(f"{entry.id}: {_failed_cell(nb)}; see {_relative(executed)}") from None
        nb = normalize_notebook(nbformat.read(scratch, as_version=4))
        atomic_write(executed, lambda tmp: nbformat.write(nb, tmp))
        missing = [n for n in entry.outputs if not (staging / n).is_file() or (staging / n).stat().st_size == 0]
        if missing:
            raise NotebookFailed(f"{entry.id}: finished without writing {', '.join(missing)}; see {_relative(executed)}")
        seconds = time.perf_counter() - start
        record = {
            "id": entry.id,
            "claim": entry.claim,
            "parameters": effective,
            "overrides": params,
            "smoke": smoke,
            "notebook": {"path": _relative(entry.notebook), "sha256": plan.notebook_hash},
            "dmf_utils_sha256": package_hash,
            "lock_sha256": lock_hash,
            "inputs_key": key,
            "git": provenance.git_state(REPO_ROOT),
            "environment": {**provenance.environment(), "kernel_env": KERNEL_ENV},
            "outputs": {n: provenance.sha256_file(staging / n) for n in entry.outputs},
            "executed_notebook": {"path": _relative(executed), "sha256": provenance.sha256_file(executed)},
            "built_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "wall_time_s": round(seconds, 3),
        }
        provenance.write_record(staging / f"{entry.id}.json", record)
        delivered = []
        for name in entry.outputs + (f"{entry.id}.json",):  # the record last: it vouches for the rest
            os.replace(staging / name, out_dir / name)
            delivered.append(out_dir / name)
    if store:
        atomic_write(entry.notebook, lambda tmp: nbformat.write(nb, tmp))
    log(f"{entry.id}: done in {seconds:.1f}s")
    return RunResult(entry, "done", effective, tuple(delivered[:-1]), executed, seconds)


def terminate_on_sigterm(signum, frame):
    """Signal handler: SIGTERM cleans up like Ctrl-C (staging removed, kernel stopped)."""
    raise KeyboardInterrupt


_WORKER_BUSY = False  # in a pool process: is a notebook running right now?


def _worker_interrupted(signum, frame):
    if _WORKER_BUSY:
        raise KeyboardInterrupt  # the run cleans up, then _run_in_worker ends the process
    os._exit(130)  # idle: nothing to clean up


def _worker_init():
    signal.signal(signal.SIGTERM, _worker_interrupted)
    signal.signal(signal.SIGINT, _worker_interrupted)


def _run_in_worker(entry, **kwargs):
    """run_entry in a pool process; an interrupt ends the process once the run has cleaned
    up, so the pool cannot hand it the next notebook."""
    global _WORKER_BUSY
    _WORKER_BUSY = True
    try:
        return run_entry(entry, **kwargs)
    except KeyboardInterrupt:
        os._exit(130)
    finally:
        _WORKER_BUSY = False


def build(
    entries,
    *,
    smoke: bool = False,
    out_dir: Path | None = None,
    build_dir: Path | None = None,
    store: bool = False,
    force: bool = False,
    jobs: int = 1,
    keep_going: bool = False,
    log: Callable[[str], None] = lambda message: None,
) -> list[RunResult]:
    """Run several entries: skip the unchanged ones (unless ``force``), ``jobs`` at a time.

    Every entry's parameters are validated before any runs; the kernel is checked once
    before the first notebook runs. Each running notebook is one process with one BLAS
    thread. On a failure the others are cancelled, unless ``keep_going``: then all finish
    and :class:`NotebookFailed` lists every failure at the end.
    """
    entries = list(entries)
    for entry in entries:
        resolve_parameters(entry, smoke=smoke)
    kwargs = dict(smoke=smoke, out_dir=out_dir, build_dir=build_dir, store=store, incremental=not force)
    failures, results = [], []

    def finish(entry, outcome):
        if isinstance(outcome, NotebookFailed):
            log(f"{entry.id}: failed → {str(outcome).removeprefix(entry.id + ': ')}")
            failures.append(str(outcome))
            if not keep_going:
                raise NotebookFailed(str(outcome))
        else:
            results.append(outcome)

    checked = False
    if jobs <= 1:
        for entry in entries:
            if not checked and (force or not _would_skip(entry, **kwargs)):
                preflight_kernel()
                checked = True
            try:
                outcome = run_entry(entry, **kwargs, log=log)
            except NotebookFailed as err:
                outcome = err
            finish(entry, outcome)
    else:
        if force or not all(_would_skip(e, **kwargs) for e in entries):
            preflight_kernel()
        pool = ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"), initializer=_worker_init)
        futures = {}
        try:
            futures = {pool.submit(_run_in_worker, e, **kwargs, log=functools.partial(print, flush=True)): e
                       for e in entries}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    try:
                        outcome = future.result()
                    except NotebookFailed as err:
                        outcome = err
                    except BrokenProcessPool:  # a worker was interrupted (Ctrl-C, SIGTERM)
                        raise KeyboardInterrupt from None
                    finish(futures[future], outcome)
        except BaseException:
            for future in futures:
                future.cancel()
            for process in list(getattr(pool, "_processes", {}).values()):
                process.terminate()  # workers clean their staging on SIGTERM, then exit
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
    if failures:
        raise NotebookFailed(f"{len(failures)} of {len(entries)} notebooks failed: " + " | ".join(failures))
    return results


def _would_skip(entry: Entry, *, smoke, out_dir, build_dir, **_) -> bool:
    """Whether an incremental run of ``entry`` would be skipped (no kernel needed)."""
    plan = _plan(entry, smoke=smoke, out_dir=out_dir, build_dir=build_dir)
    return _unchanged(entry, plan.out_dir, plan.key)
