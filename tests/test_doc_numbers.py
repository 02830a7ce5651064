"""Every number a page states about this project is produced by a command and checked here.

The pages mark each measured number (``<!-- number: ID -->0.0494``) and each number quoted from the course notes
(``<!-- quote: ID -->0.95``); benchmarks/doc_numbers.py holds the registry (the command, seed and metric of each
id, and its lane) and the script that measures them again and rewrites the pages; benchmarks/doc_numbers.json holds
what it measured last. Here: every marked number is known and stated alike in both languages; the pages state the
recorded values; the numbers of a few seconds are measured again in the developer's lane, the longer ones in the
slow lane, and the longest are checked to be still measured with today's parameters; the quotes are the notes'
words; and the numbers that the measured columns of the pages state are all marked."""
from __future__ import annotations

import importlib.util
import re
import sys
from collections import Counter
from pathlib import Path

import pytest
from test_docs import ALL_PAGES, PYTHON_BLOCK, english_twin, is_chinese

ROOT = Path(__file__).resolve().parents[1]


def load_registry():
    """benchmarks/ is no package (CI installs the wheel): the file is loaded by its path."""
    spec = importlib.util.spec_from_file_location("doc_numbers", ROOT / "benchmarks" / "doc_numbers.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


numbers = load_registry()
MARKS = numbers.all_marked()
RECORDED = numbers.recorded()


def test_every_marked_number_names_a_measurement_or_a_quote():
    assert MARKS, "no page marks a number"
    unknown = [f"{m.where()}: {m.kind} {m.id}" for m in MARKS
               if m.id not in (numbers.MEASUREMENTS if m.kind == "number" else numbers.QUOTES)]
    assert not unknown, "marked numbers without an entry in benchmarks/doc_numbers.py:\n" + "\n".join(unknown)


def test_every_measurement_is_recorded_and_stated_on_a_page():
    stated = {m.id for m in MARKS if m.kind == "number"} | {i for ids in numbers.TRANSCRIBED.values() for i in ids}
    assert not set(numbers.MEASUREMENTS) - set(RECORDED), \
        f"never measured: run {numbers.REGENERATE} {' '.join(sorted(set(numbers.MEASUREMENTS) - set(RECORDED)))}"
    assert not set(numbers.MEASUREMENTS) - stated, f"measured but stated nowhere: {set(numbers.MEASUREMENTS) - stated}"


def test_the_pages_state_the_recorded_values():
    wrong = []
    for mark in (m for m in MARKS if m.kind == "number" and m.id in RECORDED):
        number = numbers.MEASUREMENTS[mark.id]
        wrong += numbers.mismatch(mark.id, number, RECORDED[mark.id]["value"], [mark])
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("page", sorted(numbers.TRANSCRIBED))
def test_the_transcripts_show_the_recorded_values(page):
    """The numbers of a command's output that a page copies into a fenced block, where no marker can go."""
    wrong = [line for id_ in numbers.TRANSCRIBED[page] if id_ in RECORDED
             for line in numbers.transcript_mismatch(id_, numbers.MEASUREMENTS[id_], RECORDED[id_]["value"])]
    assert not wrong, "\n".join(wrong)


def test_a_transcript_shows_a_number_whole_and_only_in_a_fenced_block(tmp_path):
    page = tmp_path / "x.md"
    page.write_text("test accuracy 0.9556 in words\n\n```\n  test accuracy    0.966667\n```\n", encoding="utf-8")
    assert numbers.in_a_transcript(page, "0.966667")
    assert not numbers.in_a_transcript(page, "0.96667") and not numbers.in_a_transcript(page, "0.9556")


@pytest.mark.parametrize("page", [p for p in ALL_PAGES if is_chinese(p)], ids=lambda p: p.name)
def test_both_languages_state_the_same_numbers(page):
    english = Counter((m.kind, m.id, m.text) for m in numbers.marked(english_twin(page)))
    chinese = Counter((m.kind, m.id, m.text) for m in numbers.marked(page))
    only_english, only_chinese = sorted((english - chinese).elements()), sorted((chinese - english).elements())
    assert chinese == english, (f"{page.name} and its English twin mark different numbers: only in English "
                                f"{only_english}, only in 中文 {only_chinese}")


def test_recorded_numbers_were_measured_with_todays_parameters():
    """A changed default moves the numbers measured with it: those too long to measure again here fail until
    measured again (the fast and slow lanes measure the others again)."""
    changed = []
    for id_, record in RECORDED.items():
        for command, then in record.get("params", {}).items():
            now = numbers.resolved_params(command)
            differ = {k: (then.get(k), now.get(k)) for k in set(then) | set(now) if then.get(k) != now.get(k)}
            if differ:
                where = ", ".join([m.where() for m in numbers.stated_where(id_)] + [
                    f"{page.relative_to(ROOT)}'s transcript" for page in numbers.transcribed_where(id_)]) or "no page"
                said = ", ".join(f"{k} {a!r} → {b!r}" for k, (a, b) in sorted(differ.items()))
                changed.append(f"{where} states {record['written']} for {id_}, measured by `{command}` when its "
                               f"parameters were others ({said}); regenerate: {numbers.REGENERATE} {id_}")
    assert not changed, "\n".join(changed)


def groups_of(lane: str) -> list[tuple[str, ...]]:
    """The lane's numbers grouped by the commands they need: one test per group, each command run once."""
    return list(dict.fromkeys(n.commands() for n in numbers.MEASUREMENTS.values() if n.lane == lane))


def group_name(commands: tuple[str, ...]) -> str:
    return commands[0] + (f" and {len(commands) - 1} more" if len(commands) > 1 else "")


def check_measured_again(commands: tuple[str, ...], runs) -> None:
    wrong = []
    for id_, number in numbers.MEASUREMENTS.items():
        if number.commands() == commands:
            value = runs.value(number)
            wrong += numbers.mismatch(id_, number, value, numbers.stated_where(id_))
            wrong += numbers.transcript_mismatch(id_, number, value)
    assert not wrong, "\n".join(wrong)


@pytest.fixture(scope="module")
def runs():
    return numbers.Runs()


@pytest.mark.parametrize("commands", groups_of(numbers.FAST), ids=group_name)
def test_fast_numbers_are_what_their_commands_give(commands, runs):
    check_measured_again(commands, runs)


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.parametrize("commands", groups_of(numbers.SLOW), ids=group_name)
def test_slow_numbers_are_what_their_commands_give(commands, runs):
    check_measured_again(commands, runs)


def test_a_moved_number_fails_naming_the_page_the_number_the_new_value_and_the_command(tmp_path):
    page = numbers.ROOT / "docs" / "x.md"
    mark = numbers.Marked(page, 7, "number", "autoencoder.test_mse", "0.0494")
    number = numbers.Number("torchclassics run autoencoder", "test_mse")
    assert numbers.mismatch("autoencoder.test_mse", number, 0.04941, [mark]) == []
    [message] = numbers.mismatch("autoencoder.test_mse", number, 0.0512, [mark])
    assert message == ("docs/x.md:7 states 0.0494 for autoencoder.test_mse, but `torchclassics run autoencoder` "
                       "(test_mse) now gives 0.0512; regenerate: python benchmarks/doc_numbers.py autoencoder.test_mse")
    within = numbers.Number("torchclassics run autoencoder", "test_mse", tolerance=0.002)
    assert numbers.mismatch("autoencoder.test_mse", within, 0.0512, [mark]) == []


def test_the_script_rewrites_marked_numbers_and_nothing_else():
    text = ("MSE <!-- number: a.b -->0.0523 and 0.0523, <!-- number: c -->1,000 digits, "
            "the notes' <!-- quote: a.b -->0.95")
    assert numbers.rewritten(text, {"a.b": "0.0494", "c": "1,200"}) == \
        "MSE <!-- number: a.b -->0.0494 and 0.0523, <!-- number: c -->1,200 digits, the notes' <!-- quote: a.b -->0.95"


def test_a_run_command_is_read_as_a_user_types_it():
    assert numbers.run_arguments("torchclassics run rnn_sincos --set scheduler=null --set seed=7") == \
        ("rnn_sincos", ["scheduler=null", "seed=7"])
    with pytest.raises(ValueError, match="only --set"):
        numbers.run_arguments("torchclassics run rnn_sincos --out x")


# -- the notes' numbers and words ----------------------------------------------------------------------------
def test_each_quoted_number_is_in_the_words_it_quotes():
    for mark in (m for m in MARKS if m.kind == "quote"):
        quote = numbers.QUOTES[mark.id]
        assert re.search(rf"(?<![\d.]){re.escape(mark.text)}(?![\d])", quote.text), \
            f"{mark.where()} quotes {mark.text} as the notes' ({mark.id}), but the notes' words are: {quote.text!r}"


@pytest.mark.parametrize("id_", sorted(numbers.QUOTES) + sorted(numbers.FLAGGED))
def test_words_said_to_be_the_notes_are_in_the_notes(id_):
    """A quoted number's words and a flagged mistake's words, each in the notes' file it names."""
    folder = numbers.notes_folder()
    if folder is None:
        pytest.skip("the course notes (shared/seeds) are not beside this checkout; set $TORCHCLASSICS_NOTES")
    said = numbers.QUOTES.get(id_) or numbers.FLAGGED[id_]
    assert said.text in (folder / said.source).read_text(encoding="utf-8"), \
        f"{id_}: {said.text!r} is not in the notes' {said.source}"


@pytest.mark.parametrize("id_", sorted(numbers.FLAGGED))
def test_each_flagged_mistake_of_the_notes_is_shown_on_its_page_in_both_languages(id_):
    flagged = numbers.FLAGGED[id_]
    english = ROOT / flagged.page
    for page in (english, english.with_name(english.name.removesuffix(".md") + ".zh.md")):
        text = " ".join(page.read_text(encoding="utf-8").split())
        assert flagged.shown in text, f"{page.relative_to(ROOT)} does not show the notes' {flagged.shown!r} ({id_})"


# -- unmarked numbers ---------------------------------------------------------------------------------------------
DECIMAL = re.compile(r"(?<![\w.])-?\d+\.\d+(?![\w.])")
CODE_SPAN = re.compile(r"`[^`\n]*`")
ANY_FENCE = re.compile(r"^```.*?^```[ \t]*$", re.S | re.M)


def unmarked_decimals(text: str) -> list[str]:
    """The decimal numbers of a piece of page that no marker names (code blocks and `code` spans are commands)."""
    text = numbers.MARKER.sub("", ANY_FENCE.sub("", PYTHON_BLOCK.sub("", text)))
    return DECIMAL.findall(CODE_SPAN.sub("", text))


def measured_cells(page: Path) -> list[str]:
    """The last cell of each row of the page's "differences from the original" table: what was measured."""
    text = page.read_text(encoding="utf-8")
    heading = "## 与原文的不同" if is_chinese(page) else "## Differences from the original"
    section = text.split(heading, 1)[-1].split("\n## ", 1)[0] if heading in text else ""
    rows = [line for line in section.splitlines() if line.startswith("|") and not re.match(r"\|[-| ]+\|$", line)]
    return [row.rstrip(" |").rsplit(" | ", 1)[-1] for row in rows[1:]]


# Decimal numbers of the pages that are no measurement of this project's commands: parameters, versions,
# arithmetic, or a measurement too long for benchmarks/doc_numbers.py (each with its reason). Both languages.
NOT_MEASURED = {
    "regression.md": {"0.01": "a learning rate", "0.0033": "the noise's variance, 0.2² / 12", "0.2": "a learning rate",
                      "2.38": "imageio's version"},
    "linear.md": {"0.001": "a learning rate", "0.005": "a learning rate", "2.42": "a data point",
                  "2.94": "a data point", "5.654": "a data point", "9.27": "a data point"},
    "classification.md": {"0.01": "a learning rate", "0.02": "a learning rate"},
    "char_rnn_names.md": {"0.15": "a learning rate", "0.005": "a learning rate"},
    "dqn_cartpole.md": {"19.6": "seconds of training (a timing)", "0.9": "γ, and the notes' EPSILON",
                        "0.1": "ε", "0.8": "gym's version"},
    "dropout.md": {"0.09": "the noise's variance, 0.3²", "0.01": "a learning rate", "0.003": "a learning rate",
                   "7.3": "seconds of training (a timing)"},
    "optimizers.md": {"0.01": "the learning rate, and the noise's variance 0.1²", "0.8": "Momentum's momentum",
                      "0.9": "RMSprop's alpha, Adam's beta", "0.99": "Adam's beta", "0.2": "the notes' plot limit",
                      "0.0025": "0.01 × √(2/32), arithmetic", "2.4": "seconds of training (a timing)",
                      "1.0": "Adadelta's own default lr"},
    "gan_curves.md": {"0.289": "1/√12, the spread of a uniform a", "1.386": "2 log ½", "1.39": "2 log ½ rounded",
                      "1.38": "the tutorial's words", "4.6": "a load average", "1.4": "PyTorch's version",
                      "1.5": "PyTorch's version"},
    "autoencoder.md": {"0.005": "the learning rate"},
    "rnn_sincos.md": {"0.02": "the learning rate", "1.0": "the clipping", "0.5": "cos's variance",
                      "0.2": "seconds of training (a timing)"},
    "lstm_mnist.md": {"0.01": "the learning rate"},
    "autograd.md": {"1.0": "the sigmoid of a large logit in float32, exactly"},
    "tensors.md": {"2.14": "torch's version"},
    "sklearn.md": {"0.02": "a learning rate", "0.1": "a learning rate", "0.10": "seconds of training (a timing)",
                   "0.46": "seconds of training (a timing)"},
    "batchnorm.md": {"0.03": "the learning rate", "0.1": "the weights' spread; PyTorch's default momentum",
                     "0.2": "the biases", "0.3": "0.1 · √10, arithmetic", "0.5": "the momentum",
                     "8.421": "seconds of training (a timing)"},
    "dcgan_mnist.md": {"0.02": "the weights' spread", "0.2": "LeakyReLU's slope", "0.5": "Adam's beta",
                       "0.999": "Adam's beta", "0.9": "the judge's confidence threshold",
                       "0.439": "measured by hand on a 12-epoch checkpoint, in eval and in train mode"},
    "dogs_vs_cats.md": {"0.8": "the learning rate's decay", "0.655": "ResNet-18 from random weights, two epochs: 523 s "
                                                                      "of training, measured once"},
    "activations.md": {"0.01": "LeakyReLU's slope", "0.25": "PReLU's starting slope"},
    "losses.md": {"0.1": "a probability in the example"},
    "rnn.md": {"0.5": "sigmoid(0)", "0.88": "sigmoid(2)"},
    "save_restore.md": {"2.6": "PyTorch's version"},
    "shapes.md": {"1.10": "PyTorch's version"},
    "search.md": {"0.001": "a learning rate", "0.01": "a learning rate", "0.1": "a learning rate"},
    "parallel.md": {"1.08": "asserted by the page's own code block", "0.01": "the learning rate"},
    "own_experiment.md": {"0.001": "a bound the page's code block asserts (sine_fit's test MSE)",
                          "0.1": "a bound the page's code block asserts (sine_fit's largest error)",
                          "0.01": "a learning rate", "0.25": "test_fraction, a parameter",
                          "0.28": "seconds of training (a timing)", "6.4": "seconds of a whole run (a timing)"},
    "deploy_mobile.md": {"3.11": "Python's version",
                         **{ms: "milliseconds per call (a timing)" for ms in (
                             "0.011", "0.016", "0.017", "0.032", "0.060", "0.071", "0.152", "0.196", "0.227", "0.321",
                             "0.465", "1.104")}},
    "cnn_mnist.md": {"0.29": "torchvision's version", "1.9": "scikit-learn's version", "2.6": "PyTorch's version",
                     "0.1307": "MNIST's mean", "0.3081": "MNIST's spread", "0.002": "a learning rate"},
}


def not_measured(page: Path) -> set[str]:
    return set(NOT_MEASURED.get(english_twin(page).name if is_chinese(page) else page.name, {}))


@pytest.mark.parametrize("page", sorted((ROOT / "docs" / "experiments").glob("*.md")), ids=lambda p: p.name)
def test_what_the_experiment_pages_measured_is_marked(page):
    unmarked = [(cell[:60], found) for cell in measured_cells(page)
                if (found := sorted(set(unmarked_decimals(cell)) - not_measured(page)))]
    assert not unmarked, f"{page.name}: numbers of the measured column without a marker: {unmarked}"


def readme_results() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return [line.rsplit(" | ", 1)[-1] for line in readme.splitlines() if re.match(r"\| `\w+` \|", line)]


def test_the_results_that_readme_tables_are_marked():
    unmarked = [(cell, unmarked_decimals(cell)) for cell in readme_results() if unmarked_decimals(cell)]
    assert not unmarked, f"README's table of experiments: numbers without a marker: {unmarked}"


# The pages whose every decimal number outside code is marked (but for those of NOT_MEASURED): every page of docs/.
NOT_YET: set[str] = set()
WHOLLY_MARKED = sorted(str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md")
                       if not is_chinese(p) and p.name not in NOT_YET)


@pytest.mark.parametrize("name", WHOLLY_MARKED)
def test_every_decimal_of_a_wholly_marked_page_is_marked(name):
    english = ROOT / "docs" / name
    for page in (english, english.with_name(english.name.removesuffix(".md") + ".zh.md")):
        text = re.sub(r"\d+(?:\.\d+)? ?(?:s|秒)\b", "", page.read_text(encoding="utf-8"))  # timings: benchmarks/
        unmarked = sorted(set(unmarked_decimals(text)) - not_measured(page))
        assert not unmarked, f"{page.relative_to(ROOT)}: decimal numbers without a marker: {unmarked}"


# The numbers issue 21 found drifted: each is marked where it is stated.
DRIFTED = {"README.md": ["autoencoder.test_mse", "lstm_mnist.test_accuracy", "lstm_mnist.epochs5.test_accuracy",
                         "cnn_mnist.epochs5.test_accuracy"],
           "docs/experiments/autoencoder.md": ["autoencoder.test_mse", "autoencoder.epochs60.test_mse", "pca.test_mse"],
           "docs/lessons/pca.md": ["autoencoder.test_mse", "autoencoder.epochs60.test_mse", "pca.test_mse"],
           "docs/experiments/lstm_mnist.md": ["lstm_mnist.test_accuracy", "lstm_mnist.epochs5.test_accuracy"],
           "docs/experiments/cnn_mnist.md": ["cnn_mnist.epochs5.test_accuracy"],
           "docs/experiments/gan_curves.md": ["gan_curves.test_distance", "gan_curves.best_distance",
                                              "gan_curves.best_epoch"],
           "docs/experiments/batchnorm.md": ["batchnorm.seed1.tanh_bn", "batchnorm.seed1.relu_bn"],
           "docs/experiments/rnn_sincos.md": ["rnn_sincos.constant.seed7", "rnn_sincos.default.seed9",
                                              "rnn_sincos.default.seed10"]}


@pytest.mark.parametrize("page", sorted(DRIFTED))
def test_the_numbers_found_drifted_are_marked(page):
    for path in [ROOT / page] + ([(ROOT / page).with_suffix(".zh.md")] if page != "README.md" else []):
        ids = {m.id for m in numbers.marked(path)}
        assert not set(DRIFTED[page]) - ids, f"{path.relative_to(ROOT)}: unmarked {set(DRIFTED[page]) - ids}"
