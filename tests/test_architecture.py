"""The project's import rules, read from the source with `ast` (nothing is imported to check them).

1. A private module or name (a dotted path with a component starting with "_", such as
   `pipeline._io` or `from pipeline.fairness import _helper`) is imported only from inside
   the package that holds it, its subpackages included (the rule Go applies to `internal/`).
   Every other package goes through the public `__init__`, which re-exports what it offers,
   so a private module can be split, merged or renamed without editing another package.
2. No import cycle among the project's modules, counting imports inside functions,
   `importlib.import_module("literal")` calls and the submodules a package's
   `lazy_getattr` map loads: a cycle hidden in a deferred import still ties two modules
   together, so neither can be read, tested or moved without the other.
3. One lazy-import mechanism: packages set `__getattr__ = lazy_getattr(...)` from
   `pipeline`; no module writes its own module-level `__getattr__` function.
4. `pipeline.constants`, which reports, notices and the command-line help read, imports no torch.
5. No module copies a name of the active schema at import (`X = S.FEATURES`, or
   `from pipeline.schema import FEATURES`): `pipeline.schema.activate` rebinds them when a
   run uses another schema file, and a copy would keep auditing the old columns.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "reports", "review", "flows")
LAZY_HOME = "pipeline._lazy"


@dataclass(frozen=True)
class Import:
    importer: str  # module that imports
    target: str  # absolute dotted path of the module or module.name imported
    module: str  # the project module the import loads (for the cycle check)
    line: int


def project_modules(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package `__init__`), for every .py file under the packages."""
    out = {}
    for pkg in packages:
        for f in sorted((root / pkg).rglob("*.py")):
            parts = list(f.relative_to(root).with_suffix("").parts)
            is_pkg = parts[-1] == "__init__"
            out[".".join(parts[:-1] if is_pkg else parts)] = (f, is_pkg)
    return out


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    base = package.split(".")[: len(package.split(".")) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _resolve(relative: str, package: str) -> str:
    """`.x` / `..x` (as `import_module(name, package)` reads them) -> an absolute dotted name."""
    level = len(relative) - len(relative.lstrip("."))
    if not level:
        return relative
    base = package.split(".")[: len(package.split(".")) - level + 1]
    return ".".join(base + [relative[level:]])


def _lazy_targets(tree: ast.Module) -> Iterator[tuple[str, int]]:
    """The submodules named in `__getattr__ = lazy_getattr(__name__, MAP)`, MAP a module-level dict literal."""
    maps = {t.id: n.value for n in tree.body if isinstance(n, ast.Assign) and isinstance(n.value, ast.Dict)
            for t in n.targets if isinstance(t, ast.Name)}
    for n in tree.body:
        if (isinstance(n, ast.Assign) and isinstance(n.value, ast.Call) and isinstance(n.value.func, ast.Name)
                and n.value.func.id == "lazy_getattr" and len(n.value.args) == 2
                and isinstance(n.value.args[1], ast.Name) and n.value.args[1].id in maps):
            for v in maps[n.value.args[1].id].values:
                if isinstance(v, ast.Constant) and isinstance(v.value, str):
                    yield v.value, v.lineno


def _dynamic_target(node: ast.AST) -> str | None:
    """The module of `importlib.import_module("literal")` / `import_module("literal")`, else None."""
    if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)):
        return None
    f = node.func
    named = (isinstance(f, ast.Attribute) and f.attr == "import_module") or (isinstance(f, ast.Name)
                                                                             and f.id == "import_module")
    return node.args[0].value if named and isinstance(node.args[0].value, str) and len(node.args) == 1 else None


def imports(modules: dict[str, tuple[Path, bool]], roots: tuple[str, ...] = PACKAGES) -> Iterator[Import]:
    """Every import of a project module, at any depth of the source (functions included)."""
    for name, (path, is_pkg) in modules.items():
        package = name if is_pkg else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(), filename=str(path))
        for relative, line in _lazy_targets(tree):
            target = _resolve(relative, package)
            yield Import(name, target, target, line)
        for node in ast.walk(tree):
            dynamic = _dynamic_target(node)
            if dynamic is not None and dynamic.split(".")[0] in roots:
                yield Import(name, dynamic, dynamic, node.lineno)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] in roots:
                        yield Import(name, alias.name, alias.name, node.lineno)
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(node, package)
                if base.split(".")[0] not in roots:
                    continue
                for alias in node.names:
                    target = f"{base}.{alias.name}"
                    yield Import(name, target, target if target in modules else base, node.lineno)


def _scope(target: str, modules: dict[str, tuple[Path, bool]]) -> str | None:
    """The package a private target belongs to, or None when nothing on its path is private."""
    parts = target.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            holder = ".".join(parts[:i])
            if holder in modules and not modules[holder][1]:  # a private name of a plain module
                return holder.rpartition(".")[0]
            return holder
    return None


def private_imports(modules: dict[str, tuple[Path, bool]], roots: tuple[str, ...] = PACKAGES) -> list[str]:
    bad = []
    for imp in imports(modules, roots):
        scope = _scope(imp.target, modules)
        if scope is not None and not (imp.importer == scope or imp.importer.startswith(scope + ".")):
            bad.append(f"{imp.importer} (line {imp.line}) imports {imp.target}, private to {scope}")
    return bad


