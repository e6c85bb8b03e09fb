"""The package layers: imports point down only, no module imports itself in a circle, and
the protocol loads without torch.

The ranks below are the layout of docs/architecture.md. A module may import its own
package and packages of a lower rank; two packages of the same rank never import each
other (``eval`` and ``train``, ``apps`` and ``sim``). Imports under ``if TYPE_CHECKING:``
count for both (an annotation is a dependency too)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RANKS = {
    "hfstream.geometry": 0,
    "hfstream.extras": 0,
    "hfstream.arguments": 0,
    "hfstream.protocol": 1,
    "hfstream.codec": 2,
    "hfstream.transports": 2,
    "hfstream.files": 3,
    "hfstream.media": 3,
    "hfstream.planning": 3,
    "hfstream.stream": 4,
    "hfstream": 4.5,  # the package's own lazy public API, over codec, stream and protocol
    "hfstream.eval": 5,
    "hfstream.train": 5,
    "hfstream.apps": 6,
    "hfstream.__main__": 7,  # `python -m hfstream` runs the CLI
    "sim": 6,
}


def layer(module: str) -> str:
    """The layer ``module`` belongs to: the longest prefix in ``RANKS``."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        name = ".".join(parts[:n])
        if name in RANKS:
            return name
    raise AssertionError(f"{module} belongs to no layer: add its package to RANKS")


def modules() -> dict[str, Path]:
    out = {}
    for top in ("hfstream", "sim"):
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def imports(path: Path) -> list[tuple[str, bool]]:
    """(module imported, only for type checking) for every hfstream or sim import in the
    file, at any depth (imports inside functions count)."""
    out: list[tuple[str, bool]] = []

    def visit(node: ast.AST, typing_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = typing_only or (isinstance(child, ast.If) and _type_checking(child))
            if isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                names = [child.module]
                # ``from hfstream.files import container`` imports a submodule.
                names += [f"{child.module}.{a.name}" for a in child.names]
                out.extend((n, typing_only) for n in names)
            elif isinstance(child, ast.Import):
                out.extend((a.name, typing_only) for a in child.names)
            visit(child, inner)

    visit(ast.parse(path.read_text()), False)
    return [(m, t) for m, t in out if m.split(".")[0] in ("hfstream", "sim")]


def test_every_import_points_down() -> None:
    known = modules()
    wrong = []
    for module, path in known.items():
        own = layer(module)
        for target, _ in imports(path):
            if target not in known and target.rsplit(".", 1)[0] not in known:
                continue
            there = layer(target)
            if there != own and RANKS[there] >= RANKS[own]:
                wrong.append(f"{module} imports {target} ({own} -> {there})")
    assert not wrong, "imports that point up or sideways:\n" + "\n".join(sorted(set(wrong)))


def test_no_import_cycle() -> None:
    known = modules()
    graph: dict[str, set[str]] = {}
    for module, path in known.items():
        edges = set()
        for target, _ in imports(path):
            name = target if target in known else target.rsplit(".", 1)[0]
            # A package's __init__ re-exporting its own modules is no cycle of behaviour.
            if name in known and name != module and not name.startswith(module + "."):
                edges.add(name)
        graph[module] = edges
    # Tarjan's strongly connected components: any with two or more modules is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in graph:
        if v not in index:
            connect(v)
    assert not cycles, f"import cycles: {cycles}"


def test_the_layer_check_catches_an_upward_import() -> None:
    assert layer("hfstream.codec.hybrid") == "hfstream.codec"
    assert layer("hfstream.stream.sender") == "hfstream.stream"
    assert RANKS[layer("hfstream.stream.sender")] > RANKS[layer("hfstream.codec.hybrid")]
    with pytest.raises(AssertionError, match="belongs to no layer"):
        layer("elsewhere.module")


NO_TORCH = """
import importlib, pkgutil, sys
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision", "compressai"):
            raise ImportError(f"{name} is refused in this test")
sys.meta_path.insert(0, Refuse())
import hfstream.protocol
import hfstream.geometry
for info in pkgutil.iter_modules(hfstream.protocol.__path__, "hfstream.protocol."):
    importlib.import_module(info.name)
import hfstream.codec.encoded, hfstream.codec.schedules
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "compressai"))
assert not loaded, loaded
print("ok")
"""


def test_protocol_imports_without_torch() -> None:
    result = subprocess.run(
        [sys.executable, "-c", NO_TORCH], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


MAX_MODULE_LINES = 500
MAX_POSITIONAL = 4


def test_no_module_is_over_500_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in (ROOT / "hfstream").rglob("*.py")
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def _public_functions(tree: ast.Module) -> list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    out = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out.append((node.name, node))
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    out.append((f"{node.name}.{item.name}", item))
    return [
        (n, f) for n, f in out if not n.split(".")[-1].startswith("_") or n.endswith("__init__")
    ]


def test_no_public_function_takes_more_than_four_positional_parameters() -> None:
    wide = []
    for path in sorted((ROOT / "hfstream").rglob("*.py")):
        for name, fn in _public_functions(ast.parse(path.read_text())):
            positional = [a.arg for a in fn.args.posonlyargs + fn.args.args]
            if positional and positional[0] in ("self", "cls"):
                positional = positional[1:]
            if len(positional) > MAX_POSITIONAL:
                wide.append(f"{path.relative_to(ROOT)}: {name} ({len(positional)})")
    assert not wide, "public functions with more than four positional parameters:\n" + "\n".join(
        wide
    )
