"""Where a figure came from: parameters, code and input hashes, versions, output hashes.

Every run writes ``<id>.json`` next to its figures; :func:`format_record` renders it for
``dmf-repro provenance ID``. The ``inputs_key`` field — a hash of the notebook's source,
the effective parameters, the ``dmf_utils`` source and the lock file — is what incremental
builds compare to decide that an entry is unchanged.
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import nbformat
from threadpoolctl import threadpool_info

from ._atomic import atomic_write

__all__ = [
    "PACKAGES",
    "sha256_file",
    "notebook_source_hash",
    "tree_hash",
    "git_state",
    "environment",
    "inputs_key",
    "write_record",
    "read_record",
    "format_record",
]

PACKAGES = ("numpy", "matplotlib", "seaborn", "papermill", "nbformat", "ipykernel", "threadpoolctl")


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def notebook_source_hash(path: Path) -> str:
    """Hex SHA-256 of a notebook's cell types and sources only: refreshing its stored
    outputs (``--store``) does not change it, editing any cell does."""
    nb = nbformat.read(path, as_version=4)
    cells = [[c.cell_type, c.source, sorted(c.metadata.get("tags", []))] for c in nb.cells]
    return hashlib.sha256(json.dumps(cells, sort_keys=True).encode()).hexdigest()


def tree_hash(root: Path, pattern: str = "*.py") -> str:
    """Hex SHA-256 over the relative paths and bytes of the files under ``root`` matching
    ``pattern`` (sorted, so independent of the file-system order)."""
    h = hashlib.sha256()
    for path in sorted(Path(root).rglob(pattern)):
        if "__pycache__" in path.parts:
            continue
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def git_state(root: Path) -> dict:
    """``{"commit": sha or None, "dirty": bool or None}``; generated ``figures/`` and
    ``build/`` do not count as changes to the sources."""
    def git(*args):
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True).stdout

    try:
        commit = git("rev-parse", "HEAD").strip()
        dirty = bool(git("status", "--porcelain", "--", ".", ":!figures", ":!build").strip())
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": dirty}


def environment() -> dict:
    """Versions of Python and the key packages, and the BLAS libraries numpy loaded."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    import numpy  # noqa: F401  (threadpoolctl lists the BLAS of loaded modules)

    blas = [
        {k: lib.get(k) for k in ("internal_api", "version", "threading_layer", "architecture")}
        for lib in threadpool_info()
        if lib.get("user_api") == "blas"
    ]
    return {"versions": versions, "blas": blas, "platform": platform.platform(), "executable": sys.executable}


def inputs_key(notebook_hash: str, parameters: dict, package_hash: str, lock_hash: str) -> str:
    """Hash of everything a build depends on (the incremental-build key)."""
    payload = json.dumps([notebook_hash, parameters, package_hash, lock_hash], sort_keys=True, default=repr)
    return hashlib.sha256(payload.encode()).hexdigest()


def write_record(path: Path, record: dict) -> Path:
    """Write a provenance record as indented JSON (parameters in notebook order), atomically."""
    text = json.dumps(record, indent=2, ensure_ascii=False) + "\n"
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def read_record(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def format_record(record: dict) -> str:
    """A readable rendering of a provenance record (``dmf-repro provenance ID``)."""
    git = record["git"]
    state = "unknown" if git["dirty"] is None else ("dirty" if git["dirty"] else "clean")
    env = record["environment"]
    lines = [
        f"{record['id']}: {record['claim']}",
        "",
        "effective parameters" + (" (smoke set)" if record.get("smoke") else "") + ":",
    ]
    width = max(map(len, record["parameters"]), default=0)
    for name, value in record["parameters"].items():
        mark = "  (override)" if name in record["overrides"] else ""
        lines.append(f"  {name:<{width}} = {value!r}{mark}")
    lines += [
        "",
        f"git commit     {git['commit'] or 'unknown'} ({state} tree)",
        f"notebook       {record['notebook']['path']}  cells (sources, tags) sha256 {record['notebook']['sha256'][:16]}",
        f"dmf_utils      sha256 {record['dmf_utils_sha256'][:16]}",
        f"lock file      sha256 {record['lock_sha256'][:16]}",
        "versions       " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()),
        "BLAS           " + ("; ".join(f"{b['internal_api']} {b['version']} ({b['threading_layer']})"
                                       for b in env["blas"]) or "none found"),
        f"executed       {record['executed_notebook']['path']}  sha256 {record['executed_notebook']['sha256'][:16]}",
        f"built at       {record['built_at']}, wall time {record['wall_time_s']:.1f} s",
        "outputs:",
    ]
    lines += [f"  {name}  sha256 {digest}" for name, digest in record["outputs"].items()]
    return "\n".join(lines)