def cycles(modules: dict[str, tuple[Path, bool]], roots: tuple[str, ...] = PACKAGES) -> list[list[str]]:
    """Strongly connected components of more than one module (or a module importing itself)."""
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for imp in imports(modules, roots):
        if imp.module in modules:
            graph[imp.importer].add(imp.module)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:  # Tarjan; the project's import depth is far below the recursion limit
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph[v]:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def own_lazy_loaders(modules: dict[str, tuple[Path, bool]]) -> list[str]:
    """Modules other than pipeline._lazy that define a module-level `__getattr__` function."""
    return [name for name, (path, _) in modules.items() if name != LAZY_HOME
            and any(isinstance(n, ast.FunctionDef) and n.name == "__getattr__" for n in ast.parse(path.read_text()).body)]


# ---- the rules, on the project ------------------------------------------------------------------
def test_no_private_module_or_name_is_imported_from_another_package():
    assert private_imports(project_modules(REPO)) == []


def test_no_import_cycle_among_the_project_modules():
    assert cycles(project_modules(REPO)) == []


def test_one_lazy_import_mechanism():
    modules = project_modules(REPO)
    assert LAZY_HOME in modules
    assert own_lazy_loaders(modules) == []


def test_constants_import_no_torch():
    probe = "import sys, pipeline.constants; print(sorted({'torch', 'pandas', 'numpy'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---- the checks find what they look for ---------------------------------------------------------
def _tree(root: Path, files: dict[str, str]) -> dict[str, tuple[Path, bool]]:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return project_modules(root, ("a", "b"))


def test_checks_catch_a_private_import_a_hidden_cycle_and_a_second_lazy_loader(tmp_path):
    modules = _tree(tmp_path, {
        "a/__init__.py": "from ._x import f\n",
        "a/_x.py": "def f():\n    from ._y import g\n",  # function-level: still a cycle
        "a/_y.py": "from ._x import f\nfrom .sub import _helper\n",
        "a/sub/__init__.py": "_helper = 1\n\n\ndef __getattr__(name):\n    raise AttributeError(name)\n",
        "b/__init__.py": "from a._x import f\nfrom a import f as g\nfrom a.sub import _helper\n",
        "b/c.py": "import importlib\n\n\ndef load():\n    return importlib.import_module('b._d')\n",
        "b/_d.py": "from pipeline import lazy_getattr\n\n_LAZY = {'x': '.e'}\n__getattr__ = lazy_getattr(__name__, _LAZY)\n",
        "b/e.py": "from . import c\n",
    })
    assert private_imports(modules, ("a", "b")) == [
        "a._y (line 2) imports a.sub._helper, private to a.sub",
        "b (line 1) imports a._x.f, private to a",
        "b (line 3) imports a.sub._helper, private to a.sub",
    ]
    assert cycles(modules, ("a", "b")) == [["a._x", "a._y"], ["b._d", "b.c", "b.e"]]
    assert own_lazy_loaders(modules) == ["a.sub"]


SCHEMA_MODULE = "pipeline.schema"


def _active_names(modules: dict[str, tuple[Path, bool]]) -> set[str]:
    """The names `activate` rebinds: those `pipeline/schema.py` declares as `NAME: type = _DEFAULT["NAME"]`."""
    tree = ast.parse(modules[SCHEMA_MODULE][0].read_text())
    return {n.target.id for n in tree.body
            if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name) and isinstance(n.value, ast.Subscript)
            and isinstance(n.value.value, ast.Name) and n.value.value.id == "_DEFAULT"}


def schema_copies(root: Path) -> list[str]:
    """`file:line` of each module-level statement that copies a name of the active schema."""
    found = []
    modules = project_modules(root)
    active = _active_names(modules)
    for name, (path, is_pkg) in modules.items():
        if name == SCHEMA_MODULE:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in tree.body:
            if isinstance(node, ast.ImportFrom):
                target = _absolute(node, name if is_pkg else name.rpartition(".")[0])
                if target == SCHEMA_MODULE and any(a.name in active for a in node.names):
                    found.append(f"{path.name}:{node.lineno}")
            elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                if any(isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "S"
                       and n.attr in active for n in ast.walk(node.value)):
                    found.append(f"{path.name}:{node.lineno}")
    return found


def test_no_module_copies_a_name_of_the_active_schema_at_import():
    assert schema_copies(REPO) == []


def test_the_schema_copy_check_catches_both_forms(tmp_path):
    pkg = tmp_path / "pipeline"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "schema.py").write_text("SEP = ' x '\n_DEFAULT = {'FEATURES': ()}\nFEATURES: tuple = _DEFAULT['FEATURES']\n")
    (pkg / "a.py").write_text("from . import schema as S\nNAMES = tuple(f for f in S.FEATURES)\n")
    (pkg / "b.py").write_text("from .schema import FEATURES\n")
    (pkg / "c.py").write_text("from . import schema as S\nSEP = S.SEP\ndef names():\n    return S.FEATURES\n")
    assert sorted(schema_copies(tmp_path)) == ["a.py:2", "b.py:1"]


def uci_names_in_code(root: Path) -> list[str]:
    """`file:line name` of each string in the code (docstrings aside) that names a column of the UCI data.

    Every other module reads columns through the active schema, so a lender's data with other columns
    is audited by the same code; a name written in the code would audit the UCI layout only.
    """
    from pipeline.schema_file import shipped_schema

    spec = shipped_schema()
    names = {f.name for f in spec.features} | {a for f in spec.features for a in f.aliases} | {spec.label.column}
    found = []
    for _, (path, _) in project_modules(root).items():
        tree = ast.parse(path.read_text())
        docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                      if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                      and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        for n in ast.walk(tree):
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings:
                words = set(re.split(r"[^A-Za-z0-9_.]+", n.value))
                found += [f"{path.name}:{n.lineno} {name}" for name in sorted(names & words)]
    return found


def test_no_column_name_of_the_uci_data_is_written_in_the_code():
    assert uci_names_in_code(REPO) == []
