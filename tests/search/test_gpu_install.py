"""The GPU machine's install, rehearsed here: a fresh virtualenv that sees only what the GPU image has (torch, triton,
numpy, pyyaml, tqdm, matplotlib, markupsafe, narwhals, packaging, pip, setuptools and their requirements), then the
wheelhouse of `make wheelhouse` (built for this interpreter's version) installed with no index, the package with no
index, and a one-trial `kunlun search` (README, "Search on a GPU machine")."""

from __future__ import annotations

import importlib.metadata as metadata
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# What the GPU image has besides Python (2026-11 lease; its setup stage installs the package with no build isolation)
IMAGE = ("torch", "triton", "numpy", "pyyaml", "tqdm", "matplotlib", "markupsafe", "narwhals", "packaging", "pip",
         "setuptools")
NETWORK = ("NewConnectionError", "Temporary failure in name resolution", "Network is unreachable", "Max retries",
           "ConnectTimeout", "ReadTimeout")


def _closure(roots: tuple[str, ...]) -> set[str]:
    """The installed distributions `roots` need (requirements followed, extras left out)."""
    from packaging.requirements import Requirement

    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if name in seen:
            continue
        seen.add(name)
        for req in metadata.requires(name) or []:
            r = Requirement(req)
            if r.marker is None or r.marker.evaluate({"extra": ""}):
                todo.append(r.name)
    return seen


def _image(folder: Path) -> Path:
    """A folder of links to the top-level modules and metadata of the image's distributions, as installed here."""
    folder.mkdir()
    for name in _closure(IMAGE):
        dist = metadata.distribution(name)
        base = Path(dist.locate_file(""))
        for top in {Path(f).parts[0] for f in dist.files or [] if not str(f).startswith("..")}:
            if (base / top).exists() and not (folder / top).exists():
                (folder / top).symlink_to(base / top)
    return folder


def _run(argv: list, cwd: Path, env: dict, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_gpu_install_without_index_runs_a_search(tmp_path: Path, tiny_space: Path) -> None:
    wheels = tmp_path / "whl"
    pyver = f"{sys.version_info.major}.{sys.version_info.minor}"
    built = _run(["make", "-s", "wheelhouse", f"GPU_PYVER={pyver}", f"WHEELHOUSE={wheels}"], ROOT, dict(os.environ))
    if built.returncode != 0 and any(s in built.stderr for s in NETWORK):
        pytest.skip(f"the wheels cannot be downloaded (no network?): {built.stderr.strip().splitlines()[-1]}")
    assert built.returncode == 0, built.stderr
    names = sorted(p.name.split("-")[0].lower() for p in wheels.glob("*.whl"))
    assert names == ["alembic", "colorlog", "mako", "optuna", "sqlalchemy", "typing_extensions"]

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             capture_output=True, text=True, check=True).stdout.strip()
    (Path(purelib) / "gpu-image.pth").write_text(f"{_image(tmp_path / 'image')}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(PIP_NO_INDEX="1", PIP_CONFIG_FILE=os.devnull, PATH=f"{venv / 'bin'}:{env.get('PATH', '')}")
    missing = _run([python, "-c", "import optuna"], tmp_path, env)
    assert missing.returncode != 0, "optuna is visible before the wheelhouse is installed: not the GPU image"

    site = tmp_path / "site"  # the GPU recipe, word for word but for the paths
    step = _run([python, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile", "--no-cache-dir",
                 "--upgrade", "--target", site, *sorted(wheels.glob("*.whl"))], tmp_path, env)
    assert step.returncode == 0, step.stderr
    env["PYTHONPATH"] = str(site)
    source = tmp_path / "src"  # the files git tracks, as the machine gets them (pip builds inside the tree)
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for rel in tracked.split():
        if (ROOT / rel).is_file():
            (source / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, source / rel)
    step = _run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "."], source, env)
    assert step.returncode == 0, step.stderr

    out = tmp_path / "study"
    search = _run([venv / "bin" / "kunlun", "search", tiny_space, "--trials", "1", "--out", out, "--no-progress",
                   "--price", "measured"], tmp_path, env)
    assert search.returncode == 0, search.stderr
    assert "best NE" in search.stdout
    where = _run([python, "-c", "import kunlun.search, optuna; print(kunlun.search.__file__, optuna.__file__)"],
                 tmp_path, env).stdout
    assert str(venv) in where.split()[0] and str(site) in where.split()[1]  # the installed copies, not this tree's
    rows = (out / "trials.csv").read_text().splitlines()
    assert len(rows) == 2 and "measured_us_per_example" in rows[0]
