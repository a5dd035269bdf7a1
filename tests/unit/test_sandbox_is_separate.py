"""The sandbox (``local-kubeai``, in ``sandbox/``) imports nothing of the provider; the provider wheel holds none of it."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SANDBOX = ROOT / "sandbox"
PROVIDER = "airflow_provider_kubeai_speech"


def provider_references(source: str) -> list[tuple[int, str]]:
    """Lines of ``source`` that import the provider, statically or by a module name in a string."""
    found = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            # importlib.import_module("..."), python -m ..., a pytest_plugins entry
            names = [node.value]
        found += [(getattr(node, "lineno", 0), name) for name in names if name.split(".")[0] == PROVIDER]
    return found


def test_the_check_sees_every_way_of_importing_the_provider() -> None:
    source = (
        f"import {PROVIDER}\nfrom {PROVIDER}.transcription import decode\n"
        f"def f():\n    import {PROVIDER}.spec as s\n"
        f"importlib.import_module('{PROVIDER}.hooks')\nfrom .{PROVIDER} import x\n"
    )
    assert [line for line, _ in provider_references(source)] == [1, 2, 4, 5]


def test_no_sandbox_module_imports_the_provider() -> None:
    modules = sorted(SANDBOX.rglob("*.py"))
    assert len(modules) > 15, "the sandbox's modules were not found"
    offenders = {
        str(path.relative_to(ROOT)): refs
        for path in modules
        if (refs := provider_references(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}


def test_the_provider_package_holds_no_sandbox() -> None:
    package = ROOT / PROVIDER
    assert not (package / "sandbox").exists()
    assert not (package / "crd").exists()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_provider_wheel_holds_only_the_provider(tmp_path: Path) -> None:
    # a copy, so the build leaves no build/ or egg-info in the checkout; sandbox/ is copied too so
    # that a packages.find that picked it up would show
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for name in (PROVIDER, "sandbox", "scripts"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    out = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(out), str(source)],
        check=True, capture_output=True, text=True, timeout=280,
    )  # fmt: skip
    (wheel,) = out.glob("airflow_provider_kubeai_speech-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert any(name.startswith(f"{PROVIDER}/hooks/") for name in names)
    assert [
        name
        for name in names
        if name.startswith(
            ("local_kubeai", "sandbox/", "scripts/", f"{PROVIDER}/sandbox/", f"{PROVIDER}/crd/")
        )
        or name.endswith(".yaml")
    ] == []
    entry_points = next(name for name in names if name.endswith(".dist-info/entry_points.txt"))
    assert "sandbox" not in zipfile.ZipFile(wheel).read(entry_points).decode()
