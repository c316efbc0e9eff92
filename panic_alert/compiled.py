"""The hot path's modules compiled to C with mypyc, and the guard against stale builds.

Each location fix runs the same few modules' Python in a shard (the batch
unpacked, its zones looked up, each subject's quiet decision) and in a
gateway (the bulk feed's quick reader, the ingest queue): issue 20 needs a
third less CPU per fix than that Python takes. mypyc compiles these modules,
as they are (typed for ``mypy --strict`` already), into C extension modules
beside their sources; Python imports an extension module before a ``.py`` of
the same name, so every process (serve, the Ray workers, the tests) runs the
compiled code once it is built, and the plain Python when it is not. The
behaviour is the same either way: one source, one test suite.

    .venv/bin/python -m panic_alert.compiled build   # scripts/bootstrap runs it
    .venv/bin/python -m panic_alert.compiled clean   # back to plain Python
    .venv/bin/python -m panic_alert.compiled check   # exit 1 when a build is stale

With ``PANIC_PLAIN_PYTHON=1`` the test suite imports these modules from their
sources even when they are built (:func:`prefer_sources`): ``scripts/test``
runs the unit tier so too, so the plain Python that the Docker image, the
cluster's other nodes and a machine without a C compiler run is tested
beside the compiled build that CI's other tiers run.

A build is stamped with a digest of its sources, the Python version and the
mypy version (in ``.build/compiled/stamp``); ``build`` does nothing while it matches.
An extension module older than its source would run code that is no longer
in the tree, so :func:`stale` tells, and ``serve`` and the test suite refuse
to start on a stale build (they say to run ``scripts/bootstrap``).

What compiling changes: a compiled function checks its arguments' declared
types when called from Python (a wrong type is a ``TypeError``), so what
comes from outside (a stream's bytes, a frame's JSON) is typed ``object``
and checked by hand; a compiled module's functions call one another
directly, and its ``Final`` names are folded into the code, so patching
them in a test does not reach it; and its classes lose their docstrings
(mypyc puts a filler in), so a class the API's schemas show (an enum in the
OpenAPI document) is defined in a module that is not compiled.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Mapping, Sequence
from importlib import metadata
from importlib.machinery import ModuleSpec
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: The modules compiled, by path from the repository's root. The shard's
#: tracking (``bench/fix_path.py`` ``tracking``) and the gateway's bulk intake
#: (``intake``) spend most of their Python in these. None holds a coroutine:
#: a compiled coroutine suspended in an ``except`` block leaves its exception
#: as the one being handled for every other task of the loop (mypy 2.4's
#: mypyc; reproduced with ``asyncio``: another task's exceptions were chained
#: to it and ``sys.exc_info()`` there named it), so the async shells around
#: these modules (``cluster.tracking``, ``gateway.locations``) stay Python.
#: ``tests/unit/test_compiled.py`` holds the list to that.
MODULES: tuple[str, ...] = (
    "geo/cells.py",
    "geo/fences.py",
    "actors/zone_index.py",
    "actors/subject_state.py",
    "actors/subject_fences.py",
    "actors/subject.py",
    "gateway/quick_fixes.py",
)

#: mypyc's shared library for the group is named after this (at the root).
GROUP = "panic_alert_hot"
#: Under the root: mypyc's C sources and objects, and the last build's digest.
BUILD_DIR = Path(".build") / "compiled"
#: An extension module's file name ends so on this interpreter.
SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


#: Set to anything but "" or "0", the test suite runs the sources of ``MODULES``.
PLAIN_ENV = "PANIC_PLAIN_PYTHON"


def plain_requested(environ: Mapping[str, str]) -> bool:
    """Whether ``environ`` asks for the sources of ``MODULES`` (:data:`PLAIN_ENV`)."""
    return environ.get(PLAIN_ENV, "") not in ("", "0")


def module_name(path: str) -> str:
    """``geo/cells.py`` -> ``geo.cells``."""
    return path.removesuffix(".py").replace("/", ".")


class _SourcesFirst(importlib.abc.MetaPathFinder):
    """Finds the compiled modules' ``.py`` sources before the path finder would
    find their extension modules (which Python prefers to a source)."""

    def __init__(self, root: Path) -> None:
        self.sources = {module_name(module): root / module for module in MODULES}

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: object = None
    ) -> ModuleSpec | None:
        source = self.sources.get(fullname)
        return None if source is None else importlib.util.spec_from_file_location(fullname, source)


def prefer_sources(root: Path = ROOT) -> None:
    """From now on this process imports ``MODULES`` from their sources, built or not.

    Must come before any of them is imported (a module imported compiled stays
    so): ``RuntimeError`` naming it otherwise.
    """
    if any(isinstance(finder, _SourcesFirst) for finder in sys.meta_path):
        return
    finder = _SourcesFirst(root)
    loaded = sorted(name for name in finder.sources if name in sys.modules)
    if loaded:
        raise RuntimeError(f"already imported, compiled or not: {', '.join(loaded)}")
    sys.meta_path.insert(0, finder)


def _stamp(root: Path) -> Path:
    return root / BUILD_DIR / "stamp"


def digest(root: Path = ROOT) -> str:
    """The sources', the interpreter's and mypyc's digest: a build for another is stale."""
    h = hashlib.sha256()
    h.update(sys.version.encode())
    h.update(metadata.version("mypy").encode())
    for module in MODULES:
        h.update(module.encode())
        h.update((root / module).read_bytes())
    return h.hexdigest()


