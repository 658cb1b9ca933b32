"""The documentation stays true to the code: links, line ranges, commands, both languages.

Checked for README.md, README.zh-CN.md and docs/*.md:
- every relative link resolves to a file; a `#Lx-Ly` anchor into a `.py` file names the
  exact lines of the function or class in its link text; a `#heading` anchor into a
  Markdown file names a heading there;
- every `src/planet_torch/...` path and every `planet_torch.module.name` exists;
- every `planet ...` line in a README code block parses with the real `planet` parser;
- `make test` is what CI runs, and it runs ruff and pytest;
- the English and Chinese texts have the same sections, commands, links and formulas;
- no inline `$...$` opens directly after punctuation (`($x$`, `，$x$`), which GitHub leaves
  unrendered.
"""

from __future__ import annotations

import ast
import importlib
import re
import shlex
import unicodedata
from pathlib import Path

import pytest

from planet_torch import cli

ROOT = Path(__file__).resolve().parents[1]
READMES = [ROOT / "README.md", ROOT / "README.zh-CN.md"]
DOCS = [*READMES, *sorted((ROOT / "docs").glob("*.md"))]
PAIRS = [(ROOT / "README.md", ROOT / "README.zh-CN.md"),
         (ROOT / "docs" / "elbo.md", ROOT / "docs" / "elbo.zh-CN.md")]

FENCE = re.compile(r"^[ \t]*(```+|~~~+)[ \t]*([\w+-]*)[^\n]*\n(.*?)^[ \t]*\1[ \t]*$",
                   re.MULTILINE | re.DOTALL)
