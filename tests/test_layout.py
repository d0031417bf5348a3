"""The package's shape (README "Architecture"): layers, no import circles, small modules, and stage
names only where they belong. Reads the source with ``ast``; imports nothing of vidcap's."""
from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "vidcap"
MAX_LINES = 400

# layers, lowest first: a module imports only from its own layer or below; a feature imports no
# other feature (features meet in the registry, by name, and in the app layer)
CORE = ("", "errors", "env", "redact", "config", "prompts", "text", "camera_text", "gpu", "io", "media", "llm", "runners", "models", "stages")
FEATURES = ("probe", "caption", "clean", "motion", "shots", "tags", "judge", "scores")
APP = ("workflow", "gather", "merge", "summary", "status", "compare", "report", "export", "filter")
TOP = ("cli", "__main__", "dev")
LAYER = {**{m: 0 for m in CORE}, **{m: 1 for m in FEATURES}, **{m: 2 for m in APP}, **{m: 3 for m in TOP}}

# app modules that present one feature's results by design, and may name it (reviewed list)
STAGE_NAME_ALLOWED = {
    "judge/parse.py": "'scores' there is a key of the judge's JSON answer, not the scores stage",
}

# third-party libraries a function may import where it needs them: slow to import (measured with
# `python -X importtime`: torch about 4 s, transformers, accelerate, openai 1-3 s, matplotlib, scenedetect,
# decord, OpenCV, PyAV 0.1-0.9 s) or optional; everything else is imported at the top of the module
HEAVY = {"torch", "transformers", "vllm", "peft", "accelerate", "safetensors", "tokenizers", "matplotlib",
         "scenedetect", "decord", "openai", "av", "cv2", "PIL", "skimage",
         # optional: only in an extra (s3, scores) or the test environment, imported where used
         "fsspec", "s3fs", "botocore", "cheroot", "moto", "rapidocr_onnxruntime", "onnxruntime", "faiss", "webdataset"}
# modules whose function-local imports are not checked, with the reason (reviewed list)
LOCAL_IMPORTS_ALLOWED = {
}


def modules() -> dict[str, Path]:
    out = {}
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(["vidcap", *parts])] = path
    return out


@functools.cache
def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """vidcap modules ``name`` imports, at the top or inside a function (both can make a circle)."""
    tree = parse(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        if isinstance(node, ast.ImportFrom) and node.module is None and not node.level:
            continue
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name and t.startswith("vidcap"):
                out.add(t)
    return out


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {m: imports_of(m, p, known) for m, p in mods.items()}


def top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_no_import_circles():
    g = graph()
    # a package's __init__ importing its own submodules is not a circle of concerns
    edges = {m: {t for t in ts if not (t.startswith(m + ".") and modules()[m].name == "__init__.py")} for m, ts in g.items()}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for t in sorted(edges.get(m, ())):
            if state.get(t) == 1:
                cycles.append(stack[stack.index(t):] + [t])
            elif not state.get(t):
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if not state.get(m):
            visit(m)
    assert not cycles, "import circles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_layers_only_import_downwards():
    bad = []
    for m, targets in graph().items():
        src = top(m)
        if src not in LAYER:
            bad.append(f"{m}: not in a layer (tests/test_layout.py LAYER)")
            continue
        for t in targets:
            dst = top(t)
            if dst == src or not dst:
                continue
            if LAYER[dst] > LAYER[src] or (LAYER[src] == LAYER[dst] == 1):
                bad.append(f"{m} imports {t}")
    assert not bad, "imports against the layering (core < features < app < cli/dev):\n" + "\n".join(sorted(bad))


def test_no_module_over_the_size_limit():
    big = {str(p.relative_to(ROOT)): n for p in PKG.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not big, f"modules over {MAX_LINES} lines: {big}"


def _registry():
    from vidcap.stages import REGISTRY

    return REGISTRY


def test_stage_names_live_with_their_stage():
    """A stage's name appears as a string only in the registry, its own package, the packages of the
    stages that read it (their registry ``reads``) and tests; plus the reviewed allow-list above."""
    specs = _registry()
    names = {s.name for s in specs}
    readers = {n: {s.name for s in specs if n in s.reads} for n in names}
    literal = re.compile("[\"'](" + "|".join(sorted(names)) + ")[\"']")
    bad = []
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG)
        if rel.parts[0] == "stages" and path.name == "__init__.py" or rel.parts[0] == "dev":
            continue
        if str(rel) in STAGE_NAME_ALLOWED or f"{rel.parts[0]}/" in STAGE_NAME_ALLOWED:
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            for m in literal.finditer(line):
                stage = m.group(1)
                home = rel.parts[0]
                if home == stage or home in readers[stage]:
                    continue
                bad.append(f"vidcap/{rel}:{i}: {line.strip()}")
    for rules in [ROOT / "Snakefile", *(ROOT / "rules").glob("*.smk")]:
        for i, line in enumerate(rules.read_text().splitlines(), 1):
            if literal.search(line):
                bad.append(f"{rules.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not bad, "stage names outside their home:\n" + "\n".join(bad)


def _local_imports(tree: ast.Module):
    seen = {}
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    seen[node.lineno] = node
    return list(seen.values())


def _imported(node: ast.Import | ast.ImportFrom) -> list[str]:
    return [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]


def test_function_local_imports_only_for_heavy_libraries():
    """A function imports only a ``HEAVY`` library, or a vidcap module that imports one at its top,
    and says why in a comment on the line or above the imports; all else goes at the top of the
    module (where the circle test and a reader see it)."""
    mods = modules()
    trees = {m: parse(p) for m, p in mods.items()}
    heavy_mods = {m for m, tree in trees.items()
                  if any(n.split(".")[0] in HEAVY for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))
                         for n in _imported(node))}
    bad = []
    for m, path in mods.items():
        rel = str(path.relative_to(PKG))
        if rel in LOCAL_IMPORTS_ALLOWED:
            continue
        lines = path.read_text().splitlines()
        nodes = _local_imports(trees[m])
        covered = {i for n in nodes for i in range(n.lineno, n.end_lineno + 1)}
        for node in nodes:
            where = f"vidcap/{rel}:{node.lineno}: {lines[node.lineno - 1].strip()}"
            for name in _imported(node):
                if name.startswith("vidcap"):
                    if name not in heavy_mods:
                        bad.append(f"{where} (a vidcap module: import it at the top)")
                elif name.split(".")[0] not in HEAVY:
                    bad.append(f"{where} (not a heavy library: import it at the top)")
            above = node.lineno - 1
            while above in covered:
                above -= 1
            if "#" not in lines[node.lineno - 1] and not (above >= 1 and lines[above - 1].strip().startswith("#")):
                bad.append(f"{where} (say why in a comment)")
    assert not bad, "function-local imports:\n" + "\n".join(bad)


@pytest.mark.parametrize("spec", _registry(), ids=lambda s: s.name)
def test_every_stage_lives_in_its_package(spec):
    module = spec.target.partition(":")[0]
    assert module == f"vidcap.{spec.name}.stage", "a stage's class lives in vidcap/<stage>/stage.py"
    if spec.plan:
        assert spec.plan.partition(":")[0] == f"vidcap.{spec.name}.plan"
    if spec.command:
        assert spec.command.startswith(f"vidcap.{spec.name}."), "a stage's own command lives in its package"
