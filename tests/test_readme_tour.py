"""README's short tour shows what ``torchclassics run regression`` prints today: the command is run
as the README gives it, and its output, numbers and run ids aside, is the README's line for line.
Lines that depend on the machine's speed are left out of both: the phases ("loading torch ...", shown
only past a second) and the epoch lines between the first and the last (one every few seconds). The
README shows the base install's output; TensorBoard's line, there when it is installed, is left out."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
COMMAND = "$ torchclassics run regression"
NUMBER = re.compile(r"\d+(\.\d+)?(e[+-]?\d+)?")


def readme_output() -> list[str]:
    text = README.read_text(encoding="utf-8")
    block = text[text.index(f"```\n{COMMAND}\n") + len(f"```\n{COMMAND}\n"):]
    return block[:block.index("```")].splitlines()


def shape(lines: list[str]) -> list[str]:
    """The lines with every number as #, without phases, TensorBoard's line and the middle epoch lines."""
    kept = [line for line in lines if line.strip() and not line.startswith("torchclassics: ")
            and not line.startswith("  tensorboard/:")]
    epochs = [i for i, line in enumerate(kept) if line.startswith("epoch ")]
    middle = set(epochs[1:-1])
    return [NUMBER.sub("#", line) for i, line in enumerate(kept) if i not in middle]


def test_the_shape_rule_keeps_what_matters():
    got = shape(["torchclassics: loading torch ...", "epoch 1/200 | 0.1 s", "epoch 9/200 | 1 s",
                 "epoch 200/200 | 2.5e+03 steps/s", "  tensorboard/: x"])
    assert got == ["epoch #/# | # s", "epoch #/# | # steps/s"]


@pytest.mark.integration
def test_the_readme_tour_is_what_the_command_prints(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "TORCHCLASSICS_RUNS"}
    done = subprocess.run([sys.executable, "-m", "torchclassics", *COMMAND.split()[2:]], cwd=tmp_path, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    assert done.returncode == 0, done.stdout
    assert shape(done.stdout.splitlines()) == shape(readme_output())