LINK = re.compile(r"!?\[((?:[^\[\]]|\[[^\]]*\])*)\]\(([^)\s]+)\)")
LINE_ANCHOR = re.compile(r"^L(\d+)(?:-L(\d+))?$")
CODE_NAME = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*$")
SRC_PATH = re.compile(r"src/planet_torch/[\w/]*\.py")
MODULE_PATH = re.compile(r"\bplanet_torch(?:\.[A-Za-z_]\w*)+")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$", re.MULTILINE)
SHELL_BLOCKS = {"bash", "sh", "shell", "console", ""}
CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(?:(?!\n[ \t]*\n).)+?(?<!`)\1(?!`)", re.DOTALL)
DISPLAY_MATH = re.compile(r"\$\$.*?\$\$", re.DOTALL)
# $...$ within a paragraph: no space just inside either `$`, escaped `\$` skipped
INLINE_MATH = re.compile(r"(?<![\\$])\$(?![\s$])(?:\\.|[^\\$\n]|\n(?![ \t]*\n))+?"
                         r"(?<![\s\\])\$(?!\$)")


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(ROOT)) for p in paths]


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced code block."""
    return [(m.group(2).lower(), m.group(3)) for m in FENCE.finditer(text)]


def _prose(text: str) -> str:
    """The text outside fenced code blocks."""
    return FENCE.sub("", text)


def _blank(match: re.Match[str]) -> str:
    """The match with every character but newlines replaced by a space (offsets kept)."""
    return re.sub(r"[^\n]", " ", match.group(0))


def _math_after_punctuation(text: str) -> list[tuple[int, str]]:
    """(line, excerpt) of every inline `$...$` whose opening `$` directly follows
    punctuation: an ASCII bracket or mark such as `(`, `[`, `"`, `*`, or a full-width one
    such as `，`, `、`, `（`, `：`, `；`, `。` (any Unicode category P*).

    Fenced code blocks (```math ones included), code spans and `$$` display math are skipped.
    """
    source = text
    for pattern in (FENCE, CODE_SPAN, DISPLAY_MATH):
        text = pattern.sub(_blank, text)
    found = []
    for match in INLINE_MATH.finditer(text):
        start = match.start()
        if start and unicodedata.category(text[start - 1]).startswith("P"):
            excerpt = source[start - 1:match.end()].replace("\n", " ")
            found.append((text.count("\n", 0, start) + 1, excerpt[:60]))
    return found


def _links(path: Path) -> list[tuple[str, str]]:
    """(link text, target) of every Markdown link and image outside code blocks."""
    return LINK.findall(_prose(_text(path)))


def _relative_links(path: Path) -> list[tuple[str, str]]:
    return [(label, target) for label, target in _links(path)
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target) and not target.startswith("#")]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def _headings(path: Path) -> list[tuple[int, str]]:
    return [(len(m.group(1)), m.group(2)) for m in HEADING.finditer(_prose(_text(path)))]


def _definition(tree: ast.Module, dotted: str) -> ast.AST | None:
    """The class, function or assignment named `A.b` in a module, or None."""
    body: list[ast.stmt] = tree.body
    node: ast.AST | None = None
    for part in dotted.split("."):
        node = None
        for candidate in body:
            names: list[str] = []
            if isinstance(candidate, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names = [candidate.name]
            elif isinstance(candidate, ast.Assign):
                names = [t.id for t in candidate.targets if isinstance(t, ast.Name)]
            elif isinstance(candidate, ast.AnnAssign) and isinstance(candidate.target, ast.Name):
                names = [candidate.target.id]
            if part in names:
                node = candidate
        if node is None:
            return None
        body = getattr(node, "body", [])
    return node


def _check_line_anchor(doc: Path, label: str, file: Path, anchor: str) -> None:
    match = LINE_ANCHOR.match(anchor)
    assert match, f"{doc.name}: anchor #{anchor} into {file.name} is not of the form #Lx-Ly"
    first = int(match.group(1))
    last = int(match.group(2) or first)
    source = _text(file)
    length = len(source.splitlines())
    assert 1 <= first <= last <= length, (
        f"{doc.name}: {file.name}#{anchor} is outside the file's {length} lines")
    name = label.strip().strip("`").strip()
    if not CODE_NAME.match(name):
        return
    node = _definition(ast.parse(source), name)
    assert node is not None, (
        f"{doc.name}: link text `{name}` names nothing defined in {file.name}")
    start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    end = node.end_lineno
    assert first in (start, node.lineno) and last == end, (
        f"{doc.name}: `{name}` is at {file.name}#L{start}-L{end} now, but the link says "
        f"#{anchor}; update the link")


@pytest.mark.parametrize("doc", DOCS, ids=_ids(DOCS))
def test_relative_links_resolve(doc: Path) -> None:
    links = _relative_links(doc)
    for label, target in links:
        path_part, _, anchor = target.partition("#")
        file = (doc.parent / path_part).resolve()
        assert file.exists(), f"{doc.name}: link to {target} points to no file"
        assert file.is_relative_to(ROOT), f"{doc.name}: link to {target} leaves the repository"
        if not anchor:
            continue
        if file.suffix == ".py":
            _check_line_anchor(doc, label, file, anchor)
        elif file.suffix == ".md":
            slugs = {_slug(h) for _, h in _headings(file)}
            assert anchor in slugs, f"{doc.name}: {target}: no heading #{anchor} in {file.name}"


@pytest.mark.parametrize("doc", DOCS, ids=_ids(DOCS))
def test_in_page_anchors_resolve(doc: Path) -> None:
    slugs = {_slug(h) for _, h in _headings(doc)}
    for _, target in _links(doc):
        if target.startswith("#"):
            assert target[1:] in slugs, f"{doc.name}: no heading for {target}"


def test_math_after_punctuation_check_skips_code_and_display_math() -> None:
    sample = ("a ($x$) b and [$y$] c\n"
              "`($y$` and ``($z$`` \\$5 (\\$6)\n"
              "\n$$\n($w$\n$$\n\n"
              "```math\n($v$\n```\n"
              "式为 $u$，$t$ 与（$s$）\n")
    assert [line for line, _ in _math_after_punctuation(sample)] == [1, 1, 11, 11]


@pytest.mark.parametrize("doc", DOCS, ids=_ids(DOCS))
def test_inline_math_does_not_follow_punctuation(doc: Path) -> None:
    """GitHub leaves `$...$` unrendered when the opening `$` directly follows punctuation,
    as in `($x$` or `，$x$`. Put a space before the `$`, or rephrase."""
    found = _math_after_punctuation(_text(doc))
    assert not found, (
        f"{doc.relative_to(ROOT)}: inline math right after punctuation does not render on "
        "GitHub; put a space before the `$` or rephrase:\n"
        + "\n".join(f"  line {line}: {excerpt}" for line, excerpt in found))


@pytest.mark.parametrize("doc", DOCS, ids=_ids(DOCS))
def test_code_paths_exist(doc: Path) -> None:
    text = _text(doc)
    for path in set(SRC_PATH.findall(text)):
        assert (ROOT / path).is_file(), f"{doc.name} mentions {path}, which does not exist"
    for dotted in set(MODULE_PATH.findall(text)):
        parts = dotted.split(".")
        for i in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:i]))
            except ModuleNotFoundError:
                continue
            for attribute in parts[i:]:
                assert hasattr(obj, attribute), f"{doc.name} mentions {dotted}: no {attribute}"
                obj = getattr(obj, attribute)
            break
        else:
            pytest.fail(f"{doc.name} mentions {dotted}, which cannot be imported")


def _command_lines(path: Path) -> list[str]:
    """Lines of the shell code blocks, without prompts, comments and blank lines."""
    lines = []
    for language, body in _blocks(_text(path)):
        if language not in SHELL_BLOCKS:
            continue
        for raw in body.splitlines():
            line = raw.strip().removeprefix("$ ")
            line = re.sub(r"(^|\s)#.*$", "", line).strip()
            if line:
                lines.append(line)
    return lines


def _planet_commands(path: Path) -> list[list[str]]:
    """The arguments of every `planet ...` command shown in a shell code block."""
    commands = []
    for line in _command_lines(path):
        tokens = shlex.split(line)
        while tokens and re.match(r"^\w+=", tokens[0]):  # VAR=value planet ...
            tokens = tokens[1:]
        if tokens and Path(tokens[0]).name == "planet":
            commands.append(tokens[1:])
    return commands


