"""The library's layout rules, read from the source with `ast` (every import counts, those inside functions too):
one package per stage in the pipeline's order, a few shared modules that import no stage, no import cycles."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

LIBRARY = Path(__file__).resolve().parent.parent / "culturalign"
# Written by hand: the pipeline's order (rules/*.smk). A module may import its own stage and earlier ones.
STAGES = ["data", "train", "evaluate", "loop", "report"]
PLUMBING = {"io", "llm", "util", "hf"}   # shared modules: they import no stage


def module_name(path: Path) -> str:
    parts = path.relative_to(LIBRARY.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(LIBRARY.rglob("*.py"))}


def imports(path: Path) -> set[str]:
    """The culturalign modules `path` imports (a name imported from a package counts as its submodule
    when there is one: `from culturalign.data import clean` is culturalign.data.clean)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import; the library imports by full name"
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module
                     for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found |= {n for n in names if n == "culturalign" or n.startswith("culturalign.")}
    return found


GRAPH = {name: imports(path) for name, path in MODULES.items()}


def place(module: str) -> str:
    """'plumbing', a stage name, or 'root' (the package's own __init__)."""
    parts = module.split(".")
    if len(parts) == 1:
        return "root"
    return "plumbing" if parts[1] in PLUMBING else parts[1]


def test_top_level_holds_the_plumbing_and_one_package_per_stage():
    top = {p.stem for p in LIBRARY.glob("*.py") if p.stem != "__init__"}
    packages = {p.name for p in LIBRARY.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert top == PLUMBING and len(top) <= 6
    assert packages == set(STAGES)


@pytest.mark.parametrize("stage", STAGES)
def test_stage_init_is_a_docstring_only(stage):
    body = ast.parse((LIBRARY / stage / "__init__.py").read_text(encoding="utf-8")).body
    assert len(body) == 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant), stage


def test_no_module_imports_a_later_stage_and_plumbing_imports_no_stage():
    wrong = []
    for module, targets in GRAPH.items():
        here = place(module)
        for target in sorted(targets):
            there = place(target)
            if there == "root":
                continue   # `from culturalign import io`: resolved to culturalign.io above when it is one
            if here == "plumbing" and there != "plumbing":
                wrong.append(f"{module} (plumbing) imports {target} (stage {there})")
            elif here in STAGES and there in STAGES and STAGES.index(there) > STAGES.index(here):
                wrong.append(f"{module} (stage {here}) imports {target} (later stage {there})")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles():
    done, path = set(), []

    def visit(module: str) -> None:
        if module in path:
            raise AssertionError("import cycle: " + " -> ".join(path[path.index(module):] + [module]))
        if module in done:
            return
        path.append(module)
        for target in sorted(GRAPH.get(module, ())):
            visit(target)
        path.pop()
        done.add(module)

    for module in GRAPH:
        visit(module)
