"""``dmf-repro`` (also ``python -m dmf_utils``): list, inspect, run and build the notebooks,
and write the reviewer's report.

Exit status: 0 on success; 1 when a notebook fails (one of its checks, or an error: the
message names the cell and the executed notebook in ``build/``) or its kernel cannot start;
2 for bad usage (unknown notebook or parameter, wrong type, malformed ``parameters`` cell),
before anything is written; 130 when interrupted (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import argparse
import functools
import signal
import sys
from pathlib import Path

from . import pipeline, provenance
from .parameters import PipelineError, load_parameter_file, notebook_parameters

_log = functools.partial(print, flush=True)


def _entries(entries, ids):
    unknown = [i for i in ids if i not in entries]
    if unknown:
        raise pipeline.ParameterError(f"unknown notebook {unknown[0]!r}; known: {', '.join(entries)}")
    return [entries[i] for i in ids] if ids else list(entries.values())


def _overrides(pairs) -> dict[str, str]:
    out = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise pipeline.ParameterError(f"-p expects name=value, got {pair!r}")
        out[name.strip()] = value
    return out


def _cmd_list(args, entries):
    width = max(map(len, entries))
    for entry in entries.values():
        print(f"{entry.id:<{width}}  {entry.claim}")


def _cmd_params(args, entries):
    (entry,) = _entries(entries, [args.id])
    params = notebook_parameters(entry.notebook)
    width = max(map(len, params), default=0)
    for name, value in params.items():
        smoke = f"   smoke: {entry.smoke[name]!r}" if name in entry.smoke else ""
        print(f"{name:<{width}}  {type(value).__name__:<5}  default {value!r}{smoke}")


def _cmd_run(args, entries):
    (entry,) = _entries(entries, [args.id])
    file_values = load_parameter_file(args.params) if args.params else None
    pipeline.resolve_parameters(entry, _overrides(args.param), smoke=args.smoke, file_values=file_values)
    pipeline.preflight_kernel()
    pipeline.run_entry(entry, _overrides(args.param), file_values=file_values, smoke=args.smoke,
                       out_dir=args.out, build_dir=args.build, store=args.store, log=_log)


def _cmd_build(args, entries):
    pipeline.build(_entries(entries, args.ids), smoke=args.smoke, out_dir=args.out, build_dir=args.build,
                   store=args.store, force=args.force, jobs=args.jobs, keep_going=args.keep_going, log=_log)


def _cmd_provenance(args, entries):
    (entry,) = _entries(entries, [args.id])
    path = Path(args.out or pipeline.FIGURES_DIR) / f"{entry.id}.json"
    if not path.is_file():
        raise PipelineError(f"no provenance record at {path}: run `dmf-repro run {entry.id}` first")
    print(provenance.format_record(provenance.read_record(path)))


def _cmd_baseline(args, entries):
    from . import baselines

    for entry in _entries(entries, args.ids):
        path = baselines.update_baseline(entry, log=_log)
        _log(f"{entry.id}: baseline written to {pipeline._relative(path)}")


def _cmd_report(args, entries):
    from . import report

    index = report.build_report(list(entries.values()), figures_dir=args.figures or pipeline.FIGURES_DIR,
                                out_dir=args.out or report.REPORT_DIR, log=_log)
    _log(f"report written to {pipeline._relative(index)}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dmf-repro",
        description="Reproduce the figures of 'Implicit Regularization in Perturbed Deep Matrix "
        "Factorization' (Chou and Wang, arXiv:2605.28613).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="notebook ids and the claims they support")
    p = sub.add_parser("params", help="a notebook's parameters: names, types, defaults")
    p.add_argument("id")
    p = sub.add_parser("provenance", help="where a figure came from (its <id>.json, readably)")
    p.add_argument("id")
    p.add_argument("--out", type=Path, default=None, help="figure directory (default figures/)")
    p = sub.add_parser("baseline", help="refresh the figure-regression baselines (smoke parameters)")
    p.add_argument("ids", nargs="*", metavar="ID", help="notebooks (default: all)")
    p = sub.add_parser("report", help="one HTML page with every claim, figure, check and its provenance")
    p.add_argument("--figures", type=Path, default=None,
                   help="figures and their records to report on (default figures/)")
    p.add_argument("--out", type=Path, default=None, help="report directory (default build/report/)")
    for name, helptext in (("run", "run one notebook"), ("build", "run every notebook (or the ones named)")):
        p = sub.add_parser(name, help=helptext)
        if name == "run":
            p.add_argument("id")
            p.add_argument("-p", "--param", action="append", metavar="NAME=VALUE",
                           help="override a parameter (typed by its default); repeatable")
            p.add_argument("--params", type=Path, metavar="FILE.yaml",
                           help="parameter values from a YAML mapping (-p wins over it)")
        else:
            p.add_argument("ids", nargs="*", metavar="ID", help="notebooks (default: all)")
            p.add_argument("--force", action="store_true", help="rebuild even if the inputs are unchanged")
            p.add_argument("--jobs", type=int, default=1, metavar="N", help="notebooks run in parallel")
            p.add_argument("--keep-going", action="store_true",
                           help="finish the other notebooks after a failure (still exit 1)")
        p.add_argument("--smoke", action="store_true", help="use the manifest's quick parameters")
        p.add_argument("--out", type=Path, default=None,
                       help="figure directory (default figures/, or build/smoke/ with --smoke)")
        p.add_argument("--build", type=Path, default=None,
                       help="directory of executed notebooks (default build/)")
        p.add_argument("--store", action="store_true",
                       help="write the executed notebook back to notebooks/ (default parameters)")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "jobs", 1) < 1:
        print("dmf-repro: error: --jobs must be >= 1", file=sys.stderr)
        return 2
    commands = {"list": _cmd_list, "params": _cmd_params, "run": _cmd_run, "build": _cmd_build,
                "provenance": _cmd_provenance, "baseline": _cmd_baseline, "report": _cmd_report}
    previous = signal.signal(signal.SIGTERM, pipeline.terminate_on_sigterm)
    try:
        commands[args.command](args, pipeline.load_manifest())
    except PipelineError as err:
        print(f"dmf-repro: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("dmf-repro: interrupted; figures from earlier runs are untouched", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
