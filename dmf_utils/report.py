"""The reviewer's report: one static page listing every figure and theorem of the collection
with its claim, figure, check lines (and whether they held), effective parameters and
provenance, linked to the executed notebook rendered as HTML and to the notebook sources.

``build_report`` reads what a build left (``<figures>/<id>.{png,pdf,json}`` and the executed
notebook each record vouches for) and writes ``build/report/``::

    index.html                  the page
    figures/<id>.png, .pdf      the figures
    notebooks/<id>.html         the executed notebooks (nbconvert, no CDN scripts)
    source/<id>.ipynb, .py      the notebook and its jupytext twin
    provenance/<id>.json        the provenance records

Everything is local: the directory opens with no network and can be moved or archived.
"""

from __future__ import annotations

import datetime
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import jinja2
import nbformat

from . import provenance
from ._atomic import _umask
from .parameters import PipelineError
from .pipeline import BUILD_DIR, FIGURES_DIR, Entry, intact_executed_notebook

__all__ = ["REPORT_DIR", "ReportError", "CheckLine", "check_lines", "twin_text", "render_notebook", "build_report"]

REPORT_DIR = BUILD_DIR / "report"
MARKER = ".dmf-report"
TEMPLATES = Path(__file__).resolve().parent / "templates"
TITLE = "Implicit Regularization in Perturbed Deep Matrix Factorization"
SUBTITLE = ("Chou and Wang, arXiv:2605.28613 — reproduction notebooks: every claim, its figure, "
            "the checks its notebook asserts, and where it came from.")
_CHECK = re.compile(r"^(?P<name>.+): checked (?P<checked>\d+) (?P<unit>.+), held in (?P<held>\d+)$")


class ReportError(PipelineError):
    """The report cannot be made from what the build left (the message says what to run)."""


@dataclass(frozen=True)
class CheckLine:
    """One line printed by :class:`dmf_utils.checks.CheckCount` (``name: checked N unit, held in M``)."""

    name: str
    checked: int
    unit: str
    held: int

    @property
    def ok(self) -> bool:
        """Held in every case, and at least one case was checked (as :class:`CheckCount`)."""
        return self.checked > 0 and self.held == self.checked


def check_lines(nb) -> list[CheckLine]:
    """The check lines a notebook printed on stdout, in order."""
    found = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stdout":
                for line in output.get("text", "").splitlines():
                    match = _CHECK.match(line.strip())
                    if match:
                        found.append(CheckLine(match["name"], int(match["checked"]), match["unit"],
                                               int(match["held"])))
    return found


def twin_text(notebook: Path) -> str:
    """The jupytext ``py:percent`` twin of ``notebook`` under the pairing of its directory
    (``notebooks/jupytext.toml``): what ``make twins`` writes next to it."""
    import jupytext
    from jupytext.config import find_jupytext_configuration_file, load_jupytext_configuration_file

    found = find_jupytext_configuration_file(str(Path(notebook).parent))
    config = load_jupytext_configuration_file(found) if found else None
    return jupytext.writes(jupytext.read(notebook), fmt="py:percent", config=config)


def render_notebook(nb) -> str:
    """An executed notebook as one self-contained HTML page (images inline, no CDN)."""
    from nbconvert import HTMLExporter  # heavy import, only needed here

    exporter = HTMLExporter(template_name="lab", template_file="offline_notebook.html.j2",
                            extra_template_paths=[str(TEMPLATES)])
    body, _ = exporter.from_notebook_node(nb)
    return body


def _rebuild_hint(entry: Entry, figures_dir: Path, record: dict | None = None) -> str:
    """``run `<the command that rebuilds entry into figures_dir>```, with a caveat if unsure."""
    smoke = record is not None and record.get("smoke")
    default = (BUILD_DIR / "smoke") if smoke else FIGURES_DIR
    words = ["dmf-repro build"] + (["--smoke"] if smoke else [])
    if figures_dir.resolve() != default.resolve():
        words.append(f"--out {figures_dir}")
    hint = "run `" + " ".join(words + ["--force", entry.id]) + "`"
    if record is None and figures_dir.resolve() == FIGURES_DIR.resolve():
        return hint + " (or `make figures`)"
    if record is None:
        return hint + " (with --smoke if that directory holds a smoke build)"
    return hint


def _record(entry: Entry, figures_dir: Path) -> tuple[dict, Path]:
    """``entry``'s provenance record and the executed notebook it vouches for, both checked."""
    path = figures_dir / f"{entry.id}.json"
    try:
        record = provenance.read_record(path)
    except (OSError, ValueError):
        raise ReportError(f"{entry.id}: no provenance record at {path}; {_rebuild_hint(entry, figures_dir)}") from None
    hint = _rebuild_hint(entry, figures_dir, record)
    for name in entry.outputs:
        if not (figures_dir / name).is_file() or provenance.sha256_file(figures_dir / name) != record["outputs"].get(name):
            raise ReportError(f"{entry.id}: {figures_dir / name} is missing or is not the file its record "
                              f"describes; {hint}")
    executed = intact_executed_notebook(record)
    if executed is None:
        raise ReportError(f"{entry.id}: the executed notebook its record vouches for "
                          f"({record.get('executed_notebook', {}).get('path', 'none recorded')}) "
                          f"is missing or has changed; {hint}")
    if provenance.notebook_source_hash(entry.notebook) != record["notebook"]["sha256"]:
        raise ReportError(f"{entry.id}: {entry.notebook.name} has changed since its figure was built, so the "
                          f"report would link a source that did not produce it; {hint}")
    return record, executed


