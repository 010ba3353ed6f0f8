"""environment.yml (conda) declares the same packages and versions as pyproject + the lock."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared_by_pip() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + sum(project["optional-dependencies"].values(), [])
    return {_norm(re.split(r"[<>=!~ \[;]", r)[0]) for r in reqs}


def _lock() -> dict[str, str]:
    pins = [line.strip().split("==") for line in (ROOT / "requirements.lock").read_text().splitlines()
            if "==" in line and not line.startswith("#")]
    return {_norm(name): version for name, version in pins}


def _conda() -> dict[str, str]:
    deps = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    out = {}
    for dep in deps:
        if isinstance(dep, str) and dep not in ("pip",) and not dep.startswith("python="):
            name, _, version = dep.partition("==")
            out[_norm(name)] = version
    return out


def test_environment_yml_lists_the_pip_packages():
    assert set(_conda()) == _declared_by_pip()


def test_environment_yml_versions_match_the_lock():
    lock = _lock()
    assert {name: lock[name] for name in _conda()} == _conda()


def test_environment_yml_installs_the_package_itself():
    deps = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    assert {"pip": ["-e ."]} in deps


def test_environment_yml_is_enough_for_binder():
    """Binder (repo2docker) builds from environment.yml alone and opens JupyterLab."""
    conda = _conda()
    assert {"jupyterlab", "jupytext", "ipykernel"} <= set(conda)
    deps = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    assert "python=3.11" in deps
