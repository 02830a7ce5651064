"""Command line: argument parsing only; every command calls the API."""
from __future__ import annotations

import argparse
import json
import os
import sys

from .errors import UserError


def _add_run(sub) -> None:
    p = sub.add_parser("run", help="train, evaluate and draw one experiment")
    p.add_argument("name", help="experiment name (see `torchclassics list`)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a parameter of experiments/NAME/params.json (repeatable)")
    p.add_argument("--out", help="the run directory itself (default: RUNS_DIR/NAME/<timestamp>)")
    p.add_argument("--runs-dir", help="root of run directories (default: $TORCHCLASSICS_RUNS or ./runs)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default auto)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from checkpoints/last.pt")
    p.add_argument("--no-figures", action="store_true", help="skip figures and GIFs")
    p.add_argument("--progress", action="store_true", help="show a progress bar even when not on a terminal")


def _add_search(sub) -> None:
    p = sub.add_parser("search", help="hyper-parameter search with Optuna",
                       description="Every trial trains with the experiment's seed, so trials differ only by "
                                   "their hyper-parameters.")
    p.add_argument("name")
    p.add_argument("--trials", type=int, default=10, help="trials to add to the study (default 10)")
    p.add_argument("--param", dest="space", action="append", default=[], metavar="KEY=SPEC",
                   help="search space entry, e.g. lr=loguniform:1e-4:1e-1, batch_size=choice:32,64, "
                        "hidden=int:4:64 (default: experiments/NAME/search.json; --param entries replace it)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="fixed override for every trial")
    p.add_argument("--study", help="study name (default: NAME); the same name continues the study")
    p.add_argument("--storage", help="an RDB URL (postgresql://..., sqlite:///...) or a journal file path "
                                     "(default: RUNS_DIR/studies/STUDY/journal.log)")
    p.add_argument("--workers", type=int, default=1, help="trials run at a time, each in its own process")
    p.add_argument("--pruner", default="median", choices=["median", "none"])
    p.add_argument("--metric", help="objective metric (default: the experiment's)")
    p.add_argument("--direction", choices=["minimize", "maximize"])
    p.add_argument("--runs-dir")
    p.add_argument("--device", default="auto")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="torchclassics", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="every experiment, one line each")
    _add_run(sub)
    p = sub.add_parser("evaluate", help="held-out metrics of a run's checkpoint")
    p.add_argument("run_dir")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"])
    p.add_argument("--device", default="cpu")
    p = sub.add_parser("predict", help="classify image files with a trained run")
    p.add_argument("run_dir")
    p.add_argument("files", nargs="+")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"])
    p.add_argument("--device", default="cpu")
    _add_search(sub)
    p = sub.add_parser("synthesize", help="one table of every run's metrics")
    p.add_argument("root", nargs="?", default=None, help="folder of runs (default: the runs root)")
    p.add_argument("--format", dest="fmt", default="markdown", choices=["markdown", "csv", "json"])
    p.add_argument("--sort", help="order rows by this metric")
    p = sub.add_parser("report", help="static HTML page of every run")
    p.add_argument("root", nargs="?", default=None)
    p.add_argument("-o", "--output", default=None, help="HTML file to write (default ROOT/report.html)")
    p = sub.add_parser("export", help="save a trained model for deployment (no pickle)")
    p.add_argument("run_dir")
    p.add_argument("--format", dest="fmt", default="onnx", choices=["onnx", "torchscript", "exported"])
    p.add_argument("-o", "--output")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"])
    p = sub.add_parser("lesson", help="run a concept demonstration (tensors, losses, ...)")
    p.add_argument("name", nargs="?")
    p.add_argument("--list", action="store_true", help="list the lessons")
    p.add_argument("--out", help="folder for the lesson's figure")
    return parser


def _print_metrics(metrics: dict) -> None:
    for key, value in metrics.items():
        shown = f"{value:.6g}" if isinstance(value, float) else value
        print(f"  {key:<24} {shown}")


def _cmd_list(args) -> int:
    from .api import list_experiments

    for name, description in list_experiments():
        print(f"{name:<16} {description}")
    return 0


def _cmd_run(args) -> int:
    from .api import run

    result = run(args.name, out=args.out, runs_dir=args.runs_dir, device=args.device, resume=args.resume,
                 quiet=not (args.progress or sys.stderr.isatty()), figures=not args.no_figures, sets=args.sets)
    if os.environ.get("RANK", "0") != "0":
        return 0  # under torchrun, rank 0 speaks for all
    print(f"{args.name}: {result.run_dir}")
    _print_metrics(result.metrics)
    return 0


def _cmd_evaluate(args) -> int:
    from .api import evaluate

    metrics = evaluate(args.run_dir, args.checkpoint, args.device)
    print(f"{metrics.pop('run')} ({metrics.pop('checkpoint')}.pt)")
    _print_metrics(metrics)
    return 0


def _cmd_predict(args) -> int:
    from .api import predict

    failed = 0
    for row in predict(args.run_dir, args.files, args.checkpoint, args.device):
        if "error" in row:
            failed += 1
            print(f"{row['file']}: error: {row['error']}")
        else:
            print(f"{row['file']}: {row['label']} ({row['probability']:.3f})")
    return 1 if failed else 0


def _cmd_search(args) -> int:
    from .search import search

    result = search(args.name, trials=args.trials, space=args.space, sets=args.sets, study_name=args.study,
                    storage=args.storage, workers=args.workers, pruner=args.pruner, metric=args.metric,
                    direction=args.direction, runs_dir=args.runs_dir, device=args.device)
    print(json.dumps(result, indent=2, default=str))
    return 0


def _cmd_synthesize(args) -> int:
    from .synthesize import synthesize

    print(synthesize(args.root, fmt=args.fmt, sort=args.sort))
    return 0


def _cmd_report(args) -> int:
    from .viz.report import write_report

    print(write_report(args.root, args.output))
    return 0


def _cmd_export(args) -> int:
    from .export import export

    print(export(args.run_dir, fmt=args.fmt, output=args.output, checkpoint_name=args.checkpoint))
    return 0


def _cmd_lesson(args) -> int:
    from .lessons import list_lessons, run_lesson

    if args.list or not args.name:
        for name, description in list_lessons():
            print(f"{name:<14} {description}")
        return 0
    run_lesson(args.name, args.out)
    return 0


COMMANDS = {"list": _cmd_list, "run": _cmd_run, "evaluate": _cmd_evaluate, "predict": _cmd_predict,
            "search": _cmd_search, "synthesize": _cmd_synthesize, "report": _cmd_report,
            "export": _cmd_export, "lesson": _cmd_lesson}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except UserError as err:
        print(f"torchclassics: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a path that is a file, unwritable, missing: the user's to fix
        where = f"{err.filename}: " if err.filename else ""
        print(f"torchclassics: error: {where}{err.strerror or err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("torchclassics: interrupted; checkpoints/last.pt holds the last finished epoch (--resume).",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