def _subcommands() -> set[str]:
    parser = cli.build_parser()
    for action in parser._actions:
        if action.choices and isinstance(action.choices, dict):
            return set(action.choices)
    raise AssertionError("planet has no subcommands")


@pytest.mark.parametrize("readme", READMES, ids=_ids(READMES))
def test_readme_planet_commands_exist(readme: Path) -> None:
    commands = _planet_commands(readme)
    assert commands, f"{readme.name} shows no planet command"
    registered = _subcommands()
    shown = {args[0] for args in commands if args and not args[0].startswith("-")}
    assert shown >= {"tasks", "train", "test", "predict", "plot", "bench"}, (
        f"{readme.name} should show every subcommand; it shows {sorted(shown)}")
    missing = shown - registered
    assert not missing, (f"{readme.name} shows `planet {' | '.join(sorted(missing))}`, not "
                         f"registered in cli.build_parser() (registered: {sorted(registered)})")


@pytest.mark.parametrize("readme", READMES, ids=_ids(READMES))
def test_readme_planet_commands_parse(readme: Path) -> None:
    """Every flag shown in the README exists and takes the value shown."""
    parser = cli.build_parser()
    for args in _planet_commands(readme):
        if {"-h", "--help"} & set(args):
            continue
        try:
            parser.parse_args(args)
        except SystemExit:
            pytest.fail(f"{readme.name}: `planet {' '.join(args)}` does not parse")


def _make_rules() -> dict[str, tuple[list[str], list[str]]]:
    """Makefile target -> (prerequisites, recipe lines)."""
    rules: dict[str, tuple[list[str], list[str]]] = {}
    current: list[str] | None = None
    for line in _text(ROOT / "Makefile").splitlines():
        if line.startswith("\t") and current is not None:
            current.append(line.strip())
            continue
        match = re.match(r"^([^\s:=#][^:=]*):(?!=)(.*)$", line)
        if match and not line.startswith("."):
            recipe: list[str] = []
            for target in match.group(1).split():
                rules[target] = (match.group(2).split(), recipe)
            current = recipe
        elif line.strip() and not line.startswith("#"):
            current = None
    return rules


def _recipe(target: str, rules: dict[str, tuple[list[str], list[str]]]) -> list[str]:
    """The recipe lines a target runs, its prerequisites' first."""
    if target not in rules:
        return []
    prerequisites, recipe = rules[target]
    return [line for p in prerequisites for line in _recipe(p, rules)] + recipe


def test_ci_runs_the_readme_test_command() -> None:
    ci = [line.strip() for line in _text(ROOT / ".ci" / "run").splitlines()
          if line.strip() and not line.strip().startswith("#")]
    assert "make test" in ci, f".ci/run does not run `make test`: {ci}"
    for readme in READMES:
        assert "make test" in _command_lines(readme), f"{readme.name} does not show make test"


def test_make_test_runs_ruff_and_pytest() -> None:
    lines = " ; ".join(_recipe("test", _make_rules()))
    assert re.search(r"\bruff check\b", lines), f"make test runs no ruff check: {lines}"
    assert re.search(r"\bpytest\b", lines), f"make test runs no pytest: {lines}"


def test_make_train_takes_task_and_args() -> None:
    rules = _make_rules()
    recipe = " ; ".join(_recipe("train", rules))
    assert re.search(r"planet train\b.*\$\(TASK\).*\$\(ARGS\)", recipe), recipe
    for readme in READMES:
        shown = [line for line in _command_lines(readme) if line.startswith("make ")]
        for line in shown:
            target = line.split()[1]
            assert target in rules, f"{readme.name}: `{line}`: no make target {target}"


@pytest.mark.parametrize("pair", PAIRS, ids=[a.name for a, _ in PAIRS])
def test_translations_in_step(pair: tuple[Path, Path]) -> None:
    english, chinese = pair
    levels = [[level for level, _ in _headings(p)] for p in pair]
    assert levels[0] == levels[1], f"{english.name} and {chinese.name} differ in sections"
    assert _command_lines(english) == _command_lines(chinese), (
        f"{english.name} and {chinese.name} show different commands")

    def code_links(path: Path) -> list[str]:
        return [target for _, target in _relative_links(path)
                if ".py" in target or "/figures/" in target]
    assert code_links(english) == code_links(chinese), (
        f"{english.name} and {chinese.name} link to different code")

    def formulas(path: Path) -> list[str]:
        """Display formulas with the words of \\text{...} removed (those are translated)."""
        return [re.sub(r"\\text\{[^{}]*\}", r"\\text{}", body)
                for language, body in _blocks(_text(path)) if language == "math"]
    assert formulas(english) == formulas(chinese), (
        f"{english.name} and {chinese.name} have different display formulas")
    for path, other in pair, pair[::-1]:
        assert other.name in _text(path), f"{path.name} does not link to {other.name}"


def test_readmes_have_the_same_level_two_sections() -> None:
    counts = [sum(1 for level, _ in _headings(p) if level == 2) for p in READMES]
    assert counts[0] == counts[1] >= 8, f"level-2 sections: {counts}"
