"""The provider's layers import one way (DESIGN.md, "The house"):

operators, sensors -> hooks, triggers, transcription -> spec, exceptions and the shared value types.
Hooks may import transcription; transcription never imports hooks. ``spec.py`` imports none of
them, and nothing in the provider imports the sandbox (a separate distribution).

Every import counts: module level, inside functions, and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "airflow_provider_kubeai_speech"
ROOT = Path(__file__).resolve().parents[2] / PACKAGE
#: Folders of the package that are not the provider (being moved out into their own distribution).
NOT_THE_PROVIDER = ("sandbox", "crd")

#: layer -> layers it must not import.
FORBIDDEN: dict[str, frozenset[str]] = {
    "operators": frozenset(),
    "sensors": frozenset(),  # a peer of the operators (it shares operators/templating.py)
    "triggers": frozenset({"operators", "sensors"}),
    "hooks": frozenset({"operators", "sensors", "triggers"}),
    "transcription": frozenset({"hooks", "operators", "sensors", "triggers"}),
    "spec": frozenset({"hooks", "transcription", "operators", "sensors", "triggers"}),
    # exceptions, speech, text_safety, model_status, capacity, ...: the bottom layer
    "shared": frozenset({"hooks", "transcription", "operators", "sensors", "triggers", "spec"}),
}
NOWHERE = (f"{PACKAGE}.sandbox", "local_kubeai")


def layer_of(module: str) -> str | None:
    """The layer of a provider module (``airflow_provider_kubeai_speech.hooks.endpoint`` -> ``hooks``)."""
    parts = module.split(".")
    if parts[0] != PACKAGE or len(parts) == 1:
        return None
    if parts[1] in FORBIDDEN and parts[1] != "shared":
        return parts[1]
    return "shared"


def module_name(path: Path, root: Path) -> str:
    relative = path.relative_to(root.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, module: str) -> list[tuple[int, str]]:
    """``(line, imported module)`` for every import in ``path``, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            # ``from airflow_provider_kubeai_speech import hooks`` imports the subpackage
            found.extend((node.lineno, f"{target}.{alias.name}") for alias in node.names if target == PACKAGE)
    return found


def offending_imports(root: Path) -> list[str]:
    """``file:line: module imports target (why)`` for every import against the directions."""
    problems: list[str] = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if relative.parts[0] in NOT_THE_PROVIDER:
            continue
        module = module_name(path, root)
        layer = layer_of(module)
        for line, target in imports_of(path, module):
            where = f"{PACKAGE}/{relative.as_posix()}:{line}"
            if any(target == banned or target.startswith(banned + ".") for banned in NOWHERE):
                problems.append(f"{where}: imports {target} (the sandbox is not part of the provider)")
                continue
            target_layer = layer_of(target)
            if layer is None or target_layer is None or target_layer == layer:
                continue
            if target_layer in FORBIDDEN[layer]:
                problems.append(f"{where}: {layer} imports {target} ({layer} must not import {target_layer})")
    return problems


def test_the_layers_import_one_way() -> None:
    problems = offending_imports(ROOT)
    assert not problems, "imports against the provider's layering:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    ("relative", "source", "expected"),
    [
        (
            "transcription/x.py",
            "from airflow_provider_kubeai_speech.hooks.endpoint import A\n",
            "transcription imports",
        ),
        ("transcription/x.py", "def f():\n    from ..hooks import endpoint\n", "x.py:2"),
        ("spec.py", "from airflow_provider_kubeai_speech.transcription import formats\n", "spec imports"),
        ("hooks/x.py", "from airflow_provider_kubeai_speech.operators import invoke\n", "hooks imports"),
        ("speech.py", "from airflow_provider_kubeai_speech import hooks\n", "shared imports"),
        ("hooks/x.py", "import airflow_provider_kubeai_speech.sandbox.store\n", "the sandbox"),
        ("operators/x.py", "from local_kubeai import testing\n", "the sandbox"),
    ],
)
def test_each_offending_import_is_named_with_its_file_and_line(
    tmp_path: Path, relative: str, source: str, expected: str
) -> None:
    root = tmp_path / PACKAGE
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)
    problems = offending_imports(root)
    assert len(problems) == 1 and expected in problems[0], problems
    assert problems[0].startswith(f"{PACKAGE}/{relative}:")


def test_allowed_directions_pass(tmp_path: Path) -> None:
    root = tmp_path / PACKAGE
    files = {
        "operators/x.py": "from airflow_provider_kubeai_speech.hooks import kubeai\nfrom ..transcription import batch\n",
        "hooks/x.py": "from airflow_provider_kubeai_speech.transcription.sources import audio_opener\n",
        "transcription/x.py": "from airflow_provider_kubeai_speech.speech import TranscriptionRequest\n",
        "spec.py": "from airflow_provider_kubeai_speech.exceptions import KubeAISpeechError\n",
        "sandbox/x.py": "from airflow_provider_kubeai_speech.hooks import kubeai\n",
    }
    for relative, source in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(source)
    assert offending_imports(root) == []
