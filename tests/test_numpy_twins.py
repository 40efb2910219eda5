"""The NumPy twins of the compiled kernels carry the library too: a part of the suite runs again
with numba switched off (``LMMLITE_DISABLE_NUMBA=1``), in a subprocess since the switch is read
when lmmlite is imported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
#: The modules run on the twins: likelihood, fits and their golden values, properties, scans
#: against the dense reference and GEMMA, bad input.
MODULES = [
    "test_brent.py",
    "test_dense_reference.py",
    "test_r_reference.py",
    "test_properties.py",
    "test_inputs.py",
    "test_scan.py",
    "test_gemma.py",
]


@pytest.mark.slow
def test_suite__passes_on_the_numpy_twins():
    env = {**os.environ, "LMMLITE_DISABLE_NUMBA": "1"}
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *MODULES],
        cwd=TESTS,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert " passed" in res.stdout and "skipped" not in res.stdout.splitlines()[-1]