#: Where an extension module of the project could be (one left by a build of
#: another list counts too: it would shadow its source just the same).
PACKAGES: tuple[str, ...] = (
    "actors", "cluster", "config", "gateway", "geo", "media", "notify", "panic_alert",
    "persistence",
)  # fmt: skip


def _made(root: Path) -> set[Path]:
    """What a build of ``MODULES`` leaves in the tree."""
    made = {root / f"{GROUP}__mypyc{SUFFIX}"}
    return made | {(root / module).with_suffix(SUFFIX) for module in MODULES}


def extensions(root: Path = ROOT) -> list[Path]:
    """The extension modules in the tree: the group's library and any beside a source."""
    found = sorted(root.glob(f"*__mypyc{SUFFIX}"))
    for package in PACKAGES:
        found += sorted((root / package).rglob(f"*{SUFFIX}"))
    return found


def stale(root: Path = ROOT) -> str | None:
    """Why the compiled modules in the tree would run other code than the sources
    (None when they are current, or when none are built: plain Python)."""
    built = extensions(root)
    if not built:
        return None
    try:
        made_for = _stamp(root).read_text().strip()
    except OSError:
        made_for = ""
    if made_for != digest(root) or not set(built) <= _made(root):
        names = ", ".join(str(path.relative_to(root)) for path in built[:3])
        return (
            f"compiled modules ({names}, ...) were built from other sources than the tree's: "
            "run scripts/bootstrap (or `.venv/bin/python -m panic_alert.compiled clean`)"
        )
    return None


def compiled() -> bool:
    """Whether the hot path runs compiled in this process (``geo.fences`` as a sample)."""
    import geo.fences

    return not str(getattr(geo.fences, "__file__", "")).endswith(".py")


def clean(root: Path = ROOT) -> list[Path]:
    """Remove the built extension modules and the stamp; returns what was removed."""
    removed = extensions(root)
    for path in removed:
        path.unlink()
    shutil.rmtree(root / BUILD_DIR, ignore_errors=True)
    return removed


def current(root: Path = ROOT) -> bool:
    """Whether every module is built, from the tree's sources."""
    return set(extensions(root)) == _made(root) and stale(root) is None


def build(root: Path = ROOT) -> None:
    """Compile ``MODULES`` in place (:class:`BuildFailed` with the log's tail)."""
    want = digest(root)
    clean(root)
    build_dir = root / BUILD_DIR
    build_dir.mkdir(parents=True, exist_ok=True)
    # setuptools' own discovery would refuse this flat layout; the build is
    # given its modules and nothing else, in a child so that its output and
    # its failure stay apart from the caller's.
    script = (
        "import sys\n"
        "from setuptools import setup\n"
        "from mypyc.build import mypycify\n"
        f"setup(name={GROUP!r}, packages=[], py_modules=[],\n"
        f"      ext_modules=mypycify({list(MODULES)!r}, opt_level='3',\n"
        f"                           group_name={GROUP!r},\n"
        f"                           target_dir={str(build_dir / 'c')!r}),\n"
        "      script_args=['build_ext', '--inplace',\n"
        f"                   '--build-temp', {str(build_dir / 'temp')!r}])\n"
    )
    log = build_dir / "build.log"
    with log.open("w") as out:
        done = subprocess.run(  # noqa: S603 (this interpreter, a script made above)
            [sys.executable, "-c", script], cwd=root, stdout=out, stderr=subprocess.STDOUT
        )
    if done.returncode != 0:
        tail = log.read_text().splitlines()[-15:]
        for path in extensions(root):  # the log is kept, to be read whole
            path.unlink()
        raise BuildFailed(
            f"mypyc could not compile the hot path ({log.relative_to(root)}):\n" + "\n".join(tail)
        )
    _stamp(root).write_text(want + "\n")


class BuildFailed(RuntimeError):
    """mypyc or the C compiler failed (the build log's last lines are the message)."""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    command = args[0] if args else "check"
    if command == "build":
        compiler = str(sysconfig.get_config_var("CC") or "cc").split()[0]
        if shutil.which(compiler) is None:
            print("compiled: no C compiler configured; the hot path stays Python", file=sys.stderr)
            return 0
        if current() and "--force" not in args:
            return 0
        print(
            f"compiled: compiling the hot path's {len(MODULES)} modules with mypyc (~2 min)",
            file=sys.stderr,
        )
        try:
            build()
        except BuildFailed as exc:
            print(f"compiled: {exc}", file=sys.stderr)
            return 1
        return 0
    if command == "clean":
        for path in clean():
            print(f"compiled: removed {path.relative_to(ROOT)}", file=sys.stderr)
        return 0
    if command == "check":
        why = stale()
        if why is not None:
            print(f"compiled: {why}", file=sys.stderr)
            return 1
        print(f"compiled: {'current' if extensions() else 'none built (plain Python)'}")
        return 0
    print("usage: python -m panic_alert.compiled [build [--force]|clean|check]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