def _view(entry: Entry, record: dict, checks: list[CheckLine]) -> dict:
    """What the template shows of one entry (strings only, escaped by jinja)."""
    env = record["environment"]
    held = sum(c.ok for c in checks)
    return {
        "id": entry.id,
        "claim": entry.claim,
        "checks": checks,
        "all_held": bool(checks) and held == len(checks),
        "held_summary": f"{held}/{len(checks)} checks held" if checks else "no check lines found",
        "settings": "smoke" if record.get("smoke") else ("override" if record["overrides"] else "default"),
        "smoke": record.get("smoke", False),
        "overrides": record["overrides"],
        "parameters": [(name, repr(value), name in record["overrides"]) for name, value in record["parameters"].items()],
        "commit": record["git"]["commit"] or "unknown",
        "dirty": bool(record["git"]["dirty"]),
        "built_at": record["built_at"],
        "wall_time": f"{record['wall_time_s']:.1f} s",
        "versions": ", ".join(f"{k} {v}" for k, v in env["versions"].items()),
        "blas": "; ".join(f"{b['internal_api']} {b['version']} ({b['threading_layer']})" for b in env["blas"]) or "none found",
        "notebook_path": record["notebook"]["path"],
        "notebook_hash": record["notebook"]["sha256"][:16],
        "png": f"figures/{entry.id}.png",
        "pdf": f"figures/{entry.id}.pdf",
        "html": f"notebooks/{entry.id}.html",
        "ipynb": f"source/{entry.id}.ipynb",
        "twin": f"source/{entry.id}.py",
        "json": f"provenance/{entry.id}.json",
    }


def _page(views: list[dict]) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    commits = {v["commit"] for v in views}
    return env.get_template("report.html.j2").render(
        title=TITLE, subtitle=SUBTITLE, entries=views,
        all_held=all(v["all_held"] for v in views),
        total_checks=sum(len(v["checks"]) for v in views),
        smoke=sum(v["smoke"] for v in views),
        overridden=sum(v["settings"] == "override" for v in views),
        commit=", ".join(sorted(commits)), dirty=any(v["dirty"] for v in views),
        generated=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    )


def build_report(
    entries: Sequence[Entry],
    *,
    figures_dir: Path = FIGURES_DIR,
    out_dir: Path = REPORT_DIR,
    log: Callable[[str], None] = lambda message: None,
) -> Path:
    """Write the report of ``entries`` into ``out_dir`` and return its ``index.html``.

    Reads ``<figures_dir>/<id>.{png,pdf,json}`` and the executed notebooks the records name.
    Nothing is written unless every entry has them intact and its notebook is the one that
    made them (:class:`ReportError` says which one is not and what to run). ``out_dir`` is
    replaced as a whole, in one step: it must be absent, empty or an earlier report.
    """
    figures_dir, out_dir = Path(figures_dir), Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ReportError(f"{out_dir} is a file; the report needs a directory (--out)")
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / MARKER).is_file():
        raise ReportError(f"{out_dir} exists and is not a report written by `dmf-repro report` (it replaces "
                          "the whole directory): choose another --out, or empty it")
    collected = []
    for entry in entries:
        record, executed = _record(entry, figures_dir)
        collected.append((entry, record, nbformat.read(executed, as_version=4)))

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    for leftover in out_dir.parent.glob(f".{out_dir.name}-*-*"):  # from an interrupted earlier run
        if leftover.is_dir() and (leftover.name.startswith(f".{out_dir.name}-staging-")
                                  or leftover.name.startswith(f".{out_dir.name}-old-")):
            shutil.rmtree(leftover, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}-staging-"))
    staging.chmod(0o777 & ~_umask())
    try:
        (staging / MARKER).write_text("written by `dmf-repro report`; the next report replaces this directory\n")
        views = []
        for entry, record, executed in collected:
            for sub in ("figures", "notebooks", "source", "provenance"):
                (staging / sub).mkdir(exist_ok=True)
            for name in entry.outputs:
                shutil.copyfile(figures_dir / name, staging / "figures" / name)
            shutil.copyfile(figures_dir / f"{entry.id}.json", staging / "provenance" / f"{entry.id}.json")
            shutil.copyfile(entry.notebook, staging / "source" / f"{entry.id}.ipynb")
            (staging / "source" / f"{entry.id}.py").write_text(twin_text(entry.notebook), encoding="utf-8")
            (staging / "notebooks" / f"{entry.id}.html").write_text(render_notebook(executed), encoding="utf-8")
            views.append(_view(entry, record, check_lines(executed)))
            log(f"{entry.id}: {views[-1]['held_summary']}")
        (staging / "index.html").write_text(_page(views), encoding="utf-8")
        old = None
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}-old-"))
            out_dir.rename(old / "report")
        staging.rename(out_dir)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir / "index.html"
