"""The import direction of docs/architecture.md, checked: every module has a layer, and imports
point to its own layer or lower ones, with the flow rules on top."""

from __future__ import annotations

import ast
from pathlib import Path

import celery_pyncette

PACKAGE = Path(celery_pyncette.__file__).parent

#: Layer of each top-level unit (a module, or a package as a whole); see docs/architecture.md.
LAYERS: dict[str, int] = {
    **dict.fromkeys(
        [
            "errors",
            "_ids",
            "_logs",
            "_task_logger",
            "_bounds",
            "_asyncio_bridge",
            "_timers",
            "_spelling",
        ],
        0,
    ),
    **dict.fromkeys(
        [
            "stores.base",
            "schedules",
            "_records",
            "_names",
            "_strike_values",
            "metrics",
            "signals",
            "_events",
            "_tracing",
        ],
        1,
    ),
    "stores": 2,
    **dict.fromkeys(
        [
            "_definitions",
            "_options",
            "_window_options",
            "_concurrency",
            "_occurrence",
            "_state",
            "_clock",
            "_partitions",
            "_registry",
            "_quarantine",
            "_routing",
            "_lookup",
            "_strikes",
            "_config",
            "_fixtures",
            "_catalog",
            "_misfire",
            "_backfill",
            "_extras",
            "_runs",
        ],
        3,
    ),
    "_runtime": 4,
    **dict.fromkeys(
        [
            "_context",
            "_heartbeat",
            "_publish",
            "_queue_wait",
            "_dispatch",
            "_health",
            "_health_server",
            "worker",
        ],
        5,
    ),
    **dict.fromkeys(["beat", "_declare", "_instances", "_run_now", "_extension"], 6),
    **dict.fromkeys(["_overview", "_read_model", "cli", "dashboard", "importers", "testing"], 7),
    "": 8,  # celery_pyncette/__init__.py
}

#: Pairs of units that must not import each other, whatever their layers.
APART = [("_dispatch", "worker"), ("_publish", "worker"), ("beat", "worker")]


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def unit_of(name: str) -> str:
    """The store contract (``stores.base`` with its value types and argument checks) is its own
    unit; any other module belongs to its top-level module or package."""
    if name.split(".")[:2] in (
        ["stores", "base"],
        ["stores", "_values"],
        ["stores", "_checks"],
        ["stores", "_history"],
    ):
        return "stores.base"
    return name.split(".")[0]


def imported(path: Path, root: Path = PACKAGE) -> set[str]:
    """Names (relative to the package) that a module imports, type-only and local ones too."""
    name = module_name(path, root)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = ".".join(
                    ["celery_pyncette", *base, *([node.module] if node.module else [])]
                )
            else:
                module = node.module or ""
            modules = [module, *(f"{module}.{alias.name}" for alias in node.names)]
        else:
            continue
        for module in modules:
            if module.startswith("celery_pyncette."):
                target = module.removeprefix("celery_pyncette.")
                if (root / target.replace(".", "/")).with_suffix(".py").exists() or (
                    root / target.replace(".", "/")
                ).is_dir():
                    found.add(target)
    return found


def modules(root: Path = PACKAGE) -> list[Path]:
    return sorted(root.rglob("*.py"))


def upward_imports(root: Path = PACKAGE) -> list[str]:
    """Every import of a higher layer, as ``module (layer) imports target (layer)``."""
    wrong = []
    for path in modules(root):
        source = unit_of(module_name(path, root))
        for target in imported(path, root):
            unit = unit_of(target)
            if unit != source and LAYERS[unit] > LAYERS[source]:
                wrong.append(
                    f"{module_name(path, root)} (layer {LAYERS[source]}) imports {target} "
                    f"(layer {LAYERS[unit]})"
                )
    return wrong


def test_every_module_has_a_layer() -> None:
    missing = {unit_of(module_name(p)) for p in modules()} - set(LAYERS)
    assert not missing, f"place these in LAYERS and in docs/architecture.md: {sorted(missing)}"


def test_imports_point_to_the_same_layer_or_lower() -> None:
    wrong = upward_imports()
    assert not wrong, "\n".join(wrong)


def test_beat_side_and_worker_side_stay_apart() -> None:
    wrong = []
    for path in modules():
        source = unit_of(module_name(path))
        for target in imported(path):
            pair = tuple(sorted((source, unit_of(target))))
            if pair in {tuple(sorted(p)) for p in APART}:
                wrong.append(f"{module_name(path)} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_the_check_sees_a_wrong_import(tmp_path: Path) -> None:
    """A store that reaches up into the runtime (even under TYPE_CHECKING) is reported."""
    root = tmp_path / "celery_pyncette"
    (root / "stores").mkdir(parents=True)
    (root / "_runtime.py").write_text("")
    (root / "stores" / "__init__.py").write_text("")
    (root / "stores" / "leaky.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    from celery_pyncette._runtime import Runtime\n"
    )
    assert upward_imports(root) == ["stores.leaky (layer 2) imports _runtime (layer 4)"]
