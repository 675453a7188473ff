"""The house is one-way: no import cycles, and each module imports only from its own floor's app or from floors below.

Floors (docs/architecture.md), lowest first:
1. ``recsys_site`` helpers (settings, cache, throttling, pagination, CSV safety) and ``training.ml``
   (the ML core: plain Python, never Django);
2. ``movies``: catalogue, ratings, accounts;
3. ``feedback``: comparisons, annotators, item and list feedback;
4. ``training``: runs, registry, gate, serving, dashboards;
5. management commands and URL confs, which wire everything together.
Imports are read with ``ast``, function-level ones included, so a lazy import does not hide an edge.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ("recsys_site", "movies", "feedback", "training")
DJANGO_WORLD = ("django", "rest_framework", "drf_spectacular", "celery", "django_celery_beat", "axes", "csp")


def project_modules() -> dict[str, Path]:
    """Every module of the apps, by dotted name; tests and migrations are left out."""
    modules = {}
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "tests" in parts or "migrations" in parts:
                continue
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def imported_names(name: str, path: Path) -> set[str]:
    """Dotted names a module imports (relative imports resolved), wherever the import statement is."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(
                    package[: len(package) - node.level + 1] + ([node.module] if node.module else [])
                )
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_graph() -> dict[str, set[str]]:
    """{module: the project modules it imports}; a name resolves to its longest module prefix."""
    modules = project_modules()
    graph = {}
    for name, path in modules.items():
        edges = set()
        for imported in imported_names(name, path):
            target = imported
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name and target not in APPS:  # an app's __init__ holds nothing
                edges.add(target)
        graph[name] = edges
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The graph's cycles, one per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = lowlink[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                lowlink[node] = min(lowlink[node], lowlink[target])
            elif target in on_stack:
                lowlink[node] = min(lowlink[node], index[target])
        if lowlink[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def _describe(component: list[str], graph: dict[str, set[str]]) -> str:
    members = set(component)
    edges = [f"    {source} -> {', '.join(sorted(graph[source] & members))}" for source in component]
    return "\n".join([f"  cycle of {len(component)} modules:", *edges])


def floor(module: str) -> tuple[int, str]:
    """(floor, the app that owns the floor there) for a module."""
    parts = module.split(".")
    if "management" in parts or parts[-1] in ("urls", "api_urls", "account_urls"):
        return 5, "wiring"
    if module.startswith("training.ml"):
        return 1, "training.ml"
    if parts[0] == "recsys_site":
        return (5, "wiring") if parts[-1] in ("asgi", "wsgi") else (1, "recsys_site")
    return {"movies": 2, "feedback": 3, "training": 4}[parts[0]], parts[0]


def test_no_module_imports_a_floor_above_it_or_another_app_on_its_own_floor():
    upward = [
        f"{module} (floor {floor(module)[0]}) imports {target} (floor {floor(target)[0]})"
        for module, targets in sorted(import_graph().items())
        for target in sorted(targets)
        if floor(target)[0] > floor(module)[0]
        or (floor(target)[0] == floor(module)[0] and floor(target)[1] != floor(module)[1])
    ]
    assert upward == [], "imports that point up:\n" + "\n".join(upward)


def test_the_ml_core_imports_nothing_from_django_or_the_apps():
    modules = project_modules()
    leaks = [
        f"{name} imports {imported}"
        for name, path in sorted(modules.items())
        if name.startswith("training.ml")
        for imported in sorted(imported_names(name, path))
        if imported.split(".")[0] in DJANGO_WORLD
        or (imported.split(".")[0] in APPS and not imported.startswith("training.ml"))
    ]
    assert leaks == [], "\n".join(leaks)


def test_the_floor_check_sees_lazy_and_relative_imports(tmp_path):
    """The reader itself: a function-level import and a relative one are both edges."""
    module = tmp_path / "views.py"
    module.write_text("from . import selectors\n\ndef page():\n    from training.serving import recommend\n")
    assert imported_names("movies.views", module) >= {"movies.selectors", "training.serving.recommend"}
    assert floor("movies.views") == (2, "movies") and floor("training.serving") == (4, "training")


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert import_cycles(graph) == [["a", "b", "c"]]


def test_the_project_has_no_import_cycles():
    graph = import_graph()
    cycles = import_cycles(graph)
    for component in cycles:
        print(_describe(component, graph))
    assert not cycles, "import cycles:\n" + "\n".join(_describe(c, graph) for c in cycles)


def test_the_product_and_the_experiment_train_through_the_same_stage_functions():
    """``training.rlhf`` and ``training.ml.experiment`` fit the reward model and the policies, and
    assemble the gate's evidence, through ``training.ml.stages``, never by calling a trainer themselves."""
    modules = project_modules()
    trainers = {
        "training.ml.reward_model.train_reward_model",
        "training.ml.reward_model.sample_rating_pairs",
        "training.ml.ppo.train_ppo",
        "training.ml.dqn.train_dqn",
        "training.ml.gate.judge_outcomes",
        "training.ml.gate.replay_outcomes",
    }
    for name in ("training.rlhf", "training.ml.experiment"):
        names = imported_names(name, modules[name])
        assert "training.ml.stages.fit_reward_model" in names and "training.ml.stages.fit_policy" in names
        assert "training.ml.stages.candidate_evidence" in names
        assert not names & trainers, f"{name} calls a trainer itself: {sorted(names & trainers)}"


def test_a_rater_s_profile_is_read_in_one_place():
    """Only ``training.profiles`` reads a rater's reactions and text signals for their lists; the
    list builders in ``training.serving`` take the profile as an argument."""
    readers = sorted(
        name
        for name, path in project_modules().items()
        if {"feedback.selectors.rater_reactions", "feedback.selectors.rater_signals"}
        & imported_names(name, path)
    )
    assert readers == ["training.profiles"]
