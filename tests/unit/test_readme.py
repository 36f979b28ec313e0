"""The README's commands work when pasted (issue 22, finding 2): every snakemake command
parses with Snakemake's own parser and names its targets first (an option that takes values
takes a target after it as one more value: `--sdm conda r_objects`, `--configfile x.yaml
export_r`), and every code block is run by .ci/run or says why it cannot run offline."""

import re
import shlex

import pytest
from conftest import PROJECT

README = (PROJECT / "README.md").read_text()
CI_RUN = (PROJECT / ".ci" / "run").read_text()
FENCE = re.compile(r"^\s*```(\w*)\s*$")
MARK = re.compile(r"^\s*<!-- (ci|docs): ([\w-]+)")


def code_blocks() -> list[dict]:
    """Every fenced block: its language, lines, and the marker line just before it."""
    lines, blocks, i = README.splitlines(), [], 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if FENCE.match(lines[j]))
        before = [line for line in lines[:i] if line.strip()][-1]
        blocks.append({"language": fence[1], "lines": lines[i + 1 : end], "mark": before,
                       "at": i + 1})  # fmt: skip
        i = end + 1
    return blocks


def snakemake_commands() -> list[str]:
    """Each snakemake command of the README: lines of its code blocks, inline code spans."""
    texts = [line for block in code_blocks() for line in block["lines"]]
    texts += re.findall(r"`([^`\n]*snakemake [^`\n]*)`", README)
    commands = []
    for text in texts:
        for part in text.split("&&"):
            part = part.split(" #", 1)[0].strip()
            if re.match(r"^(\.venv/bin/)?snakemake\b", part):
                commands.append(part)
    return commands


COMMANDS = snakemake_commands()


def test_the_readme_has_its_commands():
    assert len(COMMANDS) > 15
    assert any("r_objects" in c for c in COMMANDS) and any("export_r" in c for c in COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_each_snakemake_command_parses_with_its_targets_first(command):
    from snakemake.cli import get_argument_parser

    words = shlex.split(command)[1:]
    try:
        args = get_argument_parser().parse_args(words)
    except SystemExit:
        pytest.fail(f"snakemake refuses `{command}`")
    first = []
    for word in words:
        if word.startswith("-"):
            break
        first.append(word)
    assert list(args.targets) == first, f"`{command}`: targets go before the options"
    for path in args.configfile or []:
        assert path.suffix == ".yaml", f"`{command}`: --configfile took {path}"


def test_every_code_block_is_run_by_ci_or_says_why_not():
    names = set()
    for block in code_blocks():
        mark = MARK.match(block["mark"])
        assert mark, f"README.md line {block['at']}: a code block without a <!-- ci: --> mark"
        kind, name = mark.groups()
        if kind == "ci" and name != "no":
            names.add(name)
        if kind == "ci" and name == "no":
            assert re.search(r"ci: no \(.+\)", block["mark"]), "say why it cannot run"
    run = set(re.findall(r"run_readme_block (\S+)", CI_RUN))
    assert names == run, f"blocks marked for CI {sorted(names)}, .ci/run runs {sorted(run)}"
