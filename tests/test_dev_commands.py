"""README's Development commands are the ones CI runs, and CI installs the tools they need."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def development_commands() -> list[str]:
    section = (ROOT / "README.md").read_text().split("## Development", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.+?)\n```", section, re.S)
    assert len(blocks) == 1
    return blocks[0].splitlines()


def test_ci_lints_and_type_checks_as_the_readme_says():
    install, ruff, mypy = development_commands()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "editable_mode=strict" in install and "PIP_CONFIG_SETTINGS=editable_mode=strict pip install -e" in ci
    assert ruff in ci.splitlines()
    assert mypy.startswith("MYPYPATH=$(echo build/__editable__.facebench-")
    tool = mypy.split(") ", 1)[1]
    assert any(line.startswith('MYPYPATH="build/__editable__.facebench-') and line.endswith(tool)
               for line in ci.splitlines())


def test_the_test_extra_brings_ruff_and_mypy():
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    names = {re.split(r"[<>=\[ ]", requirement, maxsplit=1)[0] for requirement in extra}
    assert {"ruff", "mypy"} <= names
