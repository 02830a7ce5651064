"""Every ```python block of docs/**/*.md runs: a page's blocks in order, in one
fresh namespace, one test per page. A lesson page whose code rots fails the suite."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from torchclassics.lessons import LESSONS

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PACKAGE = ROOT / "src" / "torchclassics"
EXPERIMENT_PAGES = sorted((DOCS / "experiments").glob("*.md"))
# A fenced block opened by ```python (or ```py) alone on its line, closed by ``` alone on its line.
PYTHON_BLOCK = re.compile(r"^```(?:python|py)[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
PYTHON_FENCE = re.compile(r"^```(?:python|py)[ \t]*$", re.M)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(line number of the block's first code line, code) for each python block."""
    blocks = []
    for match in PYTHON_BLOCK.finditer(text):
        first_line = text.count("\n", 0, match.start(1)) + 1
        blocks.append((first_line, match.group(1)))
    return blocks


def run_page(path: Path) -> int:
    """Execute the page's python blocks in order in one namespace; the number run.
    Code is compiled under the page's name and padded to its line numbers, so a
    traceback points at the line of the page that failed."""
    text = path.read_text(encoding="utf-8")
    blocks = python_blocks(text)
    opened = len(PYTHON_FENCE.findall(text))
    assert opened == len(blocks), f"{path}: {opened} ```python fences but {len(blocks)} closed blocks"
    namespace = {"__name__": "__docs__"}
    for first_line, code in blocks:
        exec(compile("\n" * (first_line - 1) + code, str(path), "exec"), namespace)
    return len(blocks)


# Pages without python code have nothing to run (experiment pages hold bash commands only).
PAGES = sorted(p for p in DOCS.rglob("*.md") if PYTHON_FENCE.search(p.read_text(encoding="utf-8")))


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(DOCS)) for p in PAGES])
def test_page_code_runs(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # whatever a block writes lands in a throwaway folder
    run_page(page)


@pytest.mark.parametrize("lesson", LESSONS)
def test_each_lesson_has_english_and_chinese_pages_with_code(lesson):
    for name in (f"{lesson}.md", f"{lesson}.zh.md"):
        page = DOCS / "lessons" / name
        assert page.is_file(), f"missing {page}"
        assert len(python_blocks(page.read_text(encoding="utf-8"))) >= 2, f"{page}: no code to run"


def test_a_broken_block_fails_and_points_at_its_line(tmp_path):
    page = tmp_path / "broken.md"
    page.write_text("# page\n\n```python\nvalue = 41\n```\n\ntext\n\n```python\nvalue += 1\n"
                    "raise RuntimeError(f'broken at {value}')\n```\n", encoding="utf-8")
    with pytest.raises(RuntimeError, match="broken at 42") as failure:
        run_page(page)
    last = failure.traceback[-1]
    assert Path(str(last.path)) == page and last.lineno + 1 == 11  # pytest counts lines from 0


def test_an_unclosed_block_is_an_error_not_skipped(tmp_path):
    page = tmp_path / "unclosed.md"
    page.write_text("```python\nraise RuntimeError('never run')\n", encoding="utf-8")
    with pytest.raises(AssertionError, match="1 ```python fences but 0 closed blocks"):
        run_page(page)


def test_index_links_every_lesson_and_experiment_page():
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    linked = {(DOCS / target).resolve() for target in re.findall(r"\]\(([^)#]+\.md)\)", index)}
    assert all(path.is_file() for path in linked), sorted(str(p) for p in linked if not p.is_file())
    ours = set((DOCS / "lessons").glob("*.md")) | set(EXPERIMENT_PAGES)
    assert ours <= linked, sorted(str(p) for p in ours - linked)


@pytest.mark.parametrize("page", EXPERIMENT_PAGES, ids=[p.stem for p in EXPERIMENT_PAGES])
def test_experiment_page_names_its_command_and_real_figures(page):
    """The command is the experiment's, and every figure file the page names is
    one the package writes (its name appears as a string in the source)."""
    name, text = page.stem, page.read_text(encoding="utf-8")
    assert f"torchclassics run {name}" in text
    assert not python_blocks(text), "experiment pages show commands (```bash), not training code"
    if not (PACKAGE / "experiments" / f"{name}.py").is_file():
        pytest.skip(f"experiment {name} is not in the package yet")
    source = "\n".join(path.read_text(encoding="utf-8") for path in PACKAGE.rglob("*.py"))
    figures = re.findall(r"`([\w.-]+\.(?:png|gif))`", text)
    missing = [f for f in figures if f'"{f}"' not in source]
    assert not missing, f"{page.name} names figures the package never writes: {missing}"
