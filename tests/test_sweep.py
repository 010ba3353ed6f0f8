"""Sweeps over configurations: grids, seeds, local executors, the resumable cache and
progress (issue 7), and the run function the notebooks map. Dask: test_sweep_dask.py."""

import functools
import hashlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from dmf_utils.runs import noisy_full_run
from dmf_utils.sweep import SweepError, SweepProgress, code_version, config_seed, expand_grid, sweep

RUN = dict(n=12, leading=[3.0, 2.0], target_seed=0, depth=3, alpha=0.1, delta=0.3, step_fraction=0.5,
           steps=400, records=12)
RUN_GRID = {"init": ["identity", "gaussian"], "noise": ["symmetric", "non-symmetric"], "replicate": [0, 1],
            **{k: [v] for k, v in RUN.items()}}


def assert_same_frames(a, b):
    """Equal columns, dtypes and every cell bit for bit (array cells included)."""
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    assert list(a.dtypes) == list(b.dtypes)
    for column in a.columns:
        for x, y in zip(a[column], b[column]):
            if isinstance(x, np.ndarray):
                assert x.dtype == y.dtype and np.array_equal(x, y), column
            else:
                assert x == y, column


def no_workers_left(seconds=10.0) -> bool:
    """Whether every child process of this one has exited within ``seconds``."""
    deadline = time.monotonic() + seconds
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.05)
    return not multiprocessing.active_children()


def double(config, seed):
    return {"twice": 2 * config["a"], "draw": float(np.random.default_rng(seed).random())}


