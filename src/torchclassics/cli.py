"""Command line: argument parsing only; every command calls the API.

Listing, parameters, project set-up and every parameter mistake answer without importing
torch (seconds); commands import what they need when they run.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import sys
import threading
from pathlib import Path

from . import __version__
from .core import interrupts, messages
from .core.errors import UserError
from .core.text import as_typed, printable
from .rundir import layout

# The Python API's argument names and this command line's spelling of them (errors name the flag).
FLAGS = {"out": "--out", "runs_dir": "--runs-dir", "device": "--device", "resume": "--resume",
         "params_file": "--params", "sets": "--set", "checkpoint": "--checkpoint", "checkpoint_name": "--checkpoint",
         "output": "-o",
         "fmt": "--format", "quantize": "--quantize", "force": "--force", "sort": "--sort",
         "experiment": "--experiment", "root": "ROOT", "link_figures": "--link-figures", "trials": "--trials",
         "workers": "--workers", "sampler": "--sampler", "metric": "--metric", "direction": "--direction",
         "study_name": "--study", "study": "--study", "storage": "--storage", "space": "--param",
         "grid_points": "--grid-points", "pruner": "--pruner", "modules": "--module", "texts": "--text",
         "top": "--top", "where": "--where", "figures": "--figures", "embed_all": "--embed-all"}
POSITIONAL = {"ROOT"}

EPILOG = """first steps:
  torchclassics list                     every experiment
  torchclassics params regression        its parameters (defaults, --set applied)
  torchclassics run regression           train, evaluate and draw (a run directory under ./runs)
  torchclassics report                   one HTML page of every run
"""


def _add_params_sources(p) -> None:
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a parameter, e.g. --set lr=0.01, --set optimizer_args.momentum=0.9 (repeatable)")
    p.add_argument("--params", dest="params_file", metavar="FILE",
                   help="a params file as the base (a run's params.json, your own, or search's best_params.json)")


def _add_module_option(p) -> None:
    p.add_argument("--module", dest="modules", action="append", default=[], metavar="FILE",
                   help="a .py file (or package.module) with an experiment of your own, registered with "
                        "@experiment(\"NAME\"); adds to $TORCHCLASSICS_PLUGINS (repeatable)")


def _add_run(sub) -> None:
    p = sub.add_parser("run", help="train, evaluate and draw one experiment",
                       description="Train, evaluate and draw one experiment. Parameters: the experiment's defaults "
                                   "(`torchclassics params NAME`), your ./experiments/NAME/params.json if there is "
                                   "one, then --params FILE, then --set.")
    p.add_argument("name", help="experiment name (see `torchclassics list`)")
    _add_params_sources(p)
    _add_module_option(p)
    p.add_argument("--out", help="the run directory itself (default: RUNS_DIR/NAME/<timestamp>)")
    p.add_argument("--runs-dir", help="root of run directories (default: $TORCHCLASSICS_RUNS or ./runs)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default auto)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from checkpoints/last.pt")
    p.add_argument("--no-figures", action="store_true", help="skip figures and GIFs")
    p.add_argument("--no-tensorboard", dest="tensorboard", action="store_false", default=None,
                   help="no TensorBoard curves (by default written to the run's tensorboard/ when TensorBoard is "
                        "installed)")
    p.add_argument("--offline", action="store_true",
                   help="never try a download (MNIST falls back to its offline subset at once); "
                        "the same as TORCHCLASSICS_OFFLINE=1")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="errors only on stderr: no progress lines, notes or warnings (train.log keeps them)")


def _add_search(sub) -> None:
    p = sub.add_parser("search", help="hyper-parameter search with Optuna",
                       description="Every trial trains with the experiment's seed, so trials differ only by "
                                   "their hyper-parameters.")
    p.add_argument("name")
    p.add_argument("--trials", type=int, help="trials to add to the study (default 10; a grid: its points not "
                                              "tried yet)")
    p.add_argument("--sampler", choices=["tpe", "gp", "botorch", "random", "grid"],
                   help="tpe (default), gp (Gaussian process), botorch (pip install \"torchclassics[botorch]\", "
                        "or in a clone pip install \".[botorch]\"), "
                        "random, or grid (every point, in turn); a continued study keeps its own")
    p.add_argument("--grid-points", type=int, default=3,
                   help="values per numeric range in a grid, ends included (default 3; choices are taken as listed)")
    p.add_argument("--param", dest="space", action="append", default=[], metavar="KEY=SPEC",
                   help="search space entry, e.g. lr=loguniform:1e-4:1e-1, batch_size=choice:32,64, "
                        "hidden=int:4:64 (default: the experiment's search.json; --param entries replace it)")
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
    p.add_argument("--no-baseline", action="store_true",
                   help="a new study's trial 0 is not the defaults (by default it is, to compare the best with)")
    p.add_argument("--json", action="store_true", help="the result as JSON on stdout (the summary goes to stderr)")
    _add_module_option(p)


class VersionAndExtras(argparse.Action):
    """``--version``: the version, then each optional extra, installed or not, and what it enables."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from .core.extras import report

        print(f"torchclassics {__version__}\nextras (optional features):")
        print("\n".join(report()))
        parser.exit()


