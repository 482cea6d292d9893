"""The import graph of the lab's code (olelo/ and scripts/) has no cycle, the
scripts import the library and never each other (a script's main() nor its internals), the
tests import olelo and never a script or a benchmark (a script's command line is run as a
subprocess), and no file edits sys.path: the editable install (make setup) makes
`import olelo` work everywhere.

    .venv/bin/python tests/test_imports.py     prints the graph (module -> what it imports)
"""

from __future__ import annotations

import ast
import configparser
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# convert_gguf imports the gguf package from a wheel (a zip) it finds itself.
# convert_gguf.py imports `gguf` from a wheel; llama_check.py imports llama.cpp's bindings
# from the folder make llama-runtime installs them into (outside .venv, see README).
SYS_PATH_ALLOWED = {"scripts/convert_gguf.py", "olelo/llama_check.py"}


def module_name(path: Path, root: Path) -> str:
    """olelo/x.py -> olelo.x, olelo/__init__.py -> olelo, scripts/x.py -> scripts/x"""
    rel = path.relative_to(root)
    if rel.parts[0] == "olelo":
        return "olelo" if rel.stem == "__init__" else f"olelo.{rel.stem}"
    return f"{rel.parts[0]}/{rel.stem}"


def imports_of(path: Path, root: Path, nodes: set[str]) -> set[str]:
    """The lab modules a file imports, at the top or inside a function (a lazy import
    is still an edge: it runs whenever that function does)."""
    found = set()
    script_dir = path.parent.relative_to(root).as_posix()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from olelo import trainer` imports the submodule olelo.trainer
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            if name in nodes:
                found.add(name)
            elif f"{script_dir}/{name}" in nodes:  # a script imports a file beside it
                found.add(f"{script_dir}/{name}")
    found.discard(module_name(path, root))
    return found


def import_graph(root: Path = REPO, folders=("olelo", "scripts")) -> dict[str, set[str]]:
    files = [p for f in folders for p in sorted((root / f).glob("*.py"))]
    nodes = {module_name(p, root) for p in files}
    return {module_name(p, root): imports_of(p, root, nodes) for p in files}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None."""
    state = {}  # 1: on the current path, 2: done

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
            if nxt not in state:
                cycle = visit(nxt, path + [nxt])
                if cycle:
                    return cycle
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start, [start])
            if cycle:
                return cycle
    return None


def show(graph: dict[str, set[str]]) -> str:
    return "\n".join(f"{m} -> {', '.join(sorted(deps)) or '(none)'}" for m, deps in sorted(graph.items()))


def test_the_lab_has_no_import_cycle():
    graph = import_graph()
    assert "olelo.trainer" in graph and "scripts/train" in graph  # the walk found the code
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle) + "\n" + show(graph)


def test_the_cycle_finder_finds_cycles_lazy_imports_included(tmp_path):
    (tmp_path / "olelo").mkdir()
    (tmp_path / "scripts").mkdir()
    (tmp_path / "olelo" / "__init__.py").write_text("")
    (tmp_path / "olelo" / "a.py").write_text("from olelo import b\n")
    (tmp_path / "olelo" / "b.py").write_text("def f():\n    from olelo.c import g\n")
    (tmp_path / "olelo" / "c.py").write_text("import olelo.a\n")
    (tmp_path / "scripts" / "s.py").write_text("import t\nimport olelo\n")
    (tmp_path / "scripts" / "t.py").write_text("def main():\n    import s\n")
    graph = import_graph(tmp_path)
    assert graph["olelo.a"] == {"olelo", "olelo.b"} and graph["scripts/s"] == {"scripts/t", "olelo"}
    assert find_cycle(graph) == ["olelo.a", "olelo.b", "olelo.c", "olelo.a"]
    (tmp_path / "olelo" / "c.py").write_text("")
    assert find_cycle(import_graph(tmp_path)) == ["scripts/s", "scripts/t", "scripts/s"]
    (tmp_path / "scripts" / "t.py").write_text("")
    assert find_cycle(import_graph(tmp_path)) is None


def test_the_library_never_imports_a_script():
    graph = import_graph()
    bad = {m: sorted(d for d in deps if d.startswith("scripts/")) for m, deps in graph.items() if m.startswith("olelo")}
    assert not {m: d for m, d in bad.items() if d}, bad


def test_no_script_imports_another_script():
    # A script calls the library (olelo/), never another script's main() and the text it
    # prints (launch.py's BATCH=auto: olelo.auto_batch.pick returns the choice).
    graph = import_graph()
    bad = {m: sorted(d for d in deps if d.startswith("scripts/")) for m, deps in graph.items() if m.startswith("scripts/")}
    assert not {m: d for m, d in bad.items() if d}, bad


def test_no_file_edits_sys_path():
    edits = re.compile(r"sys\.path\.(insert|append|extend)|sys\.path\s*\+?=")
    offenders = []
    for folder in ("olelo", "scripts", "tests", "bench"):
        for path in sorted((REPO / folder).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            if rel in SYS_PATH_ALLOWED or rel == "tests/test_imports.py":
                continue
            offenders += [f"{rel}:{n}" for n, line in enumerate(path.read_text().splitlines(), 1)
                          if edits.search(line) and not line.lstrip().startswith("#")]
    assert not offenders, offenders


# ---------------------------------------------------------------- what the tests import

# Calls that load a file as a module in the test's own process: a script imported in disguise.
LOADERS = {"run_path", "run_module", "import_module", "spec_from_file_location", "SourceFileLoader", "__import__"}


def script_modules(root: Path = REPO) -> set[str]:
    """The names the files of scripts/ and bench/ (bench/campaigns/ too) would import as, were
    their folders on sys.path."""
    return {p.stem for folder in ("scripts", "bench") for p in (root / folder).rglob("*.py")}


def imports_in_tests(tests: Path) -> list[tuple[str, int, str]]:
    """(file, line, top-level name) of every absolute import in tests/*.py, lazy ones too,
    and (file, line, "name()") of every call that loads a module from a path or a name."""
    found = []
    for path in sorted(tests.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Call):
                f = node.func
                name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
                if name in LOADERS:
                    found.append((path.name, node.lineno, f"{name}()"))
            found += [(path.name, node.lineno, n.split(".")[0]) for n in names]
    return sorted(found)


def not_library_imports(root: Path = REPO) -> list[str]:
    """Imports in tests/ of anything but olelo, the standard library, an installed package or
    the tests' own files (conftest, tests/fixtures/): a script or benchmark module, or a module
    loaded by hand."""
    scripts, tests = script_modules(root), root / "tests"
    test_files = {p.stem for p in tests.glob("*.py")} | {p.name for p in tests.iterdir() if p.is_dir()}
    installed = set(packages_distributions())
    bad = []
    for name, line, what in imports_in_tests(tests):
        known = what == "olelo" or what in sys.stdlib_module_names or what in installed or what in test_files
        if what in scripts or what.endswith("()") or not known:
            bad.append(f"tests/{name}:{line}: {what}")
    return bad


def test_tests_import_olelo_never_a_script():
    # A script's logic is reached through olelo/, its command line through a subprocess
    # ([sys.executable, "scripts/x.py", ...]); scripts/ and bench/ are not on the path.
    assert not_library_imports() == []


def test_the_test_import_check_finds_scripts_lazy_imports_and_loaders(tmp_path):
    for folder in ("scripts", "bench/campaigns", "tests"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "scripts" / "split.py").write_text("")
    (tmp_path / "bench" / "campaigns" / "compare_runs.py").write_text("")
    (tmp_path / "tests" / "conftest.py").write_text("")
    (tmp_path / "tests" / "test_ok.py").write_text(
        "import json, os.path\nimport numpy as np\nimport olelo\nfrom olelo.data import pair_id\n"
        "from conftest import REPO\nPATCH = 'runpy.run_path(sys.argv[0])'  # text a subprocess runs\n")
    assert not_library_imports(tmp_path) == []
    (tmp_path / "tests" / "test_bad.py").write_text(
        "import split\ndef f():\n    from compare_runs import t_sf\n"
        "    import runpy\n    runpy.run_path('scripts/split.py')\n    import not_installed_anywhere\n")
    assert not_library_imports(tmp_path) == ["tests/test_bad.py:1: split", "tests/test_bad.py:3: compare_runs",
                                             "tests/test_bad.py:5: run_path()",
                                             "tests/test_bad.py:6: not_installed_anywhere"]


def test_pytest_puts_no_script_folder_on_the_path():
    ini = configparser.ConfigParser()
    ini.read(REPO / "pytest.ini")
    assert not ini.has_option("pytest", "pythonpath"), "tests import olelo; scripts run as subprocesses"
    folders = {REPO / "scripts", REPO / "bench", REPO / "bench" / "campaigns"}
    assert not [p for p in sys.path if p and Path(p).resolve() in folders]


if __name__ == "__main__":
    graph = import_graph()
    print(show(graph))
    cycle = find_cycle(graph)
    print("cycle: " + " -> ".join(cycle) if cycle else "no cycle")
    sys.exit(1 if cycle else 0)