def test_grid_mapping_is_the_cartesian_product_first_key_slowest():
    assert expand_grid({"a": [1, 2], "b": ["x", "y", "z"]}) == [
        {"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 1, "b": "z"},
        {"a": 2, "b": "x"}, {"a": 2, "b": "y"}, {"a": 2, "b": "z"}]


def test_grid_list_keeps_order_and_plain_values():
    configs = expand_grid([{"a": np.int64(3), "v": np.array([1.0, 2.0])}, {"v": (4,), "a": 1}])
    assert configs == [{"a": 3, "v": [1.0, 2.0]}, {"a": 1, "v": [4]}]
    assert type(configs[0]["a"]) is int


@pytest.mark.parametrize("grid, message", [
    ({"a": []}, "grid['a'] must be a non-empty list"),
    ({"a": 3}, "grid['a'] must be a non-empty list"),
    ([{"a": 1}, {"b": 1}], "grid[1] has parameters ['b']"),
    ([], "grid must be a mapping"),
    ("abc", "grid must be a mapping"),
    ([{"a": float("nan")}], "a=nan must be finite"),
    ([{"a": object()}], "configuration value a="),
])
def test_bad_grids_are_refused_with_the_parameter_named(grid, message):
    with pytest.raises((TypeError, ValueError)) as info:
        expand_grid(grid)
    assert message in str(info.value)


def test_seed_is_a_spawn_of_the_root_keyed_by_the_configuration():
    digest = hashlib.sha256(json.dumps({"a": 1, "b": "x"}, sort_keys=True, separators=(",", ":")).encode()).digest()
    seq = config_seed(7, {"b": "x", "a": 1})
    assert seq.entropy == 7 and seq.spawn_key == tuple(np.frombuffer(digest, "<u4").tolist())
    assert config_seed(7, {"a": 1, "b": "x"}).generate_state(4).tolist() == seq.generate_state(4).tolist()
    assert config_seed(7, {"a": 2, "b": "x"}).generate_state(4).tolist() != seq.generate_state(4).tolist()
    assert config_seed(8, {"a": 1, "b": "x"}).generate_state(4).tolist() != seq.generate_state(4).tolist()
    with pytest.raises(ValueError, match="seed"):
        config_seed(-1, {"a": 1})


def test_results_do_not_depend_on_grid_order_or_worker_count():
    forward = sweep(double, {"a": [1, 2, 3, 4]}, seed=5, workers=1)
    backward = sweep(double, {"a": [4, 3, 2, 1]}, seed=5, workers=2)
    assert forward["twice"].tolist() == [2, 4, 6, 8]
    assert forward["draw"].tolist() == backward["draw"].tolist()[::-1]
    assert len(set(forward["draw"])) == 4
    assert list(forward.columns) == ["a", "twice", "draw"]


SLOW_MODULE = '''
import os, time

def slow(config, seed):
    """Sleeps, and leaves a mark per call in $CALLS_DIR."""
    time.sleep(0.4)
    open(os.path.join(os.environ["CALLS_DIR"], f"{config['a']}-{os.getpid()}-{time.monotonic_ns()}"), "w").close()
    return {"square": config["a"] ** 2}
'''


def start_slow_sweep(tmp_path, size, cached):
    """A subprocess sweeping ``slow`` over ``size`` configurations (2 workers, a cache),
    returned once ``cached`` of them are in the cache: ``(process, cache dir, calls dir)``."""
    (tmp_path / "slow_module.py").write_text(SLOW_MODULE)
    cache, calls = tmp_path / "cache", tmp_path / "calls"
    calls.mkdir()
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        from slow_module import slow
        from dmf_utils.sweep import sweep
        if __name__ == "__main__":
            sweep(slow, {{"a": list(range({size}))}}, cache={str(cache)!r}, workers=2)
            print("finished")
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], env=dict(os.environ, CALLS_DIR=str(calls)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(list(cache.glob("*.pkl"))) < cached and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    return proc, cache, calls


def test_an_interrupted_sweep_resumes_computing_only_the_rest(tmp_path, monkeypatch):
    proc, cache, calls = start_slow_sweep(tmp_path, 12, cached=3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert "finished" not in out and "KeyboardInterrupt" in err
    finished = {p.name for p in cache.glob("*.pkl")}
    assert 3 <= len(finished) < 12

    sys.path.insert(0, str(tmp_path))
    monkeypatch.setattr(sys, "path", sys.path)
    from slow_module import slow

    for mark in calls.iterdir():
        mark.unlink()
    monkeypatch.setenv("CALLS_DIR", str(calls))
    seen = []
    frame = sweep(slow, {"a": list(range(12))}, cache=cache, workers=1, progress=seen.append)
    assert frame.attrs == {"computed": 12 - len(finished), "cached": len(finished)}
    assert len(list(calls.iterdir())) == 12 - len(finished)  # only the missing ones ran
    assert frame["square"].tolist() == [a * a for a in range(12)]
    assert seen[0] == SweepProgress(len(finished), 12, len(finished), seen[0].elapsed)
    assert [s.done for s in seen] == list(range(len(finished), 13))

    again = sweep(slow, {"a": list(range(12))}, cache=cache, workers=1)
    assert again.attrs == {"computed": 0, "cached": 12}
    assert_same_frames(again, frame)


def children(pid):
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def alive(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc (Linux)")
def test_sigterm_stops_the_workers_and_keeps_what_finished(tmp_path):
    proc, cache, _ = start_slow_sweep(tmp_path, 40, cached=1)
    workers = [pid for pid in children(proc.pid) if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text()]
    assert len(workers) == 2
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in workers)
    assert 1 <= len(list(cache.glob("*.pkl"))) < 40 and not list(cache.glob(".*.tmp"))


def fails_on_three(config, seed):
    if config["a"] == 3:
        raise ArithmeticError("three is not allowed")
    return {"b": config["a"]}


def test_a_failing_configuration_is_named_and_earlier_results_stay_cached(tmp_path):
    with pytest.raises(SweepError, match=r"configuration \{'a': 3\} failed: ArithmeticError: three"):
        sweep(fails_on_three, {"a": [1, 2, 3, 4]}, cache=tmp_path, workers=1)
    assert len(list(tmp_path.glob("*.pkl"))) == 2
    with pytest.raises(SweepError, match=r"\{'a': 3\} failed"):
        sweep(fails_on_three, {"a": [1, 2, 3, 4]}, workers=2)


def test_the_cache_key_follows_seed_version_and_configuration_and_skips_damaged_entries(tmp_path):
    sweep(double, {"a": [1, 2]}, cache=tmp_path, seed=1, workers=1)
    assert sweep(double, {"a": [1, 2]}, cache=tmp_path, seed=1, workers=1).attrs["cached"] == 2
    assert sweep(double, {"a": [1, 2]}, cache=tmp_path, seed=2, workers=1).attrs["cached"] == 0
    assert sweep(double, {"a": [1, 2]}, cache=tmp_path, seed=1, version="v2", workers=1).attrs["cached"] == 0
    assert sweep(double, {"a": [1, 3]}, cache=tmp_path, seed=1, workers=1).attrs["cached"] == 1

    damaged = tmp_path / "damaged"
    sweep(double, {"a": [1, 2]}, cache=damaged, seed=1, workers=1)
    sorted(damaged.glob("*.pkl"))[0].write_bytes(b"damaged")
    fresh = sweep(double, {"a": [1, 2]}, cache=damaged, seed=1, workers=1)
    assert fresh.attrs == {"computed": 1, "cached": 1}
    assert sorted(p.name for p in damaged.iterdir()) == sorted(p.name for p in damaged.glob("*.pkl"))


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("fn, message", [
    (lambda c, s: [1], "must return a non-empty mapping"),
    (lambda c, s: {"a": 1}, r"result names \['a'\] repeat parameter names"),
    (lambda c, s: {0: 1}, r"result names must be strings, got \[0\]"),
    (lambda c, s: {"x": 1} if c["a"] == 1 else {"y": 1}, "every call must return the same names"),
    (lambda c, s: {"gen": (i for i in range(3))}, r"\{'a': [12]\}: its result cannot be pickled"),
])
def test_bad_results_are_refused_and_no_worker_is_left(fn, message, workers):
    with pytest.raises(SweepError, match=message):
        sweep(fn, {"a": [1, 2]}, workers=workers)
    assert no_workers_left()


def test_result_names_in_another_order_are_the_same_names():
    frame = sweep(lambda c, s: {"x": 1, "y": 2} if c["a"] == 1 else {"y": 3, "x": 4}, {"a": [1, 2]}, workers=1)
    assert list(frame.columns) == ["a", "x", "y"] and frame["x"].tolist() == [1, 4]


def dies_on_one(config, seed):
    if config["a"] == 1:
        os._exit(3)
    return {"b": config["a"]}


def test_a_worker_that_dies_fails_the_sweep_instead_of_hanging_it(tmp_path):
    start = time.monotonic()
    with pytest.raises(SweepError, match="a worker process died"):
        sweep(dies_on_one, {"a": [0, 1, 2, 3]}, workers=2)
    assert time.monotonic() - start < 60 and no_workers_left()


def blas_threads_seen(config, seed):
    from threadpoolctl import threadpool_info

    return {"threads": max(info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas")}


@pytest.mark.parametrize("workers", [1, 2])
def test_each_call_gets_the_requested_blas_threads(workers):
    assert sweep(blas_threads_seen, {"a": [1, 2]}, workers=workers)["threads"].tolist() == [1, 1]
    assert sweep(blas_threads_seen, {"a": [1, 2]}, workers=workers, blas_threads=2)["threads"].tolist() == [2, 2]


@pytest.mark.parametrize("kwargs, message", [
    ({"workers": 0}, "workers"), ({"blas_threads": 0}, "blas_threads"), ({"seed": -2}, "seed"),
    ({"progress": "yes"}, "progress must be"), ({"cache": ""}, "cache='' must name a directory"),
    ({"cache": __file__}, "is, or lies under, a file"), ({"cache": __file__ + "/sub"}, "is, or lies under, a file"), ({"scheduler": ""}, "scheduler='' must be"),
    ({"fn": 3}, "fn must be a function"),
])
def test_bad_options_are_named(kwargs, message):
    kwargs = {"fn": double, **kwargs}
    with pytest.raises((TypeError, ValueError), match=message):
        sweep(kwargs.pop("fn"), {"a": [1]}, **kwargs)


def test_progress_reports_finished_total_and_rate():
    seen = []
    sweep(double, {"a": [1, 2, 3]}, workers=1, progress=seen.append)
    assert [(s.done, s.total, s.cached) for s in seen] == [(0, 3, 0), (1, 3, 0), (2, 3, 0), (3, 3, 0)]
    assert seen[-1].rate > 0
    assert str(SweepProgress(3, 4, 1, 2.0)) == "sweep: 3/4 finished (1 from the cache), 1 configurations/s"


def test_progress_true_draws_a_text_bar_on_stderr(capsys):
    sweep(double, {"a": [1, 2, 3]}, workers=1, progress=True)
    err = capsys.readouterr().err
    assert "sweep: 100%" in err and "3/3" in err and "config/s" in err


def define(source, **globals_):
    """The function ``f`` defined by ``source`` in a fresh namespace (as a script or a notebook cell would)."""
    namespace = {"__name__": "__main__", **globals_}
    exec(compile(source, f"<cell {len(source)}>", "exec"), namespace)
    return namespace["f"]


def test_code_version_follows_the_code_and_what_it_reads_not_where_it_lives():
    body = "def f(c, s):\n    return {'x': c['a'] * K + helper(c)}\n"
    helper = define("def f(c):\n    return 1\n")
    base = code_version(define(body, K=2, helper=helper))
    assert code_version(define("\n\n" + body, K=2, helper=helper)) == base  # other file, other line
    assert code_version(define(body, K=3, helper=helper)) != base  # a global it reads
    assert code_version(define(body, K=2, helper=define("def f(c):\n    return 2\n"))) != base  # a function it calls
    assert code_version(define(body.replace("c['a'] * K", "c['a'] * K * 1"), K=2, helper=helper)) != base
    assert code_version(define(body, K=np.arange(3), helper=helper)) != code_version(
        define(body, K=np.arange(4), helper=helper))

    def make(k):
        def f(c, s):
            return {"x": c["a"] * k}
        return f
    assert code_version(make(2)) == code_version(make(2)) != code_version(make(100))  # closures
    for nested in ("def f(c, s):\n    return {'y': sum([K * v for v in [c['a']]])}\n",  # comprehension
                   "def f(c, s):\n    return {'y': (lambda v: K * v)(c['a'])}\n",  # lambda
                   "def f(c, s):\n    def g(v):\n        return K * v\n    return {'y': g(c['a'])}\n"):
        assert code_version(define(nested, K=1.0)) != code_version(define(nested, K=5.0)), nested
    tags = "def f(c, s):\n    return {'y': len(TAGS)}\n"
    assert code_version(define(tags, TAGS={"alpha", "beta", "gamma"})) == code_version(
        define(tags, TAGS={"gamma", "beta", "alpha"})) != code_version(define(tags, TAGS={"alpha"}))
    method = "class Model:\n    def predict(self, v):\n        return BODY\nM = Model()\ndef f(c, s):\n    return {'y': M.predict(c['a'])}\n"
    assert code_version(define(method.replace("BODY", "v"))) != code_version(define(method.replace("BODY", "2 * v")))


def test_a_user_module_the_function_calls_is_part_of_the_code_version(tmp_path, monkeypatch):
    import importlib

    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "helper_module.py").write_text("def g(v):\n    return v\n")
    helper = importlib.import_module("helper_module")
    fn = define("def f(c, s):\n    return {'y': helper_module.g(c['a'])}\n", helper_module=helper)
    before = code_version(fn)
    (tmp_path / "helper_module.py").write_text("def g(v):\n    return 2 * v\n")
    assert code_version(fn) != before
    monkeypatch.delitem(sys.modules, "helper_module")


def test_the_code_version_is_the_same_in_a_fresh_process(tmp_path):
    """A re-run after a restart (new process, new hash seed) must find the cache."""
    (tmp_path / "job.py").write_text(textwrap.dedent("""
        import functools, sys
        from dmf_utils.sweep import code_version
        TAGS = {"alpha", "beta", "gamma"}
        SCALE = {"a": [1.0, 2.0]}
        def f(c, s):
            return {"y": len(TAGS) * sum(SCALE["a"]) * c["a"]}
        print(code_version(f), code_version(functools.partial(f, s=None)))
    """))
    runs = [subprocess.run([sys.executable, str(tmp_path / "job.py")], capture_output=True, text=True,
                           env=dict(os.environ, PYTHONHASHSEED=str(seed)), check=True).stdout for seed in (1, 2)]
    assert runs[0] == runs[1] and len(runs[0].split()) == 2
    assert code_version(functools.partial(double, z=1)) == code_version(functools.partial(double, z=1))
    assert code_version(functools.partial(double, z=1)) != code_version(functools.partial(double, z=2))
    assert code_version(noisy_full_run) == code_version(noisy_full_run)


def test_a_changed_global_is_not_served_from_the_cache(tmp_path):
    source = "def f(c, s):\n    return {'x': c['a'] * K}\n"
    assert sweep(define(source, K=2), {"a": [1, 2]}, cache=tmp_path, workers=1)["x"].tolist() == [2, 4]
    again = sweep(define(source, K=100), {"a": [1, 2]}, cache=tmp_path, workers=1)
    assert again["x"].tolist() == [100, 200] and again.attrs["cached"] == 0


def test_noisy_full_run_is_a_function_of_its_configuration_and_stream():
    config = dict(RUN, init="gaussian", noise="non-symmetric")
    a = noisy_full_run(config, np.random.SeedSequence(1))
    b = noisy_full_run(config, np.random.SeedSequence(1))
    c = noisy_full_run(config, np.random.SeedSequence(2))
    assert all(np.array_equal(a[k], b[k]) for k in a) and not np.array_equal(a["error"], c["error"])
    assert a["iterations"][0] == 0 and a["iterations"][-1] == RUN["steps"]
    assert a["erank"].shape == a["error"].shape == a["iterations"].shape
    assert a["erank"][-1] < a["erank"][0]  # it leaves the near-isotropic start for a low-rank product
    with pytest.raises(ValueError, match="noise='uniform' must be one of"):
        noisy_full_run(dict(config, noise="uniform"), np.random.SeedSequence(1))
