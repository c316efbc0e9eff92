"""The compiled hot path's guard: a build from other sources is called stale (pure logic
over files in a temporary root; the build itself runs in ``scripts/bootstrap``)."""

from __future__ import annotations

import ast
import os
import pickle
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

from actors.subject import DwellDue, NearZone, Responding, TrackFix
from geo.fences import Fix, Inside, Zone
from panic_alert import compiled

SUFFIX = compiled.SUFFIX


def tree(root: Path) -> Path:
    for module in compiled.MODULES:
        (root / module).parent.mkdir(parents=True, exist_ok=True)
        (root / module).write_text(f"# {module}\n")
    return root


def built(root: Path) -> None:
    """As a build leaves the tree (the extension files are empty stand-ins)."""
    (root / f"{compiled.GROUP}__mypyc{SUFFIX}").write_bytes(b"")
    for module in compiled.MODULES:
        (root / module).with_suffix(SUFFIX).write_bytes(b"")
    stamp = root / compiled.BUILD_DIR / "stamp"
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(compiled.digest(root) + "\n")


def test_nothing_built_is_plain_python_not_stale(tmp_path: Path) -> None:
    root = tree(tmp_path)
    assert compiled.extensions(root) == []
    assert compiled.stale(root) is None
    assert not compiled.current(root)


def test_a_build_of_the_trees_sources_is_current(tmp_path: Path) -> None:
    root = tree(tmp_path)
    built(root)
    assert len(compiled.extensions(root)) == len(compiled.MODULES) + 1
    assert compiled.stale(root) is None
    assert compiled.current(root)


def test_an_edited_source_makes_the_build_stale_until_it_is_cleaned(tmp_path: Path) -> None:
    root = tree(tmp_path)
    built(root)
    (root / compiled.MODULES[1]).write_text("# edited\n")
    why = compiled.stale(root)
    assert why is not None
    assert "scripts/bootstrap" in why
    assert not compiled.current(root)
    removed = compiled.clean(root)
    assert len(removed) == len(compiled.MODULES) + 1
    assert compiled.extensions(root) == []
    assert not (root / compiled.BUILD_DIR).exists()
    assert compiled.stale(root) is None


def test_a_build_without_its_stamp_is_stale(tmp_path: Path) -> None:
    root = tree(tmp_path)
    built(root)
    (root / compiled.BUILD_DIR / "stamp").unlink()
    assert compiled.stale(root) is not None


def test_every_compiled_module_is_in_the_tree_and_typed_strictly() -> None:
    # mypyc compiles what mypy --strict checks (pyproject's packages): a module
    # outside them, or one that no longer exists, would fail the build.
    for module in compiled.MODULES:
        path = compiled.ROOT / module
        assert path.is_file(), module
        assert path.parts[len(compiled.ROOT.parts)] in {"geo", "actors", "cluster", "gateway"}


def test_no_compiled_module_holds_a_coroutine_or_a_class_the_api_shows() -> None:
    # A compiled coroutine suspended in an except block leaks its exception to
    # the loop's other tasks, and a compiled class loses its docstring (which
    # the OpenAPI document shows for enums and models): see MODULES.
    for module in compiled.MODULES:
        tree = ast.parse((compiled.ROOT / module).read_text())
        for node in ast.walk(tree):
            assert not isinstance(node, ast.AsyncFunctionDef | ast.Await), (module, node.lineno)
            if isinstance(node, ast.ClassDef):
                bases = {ast.unparse(base) for base in node.bases}
                assert not bases & {"enum.StrEnum", "enum.Enum", "BaseModel"}, (module, node.name)
                # mypyc makes a frozen dataclass a native class whose pickle cannot be
                # loaded (its state is set through the frozen __setattr__): @record.
                decorators = [ast.unparse(d) for d in node.decorator_list]
                assert not [d for d in decorators if "frozen=True" in d], (module, node.name)
                # A hot record (geo.records: its own __init__) is a native class that
                # cannot be pickled by its slots: it says how.
                if [d for d in decorators if "init=False" in d]:
                    methods = {f.name for f in node.body if isinstance(f, ast.FunctionDef)}
                    assert "__reduce__" in methods, (module, node.name)


def test_the_messages_and_records_of_compiled_modules_cross_processes() -> None:
    # What goes from shard to shard (Ray pickles it) or into a subject's state.
    when = datetime(2026, 12, 7, tzinfo=UTC)
    fix = Fix(52.5, 13.4, 5.0, when)
    zone = Zone.from_geojson(uuid4(), {"type": "Point", "coordinates": [13.4, 52.5]}, radius_m=99)
    near = NearZone(zone, "danger")
    for value in (
        fix,
        zone,
        near,
        Responding(uuid4(), True),
        DwellDue(zone.id, when, 60.0),
        TrackFix(fix, (near,), frozenset()),
        Inside(when, dwelled=True),
    ):
        assert pickle.loads(pickle.dumps(value)) == value  # noqa: S301 - our own bytes


def test_an_extension_module_no_build_of_the_list_makes_is_stale(tmp_path: Path) -> None:
    # Left by a build of an older list: it would shadow its source all the same.
    root = tree(tmp_path)
    built(root)
    (root / "gateway" / "locations.py").write_text("# not compiled now\n")
    left = (root / "gateway" / "locations.py").with_suffix(SUFFIX)
    left.write_bytes(b"")
    assert left in compiled.extensions(root)
    assert compiled.stale(root) is not None
    assert not compiled.current(root)
    compiled.clean(root)
    assert not left.exists()


def _import_in_child(code: str, *, plain: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != compiled.PLAIN_ENV}
    if plain:
        env[compiled.PLAIN_ENV] = "1"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=compiled.ROOT, env=env, capture_output=True, text=True
    )


_WHERE_FROM = (
    "import os, sys\n"
    "from panic_alert import compiled\n"
    "if compiled.plain_requested(os.environ):\n"
    "    compiled.prefer_sources()\n"
    "import geo.fences, gateway.quick_fixes\n"
    "print(geo.fences.__file__, gateway.quick_fixes.__file__, compiled.compiled())\n"
)


def test_the_plain_switch_imports_the_sources_of_a_built_tree() -> None:
    plain = _import_in_child(_WHERE_FROM, plain=True)
    assert plain.returncode == 0, plain.stderr
    fences, quick, runs_compiled = plain.stdout.split()
    assert fences == str(compiled.ROOT / "geo" / "fences.py")
    assert quick == str(compiled.ROOT / "gateway" / "quick_fixes.py")
    assert runs_compiled == "False"
    # Without it, the build (when there is one, as in CI) is what is imported.
    default = _import_in_child(_WHERE_FROM, plain=False)
    assert default.returncode == 0, default.stderr
    built_here = bool(compiled.extensions())
    assert default.stdout.split()[2] == str(built_here)
    assert default.stdout.split()[0].endswith(compiled.SUFFIX if built_here else ".py")


def test_the_plain_switch_is_refused_once_a_compiled_module_is_imported() -> None:
    late = _import_in_child(
        "from panic_alert import compiled\nimport geo.cells\ncompiled.prefer_sources()\n",
        plain=False,
    )
    assert late.returncode != 0
    assert "already imported, compiled or not: geo.cells" in late.stderr


def test_this_run_imports_what_its_switch_says() -> None:
    """The suite's own process: under ``PANIC_PLAIN_PYTHON`` every compiled module
    was taken from its source (``scripts/test`` runs the unit tier so)."""
    import geo.fences

    plain = compiled.plain_requested(os.environ)
    from_source = str(geo.fences.__file__).endswith(".py")
    assert from_source if plain else from_source == (not compiled.extensions())