class Parser(argparse.ArgumentParser):
    """argparse, adding the choice a mistyped one most likely meant (``rnu`` -> ``run``)."""

    def error(self, message: str):
        import difflib
        import re

        wrong = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if wrong:
            choices = re.findall(r"'([^']*)'", wrong.group(2))
            close = difflib.get_close_matches(wrong.group(1), choices, n=1, cutoff=0.5)
            if close:
                message = f"{message}; did you mean '{close[0]}'?"
        super().error(message)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="torchclassics", description="The classic PyTorch lessons as reproducible experiments.",
                    epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action=VersionAndExtras, help="the version, and which optional extras are "
                                                                   "installed and what each enables")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="every experiment, one line each (yours too)")
    _add_module_option(p)
    p = sub.add_parser("params", help="an experiment's parameters as JSON (defaults, your files, --set applied)")
    p.add_argument("name")
    p.add_argument("--describe", action="store_true",
                   help="each parameter with its value, default, type, bounds and description, instead of JSON")
    _add_params_sources(p)
    _add_module_option(p)
    p = sub.add_parser("init", help="copy an experiment's params.json (and search.json) into DIR/experiments/NAME/ "
                                    "to start a project of your own; with --module FILE, start an experiment "
                                    "of your own")
    p.add_argument("name")
    p.add_argument("dir", nargs="?", default=".", help="the project folder (default: here)")
    p.add_argument("--module", metavar="FILE", help="write FILE (relative to DIR): a new experiment NAME that trains "
                                                    "as it is (a small MLP on scikit-learn's digits), and its "
                                                    "experiments/NAME/params.json and search.json")
    _add_run(sub)
    p = sub.add_parser("evaluate", help="held-out metrics of a run's checkpoint")
    p.add_argument("run_dir")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"])
    p.add_argument("--device", default="cpu")
    _add_module_option(p)
    p = sub.add_parser("figures", help="draw a finished run's figures again, from its run directory alone")
    p.add_argument("run_dir")
    p.add_argument("--device", default="cpu")
    _add_module_option(p)
    p = sub.add_parser("predict", help="classify image files (or, --text, names) with a trained run")
    p.add_argument("run_dir")
    p.add_argument("files", nargs="*", help="image files (cnn_mnist, lstm_mnist, dogs_vs_cats)")
    p.add_argument("--text", dest="texts", action="append", default=[], metavar="TEXT",
                   help="a text to classify (char_rnn_names: a surname); repeatable")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"])
    p.add_argument("--device", default="cpu")
    _add_module_option(p)
    _add_search(sub)
    p = sub.add_parser("synthesize", help="one table per experiment of its runs' metrics")
    p.add_argument("root", nargs="?", default=None, help="folder of runs (default: the runs root)")
    p.add_argument("--format", dest="fmt", default="markdown", choices=["markdown", "csv", "json"])
    p.add_argument("--sort", help="order rows by this metric")
    p.add_argument("--experiment", help="only this experiment's table")
    p.add_argument("--force", action="store_true", help="replace a ROOT/results.md that synthesize did not write")
    p.add_argument("--top", type=int, metavar="N", help="only the N best runs of each experiment (by --sort, else "
                                                        "by its objective)")
    p.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                   help="only runs with this parameter value, e.g. --where lr=0.01 --where optimizer=Adam "
                        "(repeatable: all must match)")
    p = sub.add_parser("report", help="one offline HTML page to compare runs and search studies")
    p.add_argument("root", nargs="?", default=None)
    p.add_argument("-o", "--output", default=None, help="HTML file to write (default ROOT/report.html)")
    p.add_argument("--figures", nargs="+", action="extend", default=[], metavar="RUN",
                   help="also embed these runs' figures (by name as the tables show it, or folder); by default the "
                        "page embeds those of each experiment's and each study's best run and links the others")
    figures = p.add_mutually_exclusive_group()
    figures.add_argument("--embed-all", action="store_true",
                         help="embed every run's figures: a page that travels alone (large for hundreds of runs)")
    figures.add_argument("--link-figures", action="store_true",
                         help="link every figure next to the page instead of embedding any (the smallest page)")
    p.add_argument("--force", action="store_true",
                   help="replace an -o file (or ROOT/report.html) that is not an earlier report")
    p = sub.add_parser("export", help="save a trained model for deployment (no pickle; phones: executorch)")
    p.add_argument("run_dir")
    p.add_argument("--format", dest="fmt", default="onnx", choices=["onnx", "torchscript", "exported", "executorch"],
                   help="executorch: a .pte program for Android and iOS apps "
                        "(pip install \"torchclassics[executorch]\", or in a clone pip install \".[executorch]\")")
    p.add_argument("--quantize", choices=["int8"],
                   help="with --format executorch: int8 weights and activations (XNNPACK's quantizer), calibrated "
                        "on the run's training data; size and held-out metrics before and after")
    p.add_argument("-o", "--output")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"])
    p.add_argument("--force", action="store_true",
                   help="replace an -o file (or its .json) that is not an export of this run")
    _add_module_option(p)
    p = sub.add_parser("lesson", help="run a concept demonstration (tensors, losses, ...)")
    p.add_argument("name", nargs="?")
    p.add_argument("--list", action="store_true", help="list the lessons")
    p.add_argument("--out", help="folder for the lesson's figure")
    return parser


