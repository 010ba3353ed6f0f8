"""Sweeps: a grid of configurations mapped over a function, on local processes or a Dask
cluster, resumable from a cache, with seeds that depend on nothing but the configuration.

``sweep(fn, grid)`` calls ``fn(config, seed)`` once per configuration and returns a tidy
DataFrame, one row per configuration in grid order: the configuration's columns, then the
result's. ``config`` is a plain dict, ``seed`` a :class:`numpy.random.SeedSequence` derived
from the root seed and the configuration (:func:`config_seed`); ``fn`` returns a mapping of
result names to values (scalars or arrays).

Executors (the same results on every one, each call limited to ``blas_threads`` BLAS
threads):

* local processes (default): a spawn-started :class:`concurrent.futures.ProcessPoolExecutor`;
  ``workers=1`` runs in this process;
* a Dask ``distributed`` cluster (``pip install 'dmf_utils[distributed]'``), when
  ``scheduler`` is an address such as ``"tcp://host:8786"`` or a ``distributed.Client``, or
  when the environment variable ``DMF_DASK_SCHEDULER`` holds an address.

``fn`` travels by cloudpickle, so a function defined in a notebook works on both; its
workers need ``dmf_utils`` installed. In a script, call :func:`sweep` under
``if __name__ == "__main__":`` (spawned processes import the script).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import itertools
import json
import multiprocessing
import os
import pickle
import signal
import sys
import sysconfig
import threading
import time
import types
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import cloudpickle
import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from ._atomic import atomic_write
from ._checks import check_int
from .provenance import tree_hash

__all__ = [
    "SCHEDULER_ENV",
    "SweepError",
    "SweepProgress",
    "expand_grid",
    "config_seed",
    "code_version",
    "sweep",
]

SCHEDULER_ENV = "DMF_DASK_SCHEDULER"
_PACKAGE_DIR = Path(__file__).resolve().parent
_REPO_ROOT = _PACKAGE_DIR.parent


class SweepError(RuntimeError):
    """A configuration's call failed; the configurations finished before it stay cached."""


@dataclass(frozen=True)
class SweepProgress:
    """State of a running sweep, passed to the ``progress`` hook after every configuration.

    Attributes
    ----------
    done : finished configurations, those read from the cache included.
    total : configurations in the grid.
    cached : configurations read from the cache by this call.
    elapsed : seconds since the sweep started.
    """

    done: int
    total: int
    cached: int
    elapsed: float

    @property
    def rate(self) -> float:
        """Configurations computed per second by this call (cache reads excluded)."""
        return (self.done - self.cached) / self.elapsed if self.elapsed > 0 else 0.0

    def __str__(self) -> str:
        return (f"sweep: {self.done}/{self.total} finished ({self.cached} from the cache), "
                f"{self.rate:.3g} configurations/s")


