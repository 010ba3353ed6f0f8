"""Sweeps on a Dask cluster (issue 7): the same frames as local processes, tasks really on
the cluster, the scheduler named by the environment, and clear errors without Dask. In a
file of its own, so that the cluster's processes never mix with the local-executor tests."""

import sys

import pytest

from dmf_utils import sweep as sweep_module
from dmf_utils.runs import noisy_full_run
from dmf_utils.sweep import sweep
from test_sweep import RUN_GRID, assert_same_frames, double


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster, distributed.Client(cluster) as client:
        yield client


def test_local_processes_and_a_dask_local_cluster_give_identical_frames(dask_client):
    from distributed import get_task_stream

    in_process = sweep(noisy_full_run, RUN_GRID, seed=3, workers=1)
    local = sweep(noisy_full_run, RUN_GRID, seed=3, workers=2)
    with get_task_stream(client=dask_client) as stream:
        dask = sweep(noisy_full_run, RUN_GRID, seed=3, scheduler=dask_client)
    assert len(stream.data) == 8  # the eight runs really ran on the cluster
    assert len(local) == 8 and local.attrs == {"computed": 8, "cached": 0}
    assert_same_frames(local, dask)
    assert_same_frames(local, in_process)
    assert len({float(e[-1]) for e in local["error"]}) == 8  # eight distinct runs, not one repeated


def in_dask_worker(config, seed):
    import distributed

    try:
        distributed.get_worker()
        return {"on_dask": True}
    except ValueError:
        return {"on_dask": False}


def test_scheduler_address_comes_from_the_environment(dask_client, monkeypatch):
    assert not sweep(in_dask_worker, {"a": [1, 2]}, workers=1)["on_dask"].any()
    monkeypatch.setenv(sweep_module.SCHEDULER_ENV, dask_client.scheduler.address)
    assert sweep(in_dask_worker, {"a": [1, 2]})["on_dask"].all()


def test_missing_distributed_or_a_bad_scheduler_is_named(monkeypatch):
    with pytest.raises(TypeError, match="scheduler must be an address"):
        sweep(double, {"a": [1]}, scheduler=8786)
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r"pip install 'dmf_utils\[distributed\]'"):
        sweep(double, {"a": [1]}, scheduler="tcp://127.0.0.1:1")


