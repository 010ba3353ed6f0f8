"""Sweeps: a grid of configurations mapped over a function, on local processes or a Dask
cluster, resumable from a cache, with seeds that depend on nothing but the configuration.

``sweep(fn, grid)`` calls ``fn(config, seed)`` once per configuration and returns a tidy
DataFrame, one row per configuration in grid order: the configuration's columns, then the
result's. ``config`` is a plain dict, ``seed`` a :class:`numpy.random.SeedSequence` derived
from the root seed and the configuration (:func:`config_seed`); ``fn`` returns a mapping of
result names to values (scalars or arrays).

Executors (the same results on every one, each call limited to ``blas_threads`` BLAS
threads):

* local processes (default): a spawn-started :class:`multiprocessing.pool.Pool`;
  ``workers=1`` runs in this process;
* a Dask ``distributed`` cluster (``pip install 'dmf_utils[distributed]'``), when
  ``scheduler`` is an address such as ``"tcp://host:8786"`` or a ``distributed.Client``, or
  when the environment variable ``DMF_DASK_SCHEDULER`` holds an address.

``fn`` travels by cloudpickle, so a function defined in a notebook works on both; its
workers need ``dmf_utils`` installed.
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import json
import multiprocessing
import numbers
import os
import pickle
import signal
import time
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


def code_version(fn: Callable) -> str:
    """Hex SHA-256 of the ``dmf_utils`` sources and of ``fn`` (module, name, source code).

    Code that ``fn`` calls outside ``dmf_utils`` and outside its own body is not seen: pass
    ``version=`` to :func:`sweep` (or clear the cache) when it changes.
    """
    h = hashlib.sha256(tree_hash(_PACKAGE_DIR).encode())
    h.update(f"{getattr(fn, '__module__', '')}:{getattr(fn, '__qualname__', repr(fn))}".encode())
    try:
        h.update(inspect.getsource(fn).encode())
    except (OSError, TypeError):
        pass
    return h.hexdigest()


def _cache_key(config: dict, root_seed: int, version: str) -> str:
    return hashlib.sha256(_canonical({"config": config, "seed": root_seed, "version": version})).hexdigest()


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


def _init_worker() -> None:
    """Local workers leave Ctrl-C to the parent, which stops them all."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_task(task: tuple) -> tuple[int, Any]:
    """Run one configuration: ``(index, pickled fn, config, seed, blas_threads) -> (index, result)``."""
    index, payload, config, seed, blas_threads = task
    fn = cloudpickle.loads(payload)
    with threadpool_limits(limits=blas_threads):
        try:
            return index, fn(dict(config), seed)
        except Exception as exc:
            raise SweepError(f"configuration {config} failed: {type(exc).__name__}: {exc}") from exc


def _check_result(result, config: dict) -> dict:
    if not isinstance(result, Mapping) or not result:
        raise SweepError(f"configuration {config}: the function must return a non-empty mapping "
                         f"of result names to values, got {type(result).__name__}")
    clash = sorted(set(result) & set(config))
    if clash:
        raise SweepError(f"configuration {config}: result names {clash} repeat parameter names")
    return dict(result)


def _run_local(tasks: list[tuple], workers: int):
    if workers == 1 or len(tasks) == 1:
        yield from map(_run_task, tasks)
        return
    pool = multiprocessing.get_context("spawn").Pool(min(workers, len(tasks)), initializer=_init_worker)
    try:
        yield from pool.imap_unordered(_run_task, tasks, chunksize=1)
        pool.close()
    finally:
        pool.terminate()
        pool.join()


def _dask_client(scheduler):
    """``(client, owned)`` for an address or a ``distributed.Client``."""
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


def _run_dask(tasks: list[tuple], scheduler):
    client, owned = _dask_client(scheduler)
    import distributed

    futures = [client.submit(_run_task, task, pure=False) for task in tasks]
    try:
        for future in distributed.as_completed(futures):
            yield future.result()
    finally:
        client.cancel(futures)
        if owned:
            client.close()


def _progress_hook(progress):
    if progress is None or progress is False:
        return lambda state: None
    if callable(progress):
        return progress
    if progress is True:
        from tqdm.auto import tqdm

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
    configs = expand_grid(grid)
    seed = check_int("seed", seed, minimum=0)
    blas_threads = check_int("blas_threads", blas_threads, minimum=1)
    if workers is None:
        workers = len(os.sched_getaffinity(0))
    workers = check_int("workers", workers, minimum=1)
    if scheduler is None:
        scheduler = os.environ.get(SCHEDULER_ENV) or None
    report = _progress_hook(progress)
    start = time.monotonic()

    results: list[dict | None] = [None] * len(configs)
    paths: list[Path | None] = [None] * len(configs)
    if cache is not None:
        cache_dir = Path(cache)
        if not cache_dir.is_absolute():
            cache_dir = _REPO_ROOT / cache_dir
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
        runs = _run_local(tasks, workers) if scheduler is None else _run_dask(tasks, scheduler)
        done = cached
        for i, result in runs:
            results[i] = _check_result(result, configs[i])
            if paths[i] is not None:
                _write_cached(paths[i], configs[i], results[i])
            done += 1
            report(SweepProgress(done, len(configs), cached, time.monotonic() - start))

    names = list(results[0])
    for config, result in zip(configs, results):
        if list(result) != names:
            raise SweepError(f"configuration {config} returned results {list(result)}, the first "
                             f"configuration returned {names}: every call must return the same names")
    frame = pd.DataFrame([{**config, **result} for config, result in zip(configs, results)])
    frame.attrs.update(computed=len(tasks), cached=cached)
    return frame
