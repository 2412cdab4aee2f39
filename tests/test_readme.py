"""Every example of README.md runs as written (issue 10, defect 6: "Test every README example").

The test reads README.md, takes every fenced ```python and ```bash block, and runs them in README order in
one temporary folder that holds the sample photos (``photos/``, written by ``picinspector samples``), as a
new user would after "Try it". Python blocks are executed; bash blocks must hold only ``picinspector``
command lines, which run in-process through the Typer app and must exit 0. A block that cannot run here
(it needs ../shared, a network, a trained model, a server that keeps running, or a long run) is preceded in
the Markdown source by ``<!-- not-tested: reason -->``; every other example block must run, so a new
example is tested unless someone says why not. Links to files and sections are checked as well.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FENCE = re.compile(r"^```([\w+-]*)\s*$")
MARK = re.compile(r"^<!--\s*not-tested:\s*(.*?)\s*-->\s*$")
EXAMPLES = {"python": "python", "py": "python", "bash": "shell", "sh": "shell", "shell": "shell",
            "console": "shell"}


@dataclass
class Block:
    lang: str          # "python", "shell", or another fence language (output, schema: never run)
    code: str
    line: int          # 1-based line of the opening fence
    skip: str | None   # the reason of a `not-tested` mark right before the block, else None

    @property
    def where(self) -> str:
        return f"README.md:{self.line}"


def parse_blocks(text: str) -> list[Block]:
    """Fenced blocks of a Markdown text, with the `not-tested` mark on the last non-blank line before each."""
    lines = text.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start, lang = i, m.group(1).lower()
        j = i + 1
        while j < len(lines) and lines[j].strip() != "```":
            j += 1
        if j == len(lines):
            raise ValueError(f"line {start + 1}: a code block that is never closed")
        k = start - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        mark = MARK.match(lines[k].strip()) if k >= 0 else None
        blocks.append(Block(EXAMPLES.get(lang, lang or "text"), "\n".join(lines[start + 1:j]) + "\n",
                            start + 1, mark.group(1) if mark else None))
        i = j + 1
    return blocks


def shell_commands(block: Block) -> list[list[str]]:
    """The argument lists of a shell block's lines (comments dropped); each must start with picinspector."""
    commands, lines = [], block.code.splitlines()
    logical: list[tuple[int, str]] = []
    for n, line in enumerate(lines):       # join continuation lines (a trailing backslash)
        if logical and logical[-1][1].endswith("\\"):
            logical[-1] = (logical[-1][0], logical[-1][1][:-1] + " " + line)
        else:
            logical.append((n, line))
    for n, line in logical:
        args = shlex.split(line, comments=True)
        if not args:
            continue
        if args[0] != "picinspector":
            raise AssertionError(
                f"README.md:{block.line + 1 + n}: `{args[0]}` in an unmarked shell block; only picinspector "
                f"commands run in the test: mark the block with <!-- not-tested: reason --> if it cannot run")
        commands.append(args[1:])
    return commands


def _readme_blocks() -> list[Block]:
    return parse_blocks(README.read_text(encoding="utf-8"))


def test_the_parser_finds_blocks_and_marks():
    text = ("intro\n\n```bash\npicinspector measures   # all\n```\n\n<!-- not-tested: needs ../shared -->\n"
            "```python\nimport x\n```\n\n```\noutput\n```\nA bullet with ```` ```python ```` inline.\n")
    blocks = parse_blocks(text)
    assert [(b.lang, b.line, b.skip) for b in blocks] == [
        ("shell", 3, None), ("python", 8, "needs ../shared"), ("text", 12, None)]
    assert shell_commands(blocks[0]) == [["measures"]]
    with pytest.raises(AssertionError, match="`curl` in an unmarked shell block"):
        shell_commands(Block("shell", "curl http://x\n", 1, None))
    with pytest.raises(ValueError, match="never closed"):
        parse_blocks("```python\nx = 1\n")


def test_every_example_block_is_runnable_or_marked_with_a_reason():
    blocks = [b for b in _readme_blocks() if b.lang in ("python", "shell")]
    assert len(blocks) >= 8
    for b in blocks:
        if b.skip is not None:
            assert len(b.skip) >= 8, f"{b.where}: a not-tested mark needs a reason"
        elif b.lang == "shell":
            assert shell_commands(b), f"{b.where}: an empty shell block"
    run = [b for b in blocks if b.skip is None]
    # the main commands a new user tries first must be among the tested examples
    tested = " ".join(" ".join(a) for b in run if b.lang == "shell" for a in shell_commands(b))
    for needed in ("samples photos/", "analyze photos/", "--json", "-o results.jsonl", "report results.jsonl",
                   "measures", "cull results.jsonl --dry-run"):
        assert needed in tested, f"no tested README example runs `picinspector ... {needed}`"
    assert any(b.lang == "python" for b in run)


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*$", text, flags=re.M)}


def test_links_point_to_files_and_sections_that_exist():
    text = re.sub(r"^```.*?^```", "", README.read_text(encoding="utf-8"), flags=re.S | re.M)
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    assert links
    for link in links:
        if re.match(r"[a-z]+://", link):
            continue
        target, _, anchor = link.partition("#")
        path = (README.parent / target) if target else README
        assert path.exists(), f"README links to {target}, which does not exist"
        if anchor and path.suffix == ".md":
            assert anchor in _anchors(path), f"README links to {link}: no such section in {path.name}"


def test_every_unmarked_example_runs_as_written(tmp_path, monkeypatch):
    from picinspector.cli import app
    from picinspector.samples import write_samples

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "100")
    write_samples(tmp_path / "photos")       # what "after `picinspector samples photos/`" promises
    runner = CliRunner()
    ran, json_lines = [], []
    for block in _readme_blocks():
        if block.lang not in ("python", "shell") or block.skip is not None:
            continue
        if block.lang == "python":
            try:
                exec(compile(block.code, block.where, "exec"), {"__name__": "__readme__"})
            except Exception as e:  # noqa: BLE001  (name the block that failed)
                raise AssertionError(f"the Python example at {block.where} fails: {type(e).__name__}: {e}") from e
        else:
            for args in shell_commands(block):
                result = runner.invoke(app, args)
                assert result.exit_code == 0, (
                    f"`picinspector {shlex.join(args)}` ({block.where}) exits {result.exit_code}:\n"
                    f"{result.output[-3000:]}\n{result.exception!r}")
                if "--json" in args:
                    json_lines += [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
        ran.append(block.line)
    unmarked = [b.line for b in _readme_blocks() if b.lang in ("python", "shell") and b.skip is None]
    assert ran == unmarked and ran

    # What the examples promise, read back from what they wrote.
    assert json_lines and all({"scores", "scene", "findings", "engine"} <= row.keys() for row in json_lines)
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    photos = sorted(p.name for p in (tmp_path / "photos").glob("c*.jpg"))   # china*, chelsea, coffee
    assert sorted(Path(r["path"]).name for r in rows) == photos, "the batch and its resume: each photo once"
    assert not [r for r in rows if "error" in r]
    assert (tmp_path / "report.html").read_text(encoding="utf-8").count("china_noisy.jpg") >= 1
    assert not list(tmp_path.rglob("*.xmp")), "cull --dry-run and --no-xmp must write no XMP"