def _plain(name: str, value):
    """``value`` as a JSON-able plain Python value (numpy scalars and arrays converted)."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not np.isfinite(value):
            raise ValueError(f"configuration value {name}={value!r} must be finite")
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(name, v) for v in value]
    raise TypeError(f"configuration value {name}={value!r} must be a number, string, bool, None "
                    f"or a list of those, not {type(value).__name__}")


def _plain_config(config, where: str) -> dict:
    if not isinstance(config, Mapping) or not config:
        raise TypeError(f"{where} must be a non-empty mapping of parameter names to values")
    for key in config:
        if not isinstance(key, str):
            raise TypeError(f"{where}: parameter names must be strings, got {key!r}")
    return {key: _plain(key, value) for key, value in config.items()}


def expand_grid(grid) -> list[dict]:
    """The configurations of ``grid``, in order.

    Parameters
    ----------
    grid : a mapping of parameter name to a non-empty list of values (the Cartesian product,
        the first parameter varying slowest), or a sequence of configurations (mappings with
        the same parameter names). Values are numbers, strings, bools, None, or lists of those.

    Returns
    -------
    list of dict, one per configuration, with plain Python values.
    """
    if isinstance(grid, Mapping):
        axes = {}
        for name, values in _plain_config(grid, "grid").items():
            if not isinstance(values, list) or not values:
                raise ValueError(f"grid[{name!r}] must be a non-empty list of values, got {values!r}")
            axes[name] = values
        return [dict(zip(axes, combo)) for combo in itertools.product(*axes.values())]
    if isinstance(grid, (str, bytes)) or not isinstance(grid, Sequence) or not grid:
        raise TypeError("grid must be a mapping of parameter lists or a non-empty list of configurations")
    configs = [_plain_config(c, f"grid[{i}]") for i, c in enumerate(grid)]
    names = list(configs[0])
    for i, c in enumerate(configs):
        if set(c) != set(names):
            raise ValueError(f"grid[{i}] has parameters {sorted(c)}, grid[0] has {sorted(names)}: "
                             "every configuration needs the same parameter names")
    return [{name: c[name] for name in names} for c in configs]


def _canonical(config: dict) -> bytes:
    return json.dumps(config, sort_keys=True, separators=(",", ":")).encode()


def config_seed(root_seed: int, config: Mapping) -> np.random.SeedSequence:
    """The random stream of one configuration: ``SeedSequence(root_seed, spawn_key=...)``,
    the spawn key being eight 32-bit words of the SHA-256 of the canonical configuration.

    Independent of the grid's order, of the other configurations and of the executor.
    """
    root_seed = check_int("seed", root_seed, minimum=0)
    digest = hashlib.sha256(_canonical(_plain_config(config, "config"))).digest()
    return np.random.SeedSequence(root_seed, spawn_key=tuple(np.frombuffer(digest, dtype="<u4").tolist()))


def _fingerprint(value, seen: frozenset = frozenset()) -> str:
    """A text that changes when ``value`` does, stable across processes and Python sessions
    (no memory addresses, file names, line numbers or hash-seed-dependent orders).

    User code (functions, classes and modules outside installed packages) is followed into
    what it reads; installed packages count by name (their versions are in the lock).
    """
    if id(value) in seen:
        return f"(recursive {getattr(value, '__qualname__', type(value).__qualname__)})"
    inner = seen | {id(value)}
    if isinstance(value, types.ModuleType):
        path = getattr(value, "__file__", None)
        if path and _is_user_file(path):
            return f"module {value.__name__} {hashlib.sha256(Path(path).read_bytes()).hexdigest()}"
        return f"module {value.__name__}"
    if isinstance(value, functools.partial):
        return "partial(" + ", ".join(_fingerprint(v, inner) for v in (value.func, value.args, value.keywords)) + ")"
    if isinstance(value, types.MethodType):
        return f"method {_fingerprint(value.__func__, inner)} of {_fingerprint(value.__self__, inner)}"
    if isinstance(value, (staticmethod, classmethod)):
        return f"{type(value).__name__} {_fingerprint(value.__func__, inner)}"
    if isinstance(value, property):
        return "property " + " ".join(_fingerprint(f, inner) for f in (value.fget, value.fset, value.fdel))
    if isinstance(value, types.FunctionType):
        if not _is_user_file(value.__code__.co_filename) or (value.__module__ or "").split(".")[0] == "dmf_utils":
            return f"function {value.__module__}.{value.__qualname__}"
        names = sorted(n for n in _global_names(value.__code__) if n in value.__globals__)
        cells = [c.cell_contents if _filled(c) else None for c in value.__closure__ or ()]
        return (f"function {value.__qualname__} {_fingerprint(value.__code__, inner)} "
                f"defaults {_fingerprint(value.__defaults__, inner)} {_fingerprint(value.__kwdefaults__, inner)} "
                f"closure {_fingerprint(dict(zip(value.__code__.co_freevars, cells)), inner)} "
                f"globals {_fingerprint({n: value.__globals__[n] for n in names}, inner)}")
    if isinstance(value, types.CodeType):
        consts = [_fingerprint(c, inner) if isinstance(c, (types.CodeType, frozenset)) else repr(c)
                  for c in value.co_consts]
        return f"code {value.co_code.hex()} {value.co_names} {value.co_varnames} {consts}"
    if isinstance(value, type):
        module = sys.modules.get(value.__module__)
        path = getattr(module, "__file__", None) or ""
        if value.__module__ == "__main__" or (path and _is_user_file(path)):
            members = {k: v for k, v in vars(value).items() if not k.startswith("__") or k in ("__init__", "__call__")}
            return (f"class {value.__qualname__} bases {_fingerprint(value.__bases__, inner)} "
                    f"{_fingerprint(members, inner)}")
        return f"class {value.__module__}.{value.__qualname__}"
    if isinstance(value, np.ndarray):
        return f"array {value.dtype} {value.shape} {hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()}"
    if isinstance(value, (list, tuple)):
        return f"{type(value).__name__}[" + ", ".join(_fingerprint(v, inner) for v in value) + "]"
    if isinstance(value, (set, frozenset)):
        return f"{type(value).__name__}{{" + ", ".join(sorted(_fingerprint(v, inner) for v in value)) + "}"
    if isinstance(value, dict):
        return "dict{" + ", ".join(f"{k!r}: {_fingerprint(v, inner)}" for k, v in value.items()) + "}"
    if isinstance(value, (type(None), bool, int, float, complex, str, bytes)):
        return repr(value)
    state = getattr(value, "__dict__", None)
    described = _fingerprint(type(value), inner)
    if isinstance(state, dict):
        return f"{described} with {_fingerprint(state, inner)}"
    try:
        return f"{described} {hashlib.sha256(pickle.dumps(value, protocol=4)).hexdigest()}"
    except Exception:  # unpicklable: its type is all that can be told
        return f"unpicklable {described}"


def _global_names(code: types.CodeType) -> set[str]:
    """Names a code object may read as globals, nested comprehensions, lambdas and defs included."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def _filled(cell) -> bool:
    try:
        cell.cell_contents
    except ValueError:  # a closure variable not yet assigned
        return False
    return True