def _shown(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _print_metrics(metrics: dict) -> None:
    """Train and held-out metrics, named as such: ``mse`` -> "train mse", ``test_mse`` -> "test mse"."""
    from .rundir.metrics import label

    for key, value in metrics.items():
        print(f"  {label(key, metrics):<26} {_shown(value)}")


def _cmd_list(args) -> int:
    from .registry import listing

    for name, description in listing():
        print(f"{name:<16} {description}")
    return 0


def _cmd_params(args) -> int:
    from .api import params
    from .params.sources import rules_note

    values = params(args.name, sets=args.sets, params_file=args.params_file)
    if args.describe:
        from .params.describe import describe

        print("\n".join(describe(args.name, values)))
    else:
        print(json.dumps(values, indent=2))
    note = rules_note(args.name)
    if note:
        messages.note(note)
    return 0


def _cmd_init(args) -> int:
    from .plugins.scaffold import init_project

    written = init_project(args.name, args.dir, module=args.module)
    for path in written:
        print(f"wrote {path}")
    if args.module:
        print(f"edit them, then: torchclassics run {args.name} --module {args.module}   (from "
              f"{Path(args.dir).resolve()}; or set $TORCHCLASSICS_PLUGINS to the file for every command)")
    else:
        print(f"edit them, then: torchclassics run {args.name}   (from {Path(args.dir).resolve()}; "
              f"your params.json replaces the package's defaults there)")
    return 0


def _written(run_dir: Path) -> list[str]:
    """The run's files, folder by folder, for the closing lines."""
    lines = []
    for folder in ("figures", "checkpoints"):
        names = sorted(p.relative_to(run_dir / folder).as_posix() for p in (run_dir / folder).rglob("*")
                       if p.is_file() and not p.name.startswith("."))
        if names:
            lines.append(f"  {folder}/: {', '.join(names)}")
    if (run_dir / layout.TENSORBOARD).is_dir():
        lines.append(f"  {layout.TENSORBOARD}/: TensorBoard curves (tensorboard --logdir {_shown_path(run_dir)})")
    top = [name for name in (layout.PARAMS, layout.METRICS, layout.SUMMARY, layout.LOG) if (run_dir / name).is_file()]
    lines.append(f"  {', '.join(top)}")
    return lines


def _shown_path(path) -> str:
    """A path as a user types it here, quoted for a shell."""
    return shlex.quote(as_typed(path))


def _module_flags(args) -> str:
    """`` --module FILE`` for each --module of this command: a copied command finds the experiment too."""
    return "".join(f" --module {shlex.quote(module)}" for module in getattr(args, "modules", None) or ())


def _continue_command(args, run_dir, extra: str = "") -> str:
    """The command that continues the run in ``run_dir``, as it can be copied."""
    device = f" --device {shlex.quote(args.device)}" if getattr(args, "device", "auto") != "auto" else ""
    return (f"torchclassics run {shlex.quote(args.name)} --out {_shown_path(run_dir)} --resume"
            f"{_module_flags(args)}{device}{extra}")


def _cmd_run(args) -> int:
    from .api import run

    if args.offline:
        os.environ["TORCHCLASSICS_OFFLINE"] = "1"  # data code reads it; processes started from here inherit it
    result = run(args.name, out=args.out, runs_dir=args.runs_dir, device=args.device, resume=args.resume,
                 quiet=args.quiet, figures=not args.no_figures, sets=args.sets, params_file=args.params_file,
                 tensorboard=args.tensorboard)
    if os.environ.get("RANK", "0") != "0":
        return 0  # under torchrun, rank 0 speaks for all
    summary = result.summary
    if result.complete_already:
        epochs = summary.get("epochs")
        print(f"{args.name}: {result.run_dir} is complete ({epochs} epochs): nothing trained or drawn again")
        _print_metrics(result.metrics)
        print("to train longer:")
        print(f"  {_continue_command(args, result.run_dir, f' --set epochs={2 * int(epochs)}')}")
        return 0
    print(f"{args.name}: {result.run_dir}  (training {summary['train_s']:.2f} s, whole run {summary['wall_s']:.1f} s)")
    _print_metrics(result.metrics)
    best = summary.get("best") or {}
    if best.get("value") is not None:
        where = f", {best['optimizer']}" if best.get("optimizer") else ""
        print(f"  {'best ' + str(best['metric']):<26} {_shown(best['value'])} (epoch {best['epoch']}{where})")
    print("written:")
    print("\n".join(_written(result.run_dir)))
    from .rundir.layout import runs_root

    in_root = result.run_dir.resolve().parent.parent == runs_root(args.runs_dir).resolve()
    print("next:")
    print(f"  torchclassics evaluate {_shown_path(result.run_dir)}{_module_flags(args)}")
    print(f"  torchclassics report {_shown_path(runs_root(args.runs_dir) if in_root else result.run_dir)}")
    return 0


def _cmd_evaluate(args) -> int:
    from .api import evaluate

    metrics = evaluate(args.run_dir, args.checkpoint, args.device)
    print(f"{metrics.pop('run')} ({metrics.pop('checkpoint')}.pt)")
    _print_metrics(metrics)
    return 0


def _cmd_figures(args) -> int:
    from .api import figures

    drawn = figures(args.run_dir, device=args.device)
    print(f"{args.run_dir}: {', '.join(path.name for path in drawn) or 'no figures'}")
    return 0


def _cmd_predict(args) -> int:
    if not args.files and not args.texts:
        raise UserError("predict: give image files, or --text TEXT for a run that classifies text.")
    missing = [name for name in args.files if not Path(name).is_file()]
    if missing:  # said at once, before torch is imported
        raise UserError(f"predict: no such file: {', '.join(missing)}.")
    from .api import predict

    failed = 0
    for row in predict(args.run_dir, args.files, args.checkpoint, args.device, texts=args.texts):
        if "error" in row:
            failed += 1
            print(f"{row['file']}: error: {row['error']}", file=sys.stderr)
        else:
            print(f"{row['file']}: {row['label']} ({row['probability']:.3f})")
    return 1 if failed else 0


def _cmd_search(args) -> int:
    from .core.waiting import choose_before_torch

    choose_before_torch()  # its workers inherit the choice
    from .search import SearchInterrupted, search, summary_lines

    try:
        interrupts.honour()  # a Ctrl-C held while torch and Optuna were imported stops the search here
        result = search(args.name, trials=args.trials, space=args.space, sets=args.sets, study_name=args.study,
                        storage=args.storage, workers=args.workers, pruner=args.pruner, metric=args.metric,
                        direction=args.direction, runs_dir=args.runs_dir, device=args.device, sampler=args.sampler,
                        grid_points=args.grid_points, baseline=not args.no_baseline)
    except SearchInterrupted:  # its one line said how to continue; no single run's advice
        return 130
    except KeyboardInterrupt:
        messages.status(f"search {args.name}: interrupted before it started; nothing was written")
        return 130
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    print("\n".join(summary_lines(result)), file=sys.stderr if args.json else sys.stdout)
    return 0


def _cmd_synthesize(args) -> int:
    from .results.synthesize import synthesize

    print(synthesize(args.root, fmt=args.fmt, sort=args.sort, experiment=args.experiment, force=args.force,
                     top=args.top, where=args.where))
    return 0


def _cmd_report(args) -> int:
    from .results.report import write_report

    print(write_report(args.root, args.output, link_figures=args.link_figures, force=args.force,
                       embed_all=args.embed_all, figures=args.figures))
    return 0


def _cmd_export(args) -> int:
    from . import progress

    with progress.phase("loading torch"):
        from .deploy import describe, export
    with progress.phase(f"exporting to {args.fmt} and checking the file"):
        path = export(args.run_dir, fmt=args.fmt, output=args.output, checkpoint_name=args.checkpoint,
                      force=args.force, quantize=args.quantize)
    print(path)
    print("\n".join(describe(path)))
    return 0


def _cmd_lesson(args) -> int:
    from .lessons import list_lessons, run_lesson

    if args.list or not args.name:
        for name, description in list_lessons():
            print(f"{name:<14} {description}")
        return 0
    run_lesson(args.name, args.out)
    return 0


COMMANDS = {"list": _cmd_list, "params": _cmd_params, "init": _cmd_init, "run": _cmd_run,
            "evaluate": _cmd_evaluate, "figures": _cmd_figures, "predict": _cmd_predict, "search": _cmd_search,
            "synthesize": _cmd_synthesize, "report": _cmd_report, "export": _cmd_export, "lesson": _cmd_lesson}


def cli_words(option: str, value=None, prefix: bool = False) -> str:
    """How this command line names an API argument: ``out`` -> ``--out``; as the start of an error,
    ``--out runs/x`` (a flag without a value, ``--resume``, alone)."""
    flag = FLAGS.get(option)
    if flag is None:  # a parameter of an experiment (optimizer, precision): as params.json and --set name it
        return f"{option}={value}" if prefix else option
    if not prefix or value is None or isinstance(value, bool):
        return flag
    return str(value) if flag in POSITIONAL else f"{flag} {value}"


def error_line(err: BaseException) -> str | None:
    """One line for the errors a user can act on; None for a bug (its traceback is wanted)."""
    if isinstance(err, UserError):
        return f"torchclassics: error: {printable(err.render(cli_words))}"
    if isinstance(err, OSError):  # disk full, permission, read-only, symlink loops: the path and the cause
        where = f"{err.filename}: " if err.filename else ""
        return f"torchclassics: error: {printable(where)}{err.strerror or err}"
    return None


def _thread_errors(info) -> None:
    """Background threads (TensorBoard's writer, data loading) report in one line too, as a warning:
    the main thread's own error, if the problem stops the run, is the one error line."""
    line = error_line(info.exc_value) if info.exc_value is not None else None
    if line is None:
        threading.__excepthook__(info)
        return
    thread = info.thread.name if info.thread is not None else "a background thread"
    messages.warn(f"{thread}: {line.removeprefix('torchclassics: error: ')}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    threading.excepthook = _thread_errors
    # run and search hold Ctrl-C while they import and build, and honour it before they train
    holding = interrupts.held() if args.command in ("run", "search") else contextlib.nullcontext()
    with messages.shown(quiet=getattr(args, "quiet", False)), holding:
        return _command(args)


def console() -> int:
    """The ``torchclassics`` command: :func:`main`, then Ctrl-C ignored while the interpreter shuts down
    (the command's work is done; its exit status stands)."""
    code = main()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return code


def _command(args) -> int:
    """The command, with errors a user can act on as one line (exit status 2)."""
    try:
        if getattr(args, "modules", None):
            from .plugins.discovery import add_plugin_modules

            add_plugin_modules(args.modules, source="--module")
        return COMMANDS[args.command](args)
    except (UserError, OSError) as err:
        if getattr(err, "details", None):  # a plugin's own traceback, above the line naming its file
            print(err.details, end="", file=sys.stderr)
        print(error_line(err), file=sys.stderr)
        return 2
    except interrupts.Interrupted as stop:
        if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 speaks for all
            print(f"torchclassics: {printable(stop.what(_shown_path(stop.run_dir)))}; continue with: "
                  f"{printable(_continue_command(args, stop.run_dir))}", file=sys.stderr)
        return 143 if stop.terminated else 130
    except KeyboardInterrupt as stop:
        print("torchclassics: interrupted; checkpoints/last.pt holds the last saved epoch (--resume continues).",
              file=sys.stderr)
        return 143 if isinstance(stop, interrupts.Terminated) else 130


if __name__ == "__main__":
    raise SystemExit(console())
