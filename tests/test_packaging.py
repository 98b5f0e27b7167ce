"""The package list, the README quickstart and CI stay in step with the tree."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"harness": "facebench.harness", "generators": "facebench.generators", "detectors": "facebench.detectors",
           "testing": "facebench.testing"}


def test_every_python_package_folder_is_installed():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    for folder, import_name in FOLDERS.items():
        assert config["package-dir"][import_name] == folder
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder).parts
            assert ".".join((import_name, *relative)) in listed, f"{init.parent} is missing from pyproject packages"


def test_readme_quickstart_has_two_commands_and_ci_runs_the_test_one():
    quickstart = (ROOT / "README.md").read_text().split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.+?)\n```", quickstart)
    assert len(commands) == 2
    assert "facebench run" in commands[0]
    assert "pytest" in commands[1]
    assert commands[1] in (ROOT / ".ci" / "run").read_text()


def test_torch_is_pinned():
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "torch==2.13.0" in dependencies


REPORT_STATIC = ROOT / "harness" / "report" / "static"


def test_report_styles_and_script_are_declared_package_data():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "facebench.harness.report.static" in config["packages"]
    patterns = config["package-data"]["facebench.harness.report.static"]
    files = sorted(p.name for p in REPORT_STATIC.iterdir())
    assert files == ["report.css", "report.js"]
    for name in files:
        assert any(Path(name).match(pattern) for pattern in patterns), f"{name} is not declared package data"


def test_a_built_package_holds_the_report_styles_and_script(tmp_path):
    import subprocess
    import sys

    from facebench.harness.report.html import STATIC_FILES, static_text

    build = subprocess.run([sys.executable, "-c", "import setuptools; setuptools.setup()", "-q", "build_py",
                            "--build-lib", str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    built = tmp_path / "facebench" / "harness" / "report" / "static"
    for name in STATIC_FILES:
        assert (built / name).read_text(encoding="utf-8") == static_text(name) == (REPORT_STATIC / name).read_text()
