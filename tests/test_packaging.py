"""The project itself: CI runs the README's command, code is linted and type-checked."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ci_run__executes_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    script = (ROOT / ".ci" / "run").read_text().splitlines()
    command = [
        line for line in script if line.strip() and not line.startswith(("#", "set ", "cd "))
    ]
    assert len(command) == 1, command
    blocks = re.findall(r"```bash\n(.*?)```", readme, flags=re.S)
    assert any(command[0].strip() == b.strip() for b in blocks), command[0]


def test_readme__quick_start_runs():
    # the README's Python quick start must run as written (from the repository root)
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Quick start.*?```python\n(.*?)```", readme, flags=re.S)
    assert block is not None
    code = block.group(1)
    namespace: dict[str, object] = {}
    import os

    cwd = os.getcwd()
    try:
        os.chdir(ROOT)
        exec(compile(code, "README.md", "exec"), namespace)
    finally:
        os.chdir(cwd)
    out = namespace["out"]
    assert round(out.hsq, 7) == 0.7642841  # the value R prints


def _tool(name: str) -> str:
    path = shutil.which(name, path=str(Path(sys.executable).parent))
    if path is None:
        pytest.fail(f"{name} is not installed in the test environment (pip install -e '.[test]')")
    return path


def test_ruff__clean():
    res = subprocess.run(
        [_tool("ruff"), "check", "src", "tests", "bench"], cwd=ROOT, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stdout + res.stderr


def test_mypy__clean():
    res = subprocess.run([_tool("mypy")], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
