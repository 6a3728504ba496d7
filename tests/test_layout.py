"""The package's folders say the architecture (issue 18): what runs in Lambda apart from the operator's tools.

The runtime (every folder but ``tools/``) never imports the tools, eagerly or lazily, and the layer
Lambda loads ships the runtime only. Checked on the source (an AST walk, so an import inside a
function counts) and on the copy the layer's Makefile makes.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "layers" / "xrelay" / "xrelay"
TOOLS = PACKAGE / "tools"


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, absolute; relative imports resolved against its own package."""
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]) if path.is_relative_to(
        PACKAGE) else ""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([base] if base else [])])
            found |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return found


def runtime_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if not p.is_relative_to(TOOLS))


def test_every_folder_says_what_it_holds_and_may_import():
    for init in sorted(PACKAGE.rglob("__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert "import" in doc, f"{init.relative_to(ROOT)}: its docstring says what the folder may import"


def test_the_runtime_imports_nothing_from_the_tools():
    files = runtime_files() + sorted(ROOT.glob("functions/*/app.py"))
    assert len(files) > 25  # the walk found the package
    offending = {str(p.relative_to(ROOT)): sorted(m for m in imported_modules(p) if m.startswith("xrelay.tools"))
                 for p in files}
    assert {path: mods for path, mods in offending.items() if mods} == {}


def test_the_check_would_catch_a_lazy_import_of_a_tool(tmp_path):
    """Not vacuous: an import inside a function body is found too."""
    module = tmp_path / "lazy.py"
    module.write_text("def f():\n    from xrelay.tools.cli import stack\n    return stack\n")
    assert "xrelay.tools.cli.stack" in imported_modules(module)


def test_the_package_uses_absolute_imports_only():
    """One spelling of each module, so a search for `xrelay.storage.store` finds every user."""
    relative = [str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.py")
                if any(isinstance(n, ast.ImportFrom) and n.level for n in ast.walk(ast.parse(p.read_text())))]
    assert relative == []


def test_the_layer_copy_ships_the_runtime_only_and_it_imports(tmp_path):
    """`make -C layers/xrelay package` is the copy build-XrelayLayer makes: no tools, every runtime module loads."""
    subprocess.run(["make", "--no-print-directory", "-C", str(ROOT / "layers" / "xrelay"), "package",
                    f"DIR={tmp_path}"], check=True, capture_output=True, text=True)
    shipped = tmp_path / "xrelay"
    assert (shipped / "__init__.py").is_file() and not (shipped / "tools").exists()
    assert sorted(p.relative_to(shipped) for p in shipped.rglob("*.py")) == sorted(
        p.relative_to(PACKAGE) for p in runtime_files())
    code = ("import importlib, pkgutil, sys, xrelay\n"
            "assert xrelay.__file__.startswith(sys.argv[1]), xrelay.__file__\n"
            "names = [m.name for m in pkgutil.walk_packages(xrelay.__path__, 'xrelay.')]\n"
            "for name in names: importlib.import_module(name)\n"
            "print(len(names))")
    done = subprocess.run([sys.executable, "-c", code, str(shipped)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(tmp_path)}, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) >= len(runtime_files()) - 1  # every module (the top __init__ is the package)


# What each runtime folder may import of the others, as its __init__ says ("top" = the shared modules at
# the package's top). Imports run one way: receiving over recovery over subscriptions over storage over
# events. The one edge upward, credentials -> subscriptions.xapi, is lazy: the X client builds the token.
MAY_IMPORT = {
    "events": set(),
    "storage": {"top", "events"},
    "publishing": {"top", "events", "storage"},
    "subscriptions": {"top", "events", "storage"},
    "recovery": {"top", "events", "storage", "subscriptions"},
    "receiving": {"top", "events", "storage", "recovery"},
    "top": {"subscriptions"},
}


def folder_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and (PACKAGE / parts[1]).is_dir() else "top"


def test_each_runtime_folder_imports_only_what_its_docstring_allows():
    found: dict[str, set[str]] = {folder: set() for folder in MAY_IMPORT}
    for path in runtime_files():
        parts = path.relative_to(PACKAGE).parts
        here = parts[0] if len(parts) > 1 else "top"
        found[here] |= {folder_of(m) for m in imported_modules(path)
                        if m.startswith("xrelay.") and (PACKAGE / Path(*m.split(".")[1:])).with_suffix(".py").is_file()}
        found[here].discard(here)
    assert {f: sorted(d - MAY_IMPORT[f]) for f, d in found.items() if d - MAY_IMPORT[f]} == {}
    assert found["receiving"] and found["publishing"]  # the walk saw the imports
