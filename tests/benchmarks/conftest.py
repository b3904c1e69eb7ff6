"""The benchmark scripts are plain scripts, not a package: their tests import them from benchmarks/ as the
scripts import each other (rows, timing)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
