"""The package's shape: every module imports on its own, no import cycles, light entry points."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGE = REPO / "restorezoo"


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = sorted(_module_name(p) for p in PACKAGE.rglob("*.py"))


def _imports(path: Path) -> set[str]:
    """restorezoo modules a file imports at module level (not inside functions: those are lazy on purpose)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for sub in ast.walk(node) if not isinstance(node, ast.FunctionDef | ast.ClassDef) else []:
            if isinstance(sub, ast.ImportFrom) and sub.module and sub.module.startswith("restorezoo"):
                found.add(sub.module)
                found.update(f"{sub.module}.{a.name}" for a in sub.names)
            elif isinstance(sub, ast.Import):
                found.update(a.name for a in sub.names if a.name.startswith("restorezoo"))
    return found & set(MODULES)


def test_there_is_no_import_cycle_between_the_package_modules():
    graph = {name: _imports(REPO / (name.replace(".", "/") + ".py")) if (REPO / (name.replace(".", "/") + ".py")).is_file()
             else _imports(REPO / name.replace(".", "/") / "__init__.py") for name in MODULES}
    # a package importing its own submodules is how packages work; a cycle is a module reached again
    for name in graph:
        graph[name] = {dep for dep in graph[name] if not name.startswith(dep + ".") and dep != name}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep):] + [dep] if dep in stack else [node, dep])
            elif dep not in state:
                visit(dep, [*stack, dep])
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name, [name])
    assert not cycles, f"import cycles: {cycles[:5]}"


def test_every_module_imports_in_one_fresh_interpreter():
    """Every module of the package loads (a moved name or a broken import fails here, in seconds)."""
    code = f"import importlib\nfor name in {MODULES!r}:\n    importlib.import_module(name)\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.slow  # one interpreter per module: about 5 minutes on 2 cores
def test_every_module_imports_alone_in_a_fresh_interpreter():
    """Each module of the package, imported first and alone, loads (no order-dependent imports)."""
    script = (
        "import importlib, subprocess, sys\n"
        "failed = []\n"
        f"for name in {MODULES!r}:\n"
        "    r = subprocess.run([sys.executable, '-c', f'import {name}'], capture_output=True, text=True)\n"
        "    if r.returncode:\n"
        "        failed.append((name, (r.stderr.strip().splitlines() or [''])[-1]))\n"
        "print(failed)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=900)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", result.stdout


@pytest.mark.parametrize("entry", ["restorezoo", "restorezoo.models", "restorezoo.data", "restorezoo.metrics"])
def test_importing_a_package_imports_no_model_and_no_heavy_stack(entry: str):
    code = (
        f"import sys, {entry}\n"
        "heavy = sorted(m for m in sys.modules if m.startswith(('restorezoo.models.', 'lightning', 'diffusers', "
        "'open_clip', 'transformers')))\n"
        "print(heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"import {entry} pulled in {result.stdout.strip()}"


def test_atomic_outputs_are_ordinary_files_not_owner_only(tmp_path):
    from restorezoo import files

    path = files.atomic_write_text(tmp_path / "table.md", "| a |\n")
    assert path.read_text() == "| a |\n"
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~files._UMASK)  # mkstemp alone gives 0o600
    assert path.stat().st_mode & 0o044 or files._UMASK & 0o044  # readable by others unless the umask says no


def test_the_packaged_sample_is_what_restorezoo_sample_computes(tmp_path):
    """`restorezoo sample` copies pre-rendered files (no torch import); they must equal a fresh render."""
    import numpy as np
    from PIL import Image

    from restorezoo.data.sample_photos import PACKAGED_SAMPLE, copy_packaged_sample, write_degraded_sample

    computed = write_degraded_sample(tmp_path / "computed")
    copied = copy_packaged_sample(tmp_path / "copied")
    assert computed == copied == 9
    names = sorted(p.relative_to(tmp_path / "computed") for p in (tmp_path / "computed").rglob("*.png"))
    assert names == sorted(p.relative_to(tmp_path / "copied") for p in (tmp_path / "copied").rglob("*.png"))
    for name in names:
        fresh = np.asarray(Image.open(tmp_path / "computed" / name))
        assert np.array_equal(fresh, np.asarray(Image.open(tmp_path / "copied" / name))), name
    assert len(list(PACKAGED_SAMPLE.glob("clean/*.png"))) == 3


def test_the_readme_layout_names_every_module():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    layout = readme[readme.index("## Layout"):]
    layout = layout[: layout.index("```", layout.index("```") + 3)]
    missing = sorted(
        str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" and p.name not in layout
    )
    assert not missing, f"README's Layout does not mention {missing}"
