"""Every ```python block of the English pages of docs/**/*.md runs: a page's blocks in order,
in one fresh namespace, one test per page. A lesson page whose code rots fails the suite.
A 中文 page holds the same code as its English twin (only its comments and translated strings
differ), so it is compared with it, not run a second time. The pages also stay whole: each
has its twin in the other language, is reachable from the index, links only inside the
repository, and each experiment page says how it differs from the course notes."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from torchclassics.lessons import LESSONS

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PACKAGE = ROOT / "src" / "torchclassics"
EXPERIMENT_PAGES = sorted((DOCS / "experiments").glob("*.md"))  # English and 中文
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


def is_chinese(page: Path) -> bool:
    return page.name.endswith(".zh.md")


def english_twin(page: Path) -> Path:
    return page.with_name(page.name.removesuffix(".zh.md") + ".md")


# Pages without python code have nothing to run (experiment pages hold bash commands only).
CODE_PAGES = sorted(p for p in DOCS.rglob("*.md") if PYTHON_FENCE.search(p.read_text(encoding="utf-8")))
ENGLISH_CODE_PAGES = [p for p in CODE_PAGES if not is_chinese(p)]
CHINESE_PAGES = sorted(DOCS.rglob("*.zh.md"))  # with or without code: a block lost in translation is caught
# Pages whose code needs more than the package (ExecuTorch's export and runtime), or trains for
# more than a second or two (a grid search of nets, an Optuna search): not in the developer's lane.
PAGE_MARKS = {"deploy_mobile.md": pytest.mark.external, "sklearn.md": pytest.mark.integration,
              "search.md": pytest.mark.integration, "reproducibility.md": pytest.mark.integration,
              "rnn.md": pytest.mark.integration}  # rnn.md trains lstm_mnist with three cells


@pytest.mark.parametrize("page", [pytest.param(p, marks=PAGE_MARKS.get(p.name, ()), id=str(p.relative_to(DOCS)))
                                  for p in ENGLISH_CODE_PAGES])
def test_page_code_runs(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # whatever a block writes lands in a throwaway folder
    run_page(page)


def code_and_texts(code: str) -> tuple[str, list[str]]:
    """A block's syntax tree with every string emptied (comments are not in it), and the source of
    each string or f-string, in order: what a translation may change is set apart from the code."""
    tree = ast.parse(code)
    texts = [ast.get_source_segment(code, node) for node in outermost_strings(tree)]
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            node.value = ""
    return ast.dump(tree), texts


def outermost_strings(tree: ast.AST) -> list[ast.AST]:
    """String constants and f-strings, not the parts of an f-string (a format spec is part of its text)."""
    found, todo = [], [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            found.append(node)
        else:
            todo.extend(reversed(list(ast.iter_child_nodes(node))))
    return found


def translated(text: str) -> bool:
    return any(ord(char) > 127 for char in text)


def assert_same_code(english: str, chinese: str, where: str) -> None:
    """The same statements, names and numbers; a string may differ only where the 中文 one is translated."""
    english_code, english_texts = code_and_texts(english)
    chinese_code, chinese_texts = code_and_texts(chinese)
    assert chinese_code == english_code, f"{where}: the code differs from the English page's, not just its words"
    for english_text, chinese_text in zip(english_texts, chinese_texts, strict=True):
        assert english_text == chinese_text or translated(chinese_text), \
            f"{where}: {chinese_text} differs from the English {english_text} without being a translation"


@pytest.mark.parametrize("page", CHINESE_PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_chinese_page_holds_the_code_of_its_english_twin(page):
    english = python_blocks(english_twin(page).read_text(encoding="utf-8"))
    chinese = python_blocks(page.read_text(encoding="utf-8"))
    assert len(chinese) == len(english), f"{page.name}: {len(chinese)} python blocks, the English page {len(english)}"
    for (line, chinese_code), (_, english_code) in zip(chinese, english, strict=True):
        assert_same_code(english_code, chinese_code, f"{page.name}, the block at line {line}")


def test_a_chinese_block_that_drifts_from_its_twin_is_caught():
    english = 'x = torch.ones(3)  # three ones\nprint(f"sum {x.sum():.1f}", "done")\n'
    assert_same_code(english, 'x = torch.ones(3)  # 三个一\nprint(f"总和 {x.sum():.2f}", "完成")\n', "translated")
    for drifted, says in [('x = torch.ones(4)\nprint(f"sum {x.sum():.1f}", "done")\n', "the code differs"),
                          ('x = torch.ones(3)\nprint(f"总和 {x.mean():.1f}", "done")\n', "the code differs"),
                          ('x = torch.ones(3)\nprint(f"sum {x.sum():.1f}", "Done")\n', "without being a translation")]:
        with pytest.raises(AssertionError, match=says):
            assert_same_code(english, drifted, "drifted")


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


ALL_PAGES = sorted(DOCS.rglob("*.md"))
# A markdown link or image: [text](target) / ![alt](target); the target up to a space, ')' or '#'.
LINK = re.compile(r"\]\(([^)\s#]*)(?:#[^)]*)?\)")


def local_links(page: Path) -> list[str]:
    """The link targets of a page that are files, not web addresses or anchors."""
    targets = LINK.findall(page.read_text(encoding="utf-8"))
    return [t for t in targets if t and not re.match(r"[a-z]+:", t)]


def linked_pages(page: Path) -> set[Path]:
    return {(page.parent / t).resolve() for t in local_links(page) if t.endswith(".md")}


def test_every_page_has_its_english_or_chinese_twin():
    chinese = {p for p in ALL_PAGES if p.name.endswith(".zh.md")}
    english = set(ALL_PAGES) - chinese
    assert english and chinese
    assert not [p for p in english if p.with_suffix(".zh.md") not in chinese], "English pages without 中文"
    assert not [p for p in chinese if english_twin(p) not in english], "中文 pages without English"


def test_every_page_is_reachable_from_the_index():
    """Following links from docs/index.md reaches every page of both languages."""
    seen, todo = set(), [(DOCS / "index.md").resolve()]
    while todo:
        page = todo.pop()
        if page in seen or not page.is_file():
            continue
        seen.add(page)
        todo.extend(linked_pages(page))
    unreachable = {p.resolve() for p in ALL_PAGES} - seen
    assert not unreachable, sorted(str(p.relative_to(DOCS)) for p in unreachable)


def test_each_index_lists_every_lesson_and_experiment_page_of_its_language():
    for index, chinese in (("index.md", False), ("index.zh.md", True)):
        linked = linked_pages(DOCS / index)
        ours = {p.resolve() for p in ALL_PAGES
                if p.parent.name in ("lessons", "experiments") and p.name.endswith(".zh.md") == chinese}
        assert ours <= linked, (index, sorted(str(p) for p in ours - linked))


READMES = [ROOT / "README.md", ROOT / "benchmarks" / "README.md"]


@pytest.mark.parametrize("page", ALL_PAGES + READMES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_stay_inside_the_repository_and_exist(page):
    for target in local_links(page):
        path = (page.parent / target).resolve()
        assert path.is_relative_to(ROOT), f"{target} leaves the repository"
        assert path.exists(), f"{target} does not exist"


def test_the_notes_are_never_called_a_seed():
    """"seed" / "种子" mean the random seed; the course notes are named by their source."""
    for page in ALL_PAGES + READMES:
        text = page.read_text(encoding="utf-8")
        assert not re.search(r"\bseeds? ?0\d\d|the seed's|种子 ?0\d\d", text), page
        assert not re.search(r"(?<!随机)种子", text), page


def test_readme_tables_every_experiment_with_its_page():
    from torchclassics.config import experiment_names

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in experiment_names():
        assert re.search(rf"^\| `{name}` \|.*\(docs/experiments/{name}\.md\)", readme, re.M), name


@pytest.mark.parametrize("page", EXPERIMENT_PAGES, ids=lambda p: p.name)
def test_experiment_page_says_how_it_differs_from_the_notes(page):
    text = page.read_text(encoding="utf-8")
    heading = "## 与原文的不同" if page.name.endswith(".zh.md") else "## Differences from the original"
    assert heading in text
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    assert re.search(r"\d\.\d{3}", section), "no measured number in the section"
    assert "torchclassics run" in section, "no command for the measured numbers"


@pytest.mark.parametrize("page", EXPERIMENT_PAGES, ids=lambda p: p.name)
def test_experiment_page_names_its_command_and_real_figures(page):
    """The command is the experiment's, and every figure file the page names is
    one the package writes (its name appears as a string in the source)."""
    name, text = page.name.split(".")[0], page.read_text(encoding="utf-8")
    assert f"torchclassics run {name}" in text
    if not (PACKAGE / "experiments" / f"{name}.py").is_file():
        pytest.skip(f"experiment {name} is not in the package yet")
    source = "\n".join(path.read_text(encoding="utf-8") for path in PACKAGE.rglob("*.py"))
    figures = re.findall(r"`([\w.-]+\.(?:png|gif))`", text)
    missing = [f for f in figures if f'"{f}"' not in source]
    assert not missing, f"{page.name} names figures the package never writes: {missing}"