@functools.lru_cache(maxsize=None)
def _installed_paths() -> tuple[str, ...]:
    return tuple(str(Path(sysconfig.get_paths()[key])) for key in ("stdlib", "platstdlib", "purelib", "platlib"))


def _is_user_file(filename: str) -> bool:
    """Whether code from ``filename`` is the user's (a script, notebook cell or project
    module), not the standard library, an installed package or ``dmf_utils`` (whose sources
    are hashed as a whole)."""
    if filename.startswith(str(_PACKAGE_DIR)):
        return False
    if filename.startswith("<frozen"):
        return False
    return not filename.startswith(_installed_paths())


def code_version(fn: Callable) -> str:
    """Hex SHA-256 of the code a sweep's results depend on.

    Covers every ``dmf_utils`` source file (editing any of them invalidates cached sweeps)
    and ``fn``'s code (bytecode and constants: independent of comments, file names and line
    numbers), defaults and closure, and the globals it reads (in nested comprehensions,
    lambdas and functions too), followed through the user's own functions, classes (their
    methods) and modules (their source files). Installed packages count by name. State that
    ``fn`` reaches another way (a file it reads, an environment variable) is not seen: pass
    ``version=`` to :func:`sweep`, or clear the cache, when such an input changes.
    """
    h = hashlib.sha256(tree_hash(_PACKAGE_DIR).encode())
    h.update(_fingerprint(fn).encode())
    return h.hexdigest()


def _cache_key(config: dict, root_seed: int, version: str) -> str:
    return hashlib.sha256(_canonical({"config": config, "seed": root_seed, "version": version})).hexdigest()


def _cache_dir(cache) -> Path:
    if not str(cache).strip():
        raise ValueError(f"cache={cache!r} must name a directory (or be None for no cache)")
    path = Path(cache)
    if not path.is_absolute():
        if not (_REPO_ROOT / "pyproject.toml").is_file():
            raise ValueError(f"cache={str(cache)!r} is relative, and dmf_utils is not installed from a repository "
                             "checkout to anchor it at: give an absolute path")
        path = _REPO_ROOT / path
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ValueError(f"cache={str(cache)!r} is, or lies under, a file: it must be a directory") from None
    return path


def _read_cached(path: Path, config: dict):
    """The cached result at ``path``, or None if there is none (or it is unreadable)."""
    try:
        with open(path, "rb") as f:
            entry = pickle.load(f)
    except FileNotFoundError:
        return None
    except Exception:  # a damaged entry is recomputed, never trusted
        return None
    return entry["result"] if entry.get("config") == config else None


def _write_cached(path: Path, config: dict, result: dict) -> None:
    def write(tmp):
        with open(tmp, "wb") as f:
            pickle.dump({"config": config, "result": result}, f, protocol=pickle.HIGHEST_PROTOCOL)
    atomic_write(path, write)


