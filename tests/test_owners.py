"""Each job has one home (DESIGN.md, Owners): the run record's file names live in rundir/ only, the
held-out prefix and the bookkeeping keys in rundir/metrics.py only, and an experiment keeps nothing
per run on itself (its figures can then be drawn again from a run directory)."""
import ast
import re
from pathlib import Path

import torchclassics

PACKAGE = Path(torchclassics.__file__).parent
RUN_RECORD = re.compile(r"summary\.json|metrics\.jsonl|trial\.json")


def sources(folder: Path = PACKAGE) -> list[Path]:
    return sorted(folder.rglob("*.py"))


def test_the_run_records_file_names_appear_only_in_rundir():
    outside = [f"{path.relative_to(PACKAGE)}:{number}" for path in sources() if "rundir" not in path.parts
               for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
               if RUN_RECORD.search(line)]
    assert not outside, f"name the run record's files through rundir.layout: {outside}"


def test_the_held_out_prefix_and_the_bookkeeping_keys_live_in_rundir_metrics():
    parsing = re.compile(r"""startswith\(\(?["'](test|val)_|partition\(["']_["']\)|["']train_s["'],\s*["']tag["']""")
    outside = [f"{path.relative_to(PACKAGE)}:{number}" for path in sources() if path.name != "metrics.py"
               for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
               if parsing.search(line)]
    assert not outside, f"use rundir.metrics (split_of, is_held_out, BOOKKEEPING): {outside}"


def experiment_classes(tree: ast.Module) -> list[ast.ClassDef]:
    """The classes of an experiments module that are experiments (they subclass one)."""
    return [node for node in tree.body if isinstance(node, ast.ClassDef)
            and any(getattr(base, "id", getattr(base, "attr", "")) in ("Experiment", "MnistClassifier")
                    for base in node.bases)]


def test_no_experiment_keeps_per_run_state_on_itself():
    found = []
    for path in sources(PACKAGE / "experiments"):
        for cls in experiment_classes(ast.parse(path.read_text(encoding="utf-8"))):
            for method in (n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name != "__init__"):
                for node in ast.walk(method):
                    targets = node.targets if isinstance(node, ast.Assign) else \
                        [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else []
                    for target in targets:
                        for leaf in ast.walk(target):
                            if isinstance(leaf, ast.Attribute) and getattr(leaf.value, "id", None) == "self":
                                found.append(f"{path.name}: {cls.name}.{method.name} sets self.{leaf.attr}")
    assert not found, found
    assert len([c for p in sources(PACKAGE / "experiments")
                for c in experiment_classes(ast.parse(p.read_text(encoding="utf-8")))]) >= 15  # the walk sees them
