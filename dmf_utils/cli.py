"""``dmf-repro`` (also ``python -m dmf_utils``): list, inspect, run and build the notebooks.

Exit status: 0 on success; 1 when a notebook fails (one of its checks, or an error: the
message names the cell and the executed notebook in ``build/``); 2 for bad usage (unknown
notebook or parameter, wrong type, malformed ``parameters`` cell), before anything is
written; 130 when interrupted (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from . import pipeline


def _log(message: str) -> None:
    print(message, flush=True)


def _entry(entries, notebook_id):
    if notebook_id not in entries:
        raise pipeline.ParameterError(
            f"unknown notebook {notebook_id!r}; known: {', '.join(entries)}"
        )
    return entries[notebook_id]


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
    entry = _entry(entries, args.id)
    params = pipeline.notebook_parameters(entry.notebook)
    width = max(map(len, params), default=0)
    for name, value in params.items():
        smoke = f"   smoke: {entry.smoke[name]!r}" if name in entry.smoke else ""
        print(f"{name:<{width}}  {type(value).__name__:<5}  default {value!r}{smoke}")


def _cmd_run(args, entries):
    entry = _entry(entries, args.id)
    pipeline.run_entry(
        entry, _overrides(args.param), smoke=args.smoke, out_dir=args.out, build_dir=args.build,
        store=args.store, log=_log,
    )


def _cmd_build(args, entries):
    for entry in entries.values():  # validate all before running any
        pipeline.resolve_parameters(entry, {}, smoke=args.smoke)
    for entry in entries.values():
        pipeline.run_entry(entry, smoke=args.smoke, out_dir=args.out, build_dir=args.build,
                           store=args.store, log=_log)


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
    for name, helptext in (("run", "run one notebook"), ("build", "run every notebook")):
        p = sub.add_parser(name, help=helptext)
        if name == "run":
            p.add_argument("id")
            p.add_argument("-p", "--param", action="append", metavar="NAME=VALUE",
                           help="override a parameter (typed by its default); repeatable")
        p.add_argument("--smoke", action="store_true", help="use the manifest's quick parameters")
        p.add_argument("--out", type=Path, default=None,
                       help="figure directory (default figures/, or build/smoke/ with --smoke)")
        p.add_argument("--build", type=Path, default=None,
                       help="directory of executed notebooks (default build/)")
        p.add_argument("--store", action="store_true",
                       help="write the executed notebook back to notebooks/ (default parameters)")
    return parser


def _terminate(signum, frame):
    raise KeyboardInterrupt  # SIGTERM cleans up like Ctrl-C: staging removed, kernel stopped


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    commands = {"list": _cmd_list, "params": _cmd_params, "run": _cmd_run, "build": _cmd_build}
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        commands[args.command](args, pipeline.load_manifest())
    except pipeline.PipelineError as err:
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
