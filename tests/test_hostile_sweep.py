"""The hostile-input catalogue (benchmarks/hostile_inputs.py) tested: its quick cases (no training, about a
second each, in a fresh subprocess like every case of the sweep) must end as documented, through the same
classification the sweep uses; and the classification itself must call a traceback, a hang, a second
error line or a user's file changed what they are."""
import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"


def load_catalogue():
    """benchmarks/ is no package (CI installs the wheel): the file is loaded by its path."""
    spec = importlib.util.spec_from_file_location("hostile_inputs", BENCHMARKS / "hostile_inputs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


hostile = load_catalogue()
QUICK = [case for case in hostile.CATALOGUE if case.fast]


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    """The finished runs the quick reader cases copy (one regression run, built on first use)."""
    return hostile.Bases(tmp_path_factory.mktemp("hostile-bases"))


def test_the_catalogue_names_each_case_once_and_keeps_the_quick_subset_small():
    hostile.check_catalogue()
    assert len(hostile.CATALOGUE) >= 100
    assert 15 <= len(QUICK) <= 30, [case.id for case in QUICK]


@pytest.mark.integration
@pytest.mark.parametrize("case", QUICK, ids=lambda case: case.id)
def test_a_quick_hostile_case_is_handled(case, bases):
    verdict = hostile.run_case(case, bases)
    assert verdict.handled, f"{verdict.outcome}: {verdict.detail}"


# -- the classification, on commands that misbehave on purpose -------------------------------------------------
def verdict_of(body, expect="refused", bases=None):
    return hostile.run_case(hostile.Case("self-test", body.__name__, body, expect), bases)


REFUSE = "import sys; print('torchclassics: error: x=1: must be 2.', file=sys.stderr); sys.exit(2)"


@pytest.mark.integration
def test_the_classification_accepts_one_error_line_and_exit_2():
    def refused(sb):
        return sb.python(REFUSE)
    verdict = verdict_of(refused)
    assert verdict.handled and verdict.outcome == "exit 2, one line"


@pytest.mark.integration
@pytest.mark.parametrize("code, outcome", [
    ("raise ValueError('a bug')", "traceback"),
    ("pass", "exit 0 where an error was due"),
    ("import sys; sys.exit(1)", "exit 1"),
    (("import sys; print('torchclassics: error: a', file=sys.stderr); print('torchclassics: error: b', "
      "file=sys.stderr); sys.exit(2)"), "2 error lines"),
    ("import sys; print('UserWarning: x', file=sys.stderr); " + REFUSE.removeprefix("import sys; "),
     "more than the error line on stderr"),
    ("open('left.json', 'w').write('{}'); " + REFUSE, "refused, but wrote left.json"),
])
def test_the_classification_names_what_went_wrong(code, outcome):
    def misbehaving(sb):
        return sb.python(code)
    verdict = verdict_of(misbehaving)
    assert verdict.handled is False and verdict.outcome == outcome, verdict


@pytest.mark.integration
def test_a_users_file_changed_is_never_handled_whatever_the_exit_status():
    def overwrites(sb):
        sb.write("thesis.tex", "mine\n")
        return sb.python("open('thesis.tex', 'w').write('gone'); " + REFUSE)
    verdict = verdict_of(overwrites, expect="safe")
    assert verdict.handled is False and verdict.outcome == "changed thesis.tex"


@pytest.mark.integration
def test_a_hang_is_killed_and_named_with_where_it_waited():
    def hangs(sb):
        return sb.python("import time\ndef wait():\n    time.sleep(60)\nwait()", timeout=2)
    verdict = verdict_of(hangs)
    assert verdict.handled is False and verdict.outcome.startswith("hang (timeout after "), verdict
    assert "in wait" in verdict.detail and verdict.seconds < 30


def test_the_readme_states_the_catalogue_and_quick_subset_as_they_are():
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    assert f"tries {len(hostile.CATALOGUE)} bad inputs" in readme, "README.md: update the catalogue's size"
    assert f"runs its {len(QUICK)} quick cases" in readme, "README.md: update the quick subset's size"