def _init_worker(parent: int) -> None:
    """Local workers leave Ctrl-C to the parent, which stops them all, and die with it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:  # Linux: SIGTERM when the parent dies, even by SIGKILL
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # it died while this worker was starting
        os._exit(1)


def _run_task(task: tuple) -> tuple[int, bytes]:
    """Run one configuration: ``(index, pickled fn, config, seed, blas_threads) -> (index,
    pickled result)``; pickling here makes every executor hand back the same objects."""
    index, payload, config, seed, blas_threads = task
    fn = cloudpickle.loads(payload)
    with threadpool_limits(limits=blas_threads):
        try:
            result = fn(dict(config), seed)
        except Exception as exc:
            raise SweepError(f"configuration {config} failed: {type(exc).__name__}: {exc}") from exc
    try:
        return index, pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise SweepError(f"configuration {config}: its result cannot be pickled "
                         f"({type(exc).__name__}: {exc})") from exc


def _check_result(result, config: dict) -> dict:
    if not isinstance(result, Mapping) or not result:
        raise SweepError(f"configuration {config}: the function must return a non-empty mapping "
                         f"of result names to values, got {type(result).__name__}")
    bad = [name for name in result if not isinstance(name, str)]
    if bad:
        raise SweepError(f"configuration {config}: result names must be strings, got {bad}")
    clash = sorted(set(result) & set(config))
    if clash:
        raise SweepError(f"configuration {config}: result names {clash} repeat parameter names")
    return dict(result)


class _InProcess:
    """``workers=1``: every configuration in this process, in order."""

    def __init__(self, tasks):
        self.tasks = tasks

    def results(self):
        for task in self.tasks:
            yield _run_task(task)

    def close(self):
        pass


class _LocalProcesses:
    """Spawned worker processes (:class:`concurrent.futures.ProcessPoolExecutor`); a worker
    that dies (out of memory, killed) fails the sweep instead of hanging it."""

    def __init__(self, tasks, workers):
        self.tasks = tasks
        self.pool = ProcessPoolExecutor(min(workers, len(tasks)), mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_init_worker, initargs=(os.getpid(),))
        self.futures = {self.pool.submit(_run_task, task): task for task in tasks}
        # spawned workers all start at the first submit; no public handle on them before Python 3.14
        self.processes = list(self.pool._processes.values())

    def results(self):
        for future in as_completed(self.futures):
            try:
                yield future.result()
            except BrokenProcessPool:
                unfinished = [task[2] for f, task in self.futures.items() if not f.done() or f.exception()]
                raise SweepError(f"a worker process died (killed, or out of memory?) while {len(unfinished)} "
                                 f"configurations were unfinished, among them {unfinished[0]}; the finished "
                                 "ones are cached if a cache was given") from None

    def close(self):
        processes = {p.pid: p for p in self.processes} | dict(self.pool._processes or {})
        self.pool.shutdown(wait=False, cancel_futures=True)
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            process.join()


class _Dask:
    """Tasks on a Dask ``distributed`` cluster."""

    def __init__(self, tasks, scheduler):
        self.client, self.owned = _dask_client(scheduler)
        self.futures = {self.client.submit(_run_task, task, pure=False): task for task in tasks}

    def results(self):
        import distributed

        for future in distributed.as_completed(list(self.futures)):
            try:
                yield future.result()
            except SweepError:
                raise
            except Exception as exc:  # KilledWorker, lost connection, ...
                raise SweepError(f"configuration {self.futures[future][2]} failed on the Dask cluster: "
                                 f"{type(exc).__name__}: {exc}") from exc

    def close(self):
        self.client.cancel(list(self.futures))
        if self.owned:
            self.client.close()


def _dask_client(scheduler):
    """``(client, owned)`` for an address or a ``distributed.Client``."""
    if isinstance(scheduler, str) and not scheduler.strip():
        raise ValueError("scheduler='' must be a Dask scheduler address such as 'tcp://host:8786'")
    try:
        import distributed
    except ImportError as exc:
        raise ImportError("a Dask scheduler was given but dask.distributed is not installed: "
                          "pip install 'dmf_utils[distributed]'") from exc
    if isinstance(scheduler, distributed.Client):
        return scheduler, False
    if isinstance(scheduler, str):
        return distributed.Client(scheduler), True
    raise TypeError(f"scheduler must be an address such as 'tcp://host:8786' or a distributed.Client, "
                    f"got {type(scheduler).__name__}")


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM stops the sweep like Ctrl-C (workers stopped, finished results kept)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _progress_hook(progress):
    if progress is None or progress is False:
        return lambda state: None
    if callable(progress):
        return progress
    if progress is True:
        from tqdm import tqdm  # the text bar: on stderr, in a terminal and under a notebook cell alike

        bar = {}

        def show(state: SweepProgress):
            if not bar:
                bar["tqdm"] = tqdm(total=state.total, initial=state.done, unit="config", desc="sweep")
            else:
                bar["tqdm"].update(state.done - bar["tqdm"].n)
            if state.done == state.total:
                bar["tqdm"].close()
        return show
    raise TypeError(f"progress must be None, a bool or a callable taking a SweepProgress, got {progress!r}")


def sweep(
    fn: Callable[[dict, np.random.SeedSequence], Mapping[str, Any]],
    grid,
    *,
    seed: int = 0,
    cache: str | os.PathLike | None = None,
    scheduler=None,
    workers: int | None = None,
    blas_threads: int = 1,
    progress=None,
    version: str | None = None,
) -> pd.DataFrame:
    """Call ``fn(config, config_seed(seed, config))`` for every configuration of ``grid``.

    Parameters
    ----------
    fn : the function of one configuration; returns a non-empty mapping of result names
        (distinct from the parameter names) to values. It must be deterministic given its
        arguments for the results not to depend on the executor.
    grid : see :func:`expand_grid`.
    seed : root seed (int >= 0) of every configuration's stream (:func:`config_seed`).
    cache : directory of finished configurations (one file each, keyed by a hash of the
        configuration, the root seed and :func:`code_version`); a re-run computes only the
        configurations missing there. Relative paths are anchored at the repository root.
        None: no cache.
    scheduler : None (local processes, or ``$DMF_DASK_SCHEDULER`` if set), a Dask scheduler
        address, or a ``distributed.Client``.
    workers : local processes (int >= 1; default: the CPUs this process may use); 1 runs in
        this process. Not used with Dask, whose cluster decides.
    blas_threads : BLAS threads per call (int >= 1).
    progress : None or False (silent), True (a tqdm bar: finished / total, rate), or a
        callable receiving a :class:`SweepProgress` after every configuration.
    version : code version in the cache key; default :func:`code_version` of ``fn``.

    Returns
    -------
    pandas.DataFrame, one row per configuration in grid order, the parameter columns then the
    result columns; ``attrs["computed"]`` and ``attrs["cached"]`` count how the rows were got.

    Raises
    ------
    SweepError
        When ``fn`` fails on a configuration (named in the message). Configurations that
        finished before stay in the cache, as they do after a ``KeyboardInterrupt``.
    """
    if not callable(fn):
        raise TypeError(f"fn must be a function of (config, seed), got {type(fn).__name__}")
    configs = expand_grid(grid)
    seed = check_int("seed", seed, minimum=0)
    blas_threads = check_int("blas_threads", blas_threads, minimum=1)
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = check_int("workers", workers, minimum=1)
    if scheduler is None:
        scheduler = os.environ.get(SCHEDULER_ENV) or None
    report = _progress_hook(progress)
    start = time.monotonic()

    results: list[dict | None] = [None] * len(configs)
    paths: list[Path | None] = [None] * len(configs)
    if cache is not None:
        cache_dir = _cache_dir(cache)
        version = version if version is not None else code_version(fn)
        for i, config in enumerate(configs):
            paths[i] = cache_dir / f"{_cache_key(config, seed, version)}.pkl"
            results[i] = _read_cached(paths[i], config)
    cached = sum(r is not None for r in results)
    report(SweepProgress(cached, len(configs), cached, time.monotonic() - start))

    payload = cloudpickle.dumps(fn)
    tasks = [(i, payload, config, config_seed(seed, config), blas_threads)
             for i, config in enumerate(configs) if results[i] is None]
    if tasks:
        with _sigterm_as_interrupt():
            if scheduler is not None:
                executor = _Dask(tasks, scheduler)
            elif workers == 1 or len(tasks) == 1:
                executor = _InProcess(tasks)
            else:
                executor = _LocalProcesses(tasks, workers)
            try:
                done = cached
                for i, pickled in executor.results():
                    results[i] = _check_result(pickle.loads(pickled), configs[i])
                    if paths[i] is not None:
                        _write_cached(paths[i], configs[i], results[i])
                    done += 1
                    report(SweepProgress(done, len(configs), cached, time.monotonic() - start))
            finally:
                executor.close()

    names = list(results[0])
    for config, result in zip(configs, results):
        if set(result) != set(names):
            raise SweepError(f"configuration {config} returned results {sorted(result)}, the first "
                             f"configuration returned {sorted(names)}: every call must return the same names")
    frame = pd.DataFrame([{**config, **{name: result[name] for name in names}}
                          for config, result in zip(configs, results)])
    frame.attrs.update(computed=len(tasks), cached=cached)
    return frame
