"""The layering of ``metal`` (see ``metal/ARCHITECTURE.md``): no import cycles
between its modules, and no ``metal`` import hidden inside a function."""

import ast
import os
import unittest
from collections import defaultdict
from typing import Dict, List, Set

import metal

PACKAGE_DIR = os.path.dirname(os.path.abspath(metal.__file__))


def _modules() -> Dict[str, str]:
    """``{module name: file path}`` of every module of ``metal`` but contrib."""
    found = {}
    root = os.path.dirname(PACKAGE_DIR)
    for folder, _, files in os.walk(PACKAGE_DIR):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            module = os.path.relpath(path, root)[:-3].replace(os.sep, ".")
            if module.endswith(".__init__"):
                module = module[: -len(".__init__")]
            if not module.startswith("metal.contrib"):
                found[module] = path
    return found


def _imported(node: ast.AST, module: str, is_package: bool) -> List[str]:
    """The module names an import statement refers to."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        parts = module.split(".")
        parts = parts if is_package else parts[:-1]
        parts = parts[: len(parts) - (node.level - 1)]
        base = ".".join(parts + ([node.module] if node.module else []))
    return [base] + [f"{base}.{alias.name}" for alias in node.names]


def _import_graph():
    """Edges between metal modules from every import statement, at any depth,
    and the imports of metal modules that sit inside functions."""
    modules = _modules()
    graph: Dict[str, Set[str]] = defaultdict(set)
    nested: List[str] = []
    for module, path in modules.items():
        with open(path) as f:
            tree = ast.parse(f.read())
        is_package = path.endswith("__init__.py")
        functions = [
            n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.Lambda))
        ]
        inside = {
            id(sub)
            for function in functions
            for sub in ast.walk(function)
            if isinstance(sub, (ast.Import, ast.ImportFrom))
        }
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            targets = [t for t in _imported(node, module, is_package) if t in modules]
            for target in targets:
                if target != module:
                    graph[module].add(target)
            if targets and id(node) in inside:
                nested.append(f"{module} (line {node.lineno}) imports {targets}")
    return modules, graph, nested


def _cycles(nodes, graph) -> List[List[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    components: List[List[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(nodes):
        if node not in index:
            visit(node)
    return components


class ImportStructureTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.modules, cls.graph, cls.nested = _import_graph()

    def test_the_graph_is_read(self):
        self.assertIn("metal.engine", self.graph["metal.run"])
        self.assertIn("metal.callbacks", self.graph["metal.engine"])
        self.assertGreater(len(self.modules), 60)

    def test_no_import_cycles(self):
        self.assertEqual(_cycles(self.modules, self.graph), [])

    def test_no_metal_import_inside_functions(self):
        self.assertEqual(self.nested, [])

    def test_the_cycle_finder_finds_cycles(self):
        graph = defaultdict(set, {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}})
        self.assertEqual(_cycles(["a", "b", "c", "d"], graph), [["a", "b", "c"]])

    def test_lower_layers_do_not_import_higher_ones(self):
        foundations = [
            "metal._checks",
            "metal._data",
            "metal._io",
            "metal.labels",
            "metal.metrics",
            "metal.callbacks",
            "metal.utils",
        ]
        higher = {"metal.engine", "metal.run", "metal.training", "metal.classifier"}
        for module in foundations:
            self.assertFalse(self.graph[module] & higher, module)
        self.assertFalse(
            {m for m in self.graph["metal.engine"] if m.startswith("metal.logging")}
        )
        self.assertNotIn("metal.training", self.graph["metal.classifier"])


if __name__ == "__main__":
    unittest.main()
