"""The ``panic-alert`` command: it starts each process kind from its composition
root (``gateway`` through ``gateway.app``, ``shard_root``, ``relay_root``,
``notifier_root``).

    panic-alert serve [--host H] [--port P] [--gateways N] [--no-ray] [--no-relay]
    panic-alert relay [--drain]
    panic-alert migrate
    panic-alert create-admin --email E --full-name N [--password-stdin]
    panic-alert import-zones FILE [--kind KIND] [--dry-run] [--batch-size N]
    panic-alert demo [--url URL] [--responders N] [--users M] [--speed X] [--duration S] ...

Exit codes: 0 success; 1 the command failed (a service is down, the email is
taken, some zones were refused, ...); 2 bad usage or invalid configuration
(``PANIC_*`` variables).

Only this package (the roof) imports ``gateway``, ``cluster``,
``persistence`` and ``notify`` together, and this module is the one place that
prints to the terminal (besides ``panic_alert.compiled``'s build command, which
``scripts/bootstrap`` runs). Human output goes to stdout (``import-zones``: one
JSON report); logs (JSON lines) and progress go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from functools import partial
from types import FrameType
from typing import TYPE_CHECKING, TextIO

from pydantic import ValidationError

from config.logging import configure_logging
from config.settings import Settings, unknown_settings

if TYPE_CHECKING:
    import asyncpg
    import uvicorn
    from fastapi import FastAPI

    from cluster.client import EntityClient
    from cluster.runtime import RayInfo
    from panic_alert.demo.run import Options as DemoOptions
    from panic_alert.gateways import ChildPlan

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

#: Admin accounts guard everything; they get a stricter floor than users.
ADMIN_MIN_PASSWORD_LENGTH = 12

PROG = "panic-alert"


class CommandError(Exception):
    """A failure to report as one line on stderr, with an exit code (no traceback)."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Panic Alert: emergency-response dispatch platform.",
        epilog="Configuration comes from PANIC_* environment variables "
        "(e.g. PANIC_HTTP__PORT=8000); see config/settings.py.",
    )
    parser.add_argument(
        "--log-level",
        help="log level (default: PANIC_LOG_LEVEL for serve, WARNING for one-shot commands)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the HTTP gateway (and an embedded Ray)")
    serve.add_argument("--host", help="bind address (default: PANIC_HTTP__HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="bind port (default: PANIC_HTTP__PORT, 8000)")
    serve.add_argument(
        "--gateways",
        type=int,
        metavar="N",
        help="gateway processes sharing the port (default: PANIC_HTTP__GATEWAYS; "
        "0: one per CPU core)",
    )
    # A child gateway of another serve (panic_alert.gateways): listen on that
    # port beside it, as gateway number --replica-index, and start nothing else.
    serve.add_argument("--replica-of-port", type=int, help=argparse.SUPPRESS)
    serve.add_argument("--replica-index", type=int, default=1, help=argparse.SUPPRESS)
    serve.add_argument(
        "--no-ray",
        action="store_true",
        help="do not start or join Ray (gateway only; /readyz omits the ray check)",
    )
    serve.add_argument(
        "--no-relay",
        action="store_true",
        help="do not start the outbox relay (run `panic-alert relay` instead)",
    )

    relay = commands.add_parser(
        "relay", help="relay committed outbox events to Kafka and MongoDB until stopped"
    )
    relay.add_argument(
        "--drain",
        action="store_true",
        help="relay what is committed now, print how many, and exit (1 if a service fails)",
    )

    commands.add_parser("migrate", help="apply pending PostgreSQL schema migrations")
    commands.add_parser(
        "openapi",
        help="print the gateway's OpenAPI document (JSON) on standard output",
        description="Print the OpenAPI document the gateway serves at /openapi.json, "
        "without starting anything. The browser code's API types are generated from it "
        "(web/shared/openapi.json, `npm run gen:api` in web/).",
    )

    admin = commands.add_parser("create-admin", help="create an administrator account")
    admin.add_argument("--email", required=True)
    admin.add_argument("--full-name", required=True)
    admin.add_argument(
        "--if-no-admin",
        action="store_true",
        help="create it only when no administrator exists yet (exit 0 either way); "
        "scripts/run uses it to give a new installation its first administrator",
    )
    admin.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input "
        "(otherwise prompt twice on the terminal); never pass it as an argument",
    )

    media = commands.add_parser("media", help="media evidence maintenance")
    media_commands = media.add_subparsers(dest="media_command", required=True, metavar="ACTION")
    media_commands.add_parser(
        "rotate-key",
        help="rewrap every data key under media.active_key_id (the files are not rewritten)",
        description="Rewrap the data key of every stored file (and resumable upload) that "
        "another master key wraps, under the active one (PANIC_MEDIA__ACTIVE_KEY_ID). "
        "The encrypted files are not read or rewritten. Keep the old key id in "
        "PANIC_MEDIA__MASTER_KEYS until this reports no failure; safe to run again. "
        "Prints a JSON report; exit code 1 if any key could not be rewrapped.",
    )
    media_commands.add_parser(
        "purge",
        help="purge deleted files whose retention is over, and expired resumable uploads "
        "(the media worker does both too)",
    )

    zones = commands.add_parser(
        "import-zones",
        help="import geofence zones from a GeoJSON FeatureCollection (admin)",
        description="Import geofence zones: each feature's properties give name, kind, "
        "radius_m (Point zones), rules, active and an optional id (a UUID: importing "
        "the same id again replaces that zone). Every feature is checked as the API "
        "checks a zone; refused ones are reported, the rest imported. Prints a JSON "
        "report on stdout; exit code 0 when every feature was imported, 1 otherwise.",
    )
    zones.add_argument("file", metavar="FILE", help="GeoJSON FeatureCollection (or any OGR format)")
    zones.add_argument(
        "--kind",
        choices=["safe", "danger", "service_area"],
        help="the kind of features whose properties name none",
    )
    zones.add_argument(
        "--dry-run",
        action="store_true",
        help="validate every feature and report, without touching the database",
    )
    zones.add_argument(
        "--batch-size",
        type=int,
        default=500,
        help="zones per transaction (default 500)",
    )
    _add_demo_parser(commands)
    return parser


DEMO_DESCRIPTION = """\
Drive a running server (panic-alert serve, or scripts/run) through its real API with
the Python client (panic_alert_client): simulated responders patrol the city, answer
offers (acknowledge each, accept about 85 %, decline the rest), drive to the alert
sending location fixes with heading and speed, report en_route, on_scene (within
30 m) and resolved, and patrol again; simulated users walk home and on errands,
now and then raise an alert of a random type, follow it, and sometimes cancel it
with their PIN. Open the console (/console/) to watch. A progress line goes to
stderr every 5 s. Ctrl-C (or --duration) stops cleanly: open alerts are cancelled,
responders go offline, sockets are closed. Exit code 0, or 1 when anything
unexpected happened (each is a "demo: error:" line).

Accounts: demo-responder-0001@demo.example.org ... (approved agents, registered
with invite codes from an administrator) and demo-user-0001@demo.example.org ...,
all with one random password kept, with the demo users' PINs, in
<data dir>/demo/state.json (PANIC_DATA_DIR), so a rerun signs the same accounts in.
The administrator is --admin-email/--admin-password, or else the demo's own
(demo-admin-0001@demo.example.org, created the first time as create-admin does,
on the database of the PANIC_POSTGRES__* settings, which must be the server's)."""

DEMO_EPILOG = """\
Rate limits: the server counts registrations (20 an hour) and logins (30 a minute)
per client address, and the demo's accounts all come from one. The demo waits out
every 429 (Retry-After) and says so, but a first run of a large demo would wait
for hours; start the demo server with room for it, e.g.

  PANIC_RATE_LIMIT__REGISTER_PER_IP='{"limit":1000,"window_s":3600}' \\
  PANIC_RATE_LIMIT__LOGIN_PER_IP='{"limit":1000,"window_s":60}' \\
  PANIC_RATE_LIMIT__REFRESH_PER_IP='{"limit":1000,"window_s":60}' scripts/run

(refreshes: every session renews its token every 15 minutes, all at about
the same time). Production defaults are unchanged; do not set these on a
server facing the internet."""


def _add_demo_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = commands.add_parser(
        "demo",
        help="simulated responders and users driving a running server through its API",
        description=DEMO_DESCRIPTION,
        epilog=DEMO_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument(
        "--url",
        default="http://127.0.0.1:8000",
        help="the server's base URL (default http://127.0.0.1:8000)",
    )
    demo.add_argument(
        "--responders", type=int, default=50, help="simulated responders (default 50)"
    )
    demo.add_argument("--users", type=int, default=20, help="simulated users (default 20)")
    demo.add_argument(
        "--city",
        default="52.52,13.405",
        metavar="LAT,LON",
        help="the city's centre (default Berlin, 52.52,13.405)",
    )
    demo.add_argument(
        "--radius-km", type=float, default=5.0, help="the city's radius in km (default 5)"
    )
    demo.add_argument(
        "--alert-every",
        type=float,
        default=60.0,
        metavar="S",
        help="mean simulated seconds between two alerts of one user (default 60)",
    )
    demo.add_argument(
        "--speed",
        type=float,
        default=1.0,
        metavar="X",
        help="simulated time runs X times faster than the clock (default 1); location "
        "fixes keep their real cadence (a responder's every 2 s, a user's every 4 s)",
    )
    demo.add_argument(
        "--duration",
        type=float,
        metavar="S",
        help="stop after S real seconds, once every account is signed in "
        "(default: run until Ctrl-C)",
    )
    demo.add_argument("--seed", type=int, help="seed of every random choice (default: random)")
    demo.add_argument(
        "--admin-email", help="an administrator to make invite codes with (default: the demo's own)"
    )
    demo.add_argument(
        "--admin-password",
        default=os.environ.get("PANIC_DEMO_ADMIN_PASSWORD"),
        help="its password (default: $PANIC_DEMO_ADMIN_PASSWORD; an argument is visible "
        "to other users of this machine)",
    )


def load_settings(*, warn: bool = True) -> Settings:
    """Validate the configuration; ``CommandError`` (exit 2) listing every problem.
    With ``warn``, a ``PANIC_*__*`` variable that sets nothing (a typo) is named on stderr."""
    for name, close in unknown_settings(os.environ) if warn else ():
        hint = f" (did you mean {close}?)" if close else ""
        print(f"{PROG}: warning: {name} sets no setting and is ignored{hint}", file=sys.stderr)
    try:
        return Settings()
    except ValidationError as exc:
        # Field locations and messages only: the inputs may be secrets.
        lines = []
        for error in exc.errors(include_input=False, include_url=False):
            where = ".".join(str(part) for part in error["loc"]) or "settings"
            lines.append(f"  {where}: {error['msg']}")
        raise CommandError(
            "invalid configuration (PANIC_* environment variables):\n" + "\n".join(lines),
            EXIT_USAGE,
        ) from exc


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``panic-alert`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        # A serve's other gateways read the same environment: their parent warned.
        replica = args.command == "serve" and args.replica_of_port is not None
        settings = load_settings(warn=not replica)
        if args.command == "serve":
            return serve(settings, args)
        configure_logging(args.log_level or "WARNING")
        if args.command == "migrate":
            return asyncio.run(migrate(settings))
        if args.command == "openapi":
            return print_openapi(settings)
        if args.command == "relay":
            return drain(settings) if args.drain else relay(settings)
        if args.command == "create-admin":
            password = read_new_password(from_stdin=args.password_stdin)
            return asyncio.run(
                create_admin(
                    settings,
                    email=args.email,
                    full_name=args.full_name,
                    password=password,
                    only_first=args.if_no_admin,
                )
            )
        if args.command == "media":
            return asyncio.run(media_command(settings, args.media_command))
        if args.command == "demo":
            return run_demo_command(settings, args)
        if args.command == "import-zones":
            return import_zones(
                settings,
                args.file,
                kind=args.kind,
                dry_run=args.dry_run,
                batch_size=args.batch_size,
            )
        raise CommandError(f"unknown command {args.command!r}", EXIT_USAGE)
    except CommandError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


# --------------------------------------------------------------------- serve


def print_openapi(settings: Settings) -> int:
    """The document as the gateway serves it (sorted keys: a stable diff)."""
    from gateway.app import create_app

    document = create_app(settings).openapi()
    print(json.dumps(document, indent=2, sort_keys=True))
    return EXIT_OK


def relay(settings: Settings) -> int:
    """Run the outbox relay in the foreground until SIGTERM/SIGINT."""
    from panic_alert.relay_root import run_relay

    configure_logging(settings.log_level)

    async def until_signalled() -> None:
        task = asyncio.create_task(run_relay(settings))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(until_signalled())
    log.info("relay stopped")
    return EXIT_OK


def drain(settings: Settings) -> int:
    """Relay every outbox row committed so far, then exit."""
    from panic_alert import relay_root
    from persistence.errors import PersistenceError

    try:
        count = asyncio.run(relay_root.drain(settings))
    except PersistenceError as exc:
        raise CommandError(f"relay --drain failed: {exc}") from exc
    print(f"relayed {count} outbox event(s)")
    return EXIT_OK


def serve(settings: Settings, args: argparse.Namespace) -> int:
    """Run the gateway until SIGTERM/SIGINT; Ray is started first and stopped last.

    With more than one gateway (``--gateways``, ``http.gateways``; 0: one per
    core) this process listens with ``SO_REUSEPORT``, starts the others on its
    port once it listens, and stops them before it stops Ray
    (``panic_alert.gateways``); with ``--replica-of-port`` it is one of those.
    """
    import shutil
    import tempfile

    from cluster.errors import ClusterError
    from cluster.runtime import init_ray, shutdown_ray
    from panic_alert import compiled, gateways, media_root, notifier_root, relay_root, shard_root
    from panic_alert.bulk_tally import BulkTally
    from panic_alert.gateway_procs import (
        ChildGateways,
        GatewayServer,
        reuseport_socket,
        use_multiprocess_metrics,
    )
    from panic_alert.relay_root import run_relay

    configure_logging(args.log_level or settings.log_level)
    stale_build = compiled.stale()
    if stale_build is not None:
        raise CommandError(stale_build, EXIT_FAILURE)
    if args.replica_of_port is None:
        running = "compiled (mypyc)" if compiled.compiled() else "as plain Python"
        log.info("serve: the hot path runs %s", running)
    try:
        count = gateways.gateway_count(settings.http.gateways, args.gateways, os.cpu_count())
    except ValueError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from exc
    replica = args.replica_of_port is not None
    index = args.replica_index if replica else 1
    host = args.host or settings.http.host
    port = args.port if args.port is not None else settings.http.port
    if replica:
        port = args.replica_of_port
    with_ray = not args.no_ray
    metrics_dir: str | None = None
    tally_dir: str | None = None
    tally: BulkTally | None = None
    # The parent's fresh directory, removed when it stops: the summed metrics
    # and the bulk-socket tally of every gateway. A child has both from the parent.
    shared_dir: str | None = None
    if count > 1:
        if replica:
            metrics_dir = os.environ.get(gateways.METRICS_DIR_ENV) or None
            tally_dir = os.environ.get(gateways.TALLY_DIR_ENV) or None
        else:
            shared_dir = tempfile.mkdtemp(prefix="panic-alert-gateways-")
            metrics_dir = os.path.join(shared_dir, "metrics")
            tally_dir = os.path.join(shared_dir, "bulk-sockets")
            os.mkdir(metrics_dir)
            os.mkdir(tally_dir)
        if tally_dir is not None:
            tally = BulkTally(tally_dir)
    server: uvicorn.Server | None = None
    stop_requested = False
    children: ChildGateways | None = None

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        # Installed outside uvicorn's own handling (before it starts and when
        # it re-raises the captured signal after a graceful shutdown): a
        # signal then means "stop", never an abrupt exit skipping Ray shutdown.
        nonlocal stop_requested
        stop_requested = True
        if server is not None:
            server.should_exit = True
        log.info("signal %s received; stopping", signal.Signals(signum).name)

    def stopping() -> bool:
        return stop_requested or (server is not None and server.should_exit)

    # With Ray the relay runs in its own actor (started below); without, here.
    background = [] if args.no_relay or with_ray else [partial(run_relay, settings)]
    entities: EntityClient | None = None
    info: RayInfo | None = None
    # A child gateway may get a second signal (Ctrl-C reaches the whole process
    # group, and the parent forwards SIGTERM): it then stops gracefully whenever
    # the signal comes, even while it starts or leaves Ray.
    with contextlib.ExitStack() as run_guard:
        if replica:
            run_guard.enter_context(_signals_handled_by(request_stop))
        try:
            if with_ray:
                try:
                    info = init_ray(settings.ray)
                    entities = shard_root.start_entity_shards(settings)
                    if not replica:  # the one per cluster: started (or found) by the parent
                        if not args.no_relay:
                            relay_root.start(settings)
                        if settings.notify.enabled:
                            notifier_root.start(settings, entities.shard_count)
                        if settings.media.processing_enabled:
                            media_root.start(settings, entities.shard_count)
                except ClusterError as exc:
                    raise CommandError(f"cannot start Ray: {exc}") from exc
                log.info(
                    "ray dashboard: %s; %d shard actors", info.dashboard_url, entities.shard_count
                )
            if metrics_dir is not None and use_multiprocess_metrics(metrics_dir):
                log.debug(
                    "prometheus_client was imported (by ray.init); multiprocess mode re-chosen"
                )
            # Only now: the gateway's metrics must be made in multiprocess mode.
            from gateway.metrics import HttpMetrics
            from panic_alert.gateway_root import build_gateway

            with _signals_handled_by(request_stop):
                if stop_requested:
                    return EXIT_OK
                app = build_gateway(
                    settings,
                    with_ray=with_ray,
                    background=background,
                    entities=entities,
                    freeze_heap=True,
                    metrics=None
                    if metrics_dir is None
                    else HttpMetrics(multiprocess_dir=metrics_dir),
                    bulk_spread=tally,
                )
                sockets = None
                if count > 1 or replica:
                    # Bound here, not by uvicorn: SO_REUSEPORT, and the real port
                    # (when given 0) for the children. uvicorn listens on it, with
                    # config.backlog, once the app has started.
                    try:
                        sockets = [reuseport_socket(host, port)]
                    except OSError as exc:
                        raise CommandError(f"cannot listen on {host}:{port}: {exc}") from exc
                    port = int(sockets[0].getsockname()[1])
                serving = partial(
                    log.info,
                    "gateway %d/%d serving on %s:%d, pid %d",
                    index,
                    count,
                    host,
                    port,
                    os.getpid(),
                )
                server = GatewayServer(
                    _uvicorn_config(settings, app, host, port),
                    on_started=serving if tally is None else _both(tally.join, serving),
                    on_stopping=None if tally is None else tally.leave,
                )
                if count > 1 and not replica:
                    children = ChildGateways(
                        _child_plan(
                            args, count, host, port, info, entities, metrics_dir, tally_dir
                        ),
                        stopping=stopping,
                        stop_timeout_s=settings.http.graceful_shutdown_s + 5,
                    )
                    children.start()
                server.run(sockets=sockets)
                if not server.started:
                    raise CommandError(f"the HTTP server did not start on {host}:{port}")
        finally:
            # The children first: they use the Ray this process may own.
            if children is not None:
                children.stop()
            if with_ray:
                shutdown_ray()
            if tally is not None:
                tally.leave()
            if shared_dir is not None:
                shutil.rmtree(shared_dir, ignore_errors=True)
        log.info("stopped")
    return EXIT_OK


def _uvicorn_config(settings: Settings, app: FastAPI, host: str, port: int) -> uvicorn.Config:
    """How every gateway process runs its app in uvicorn."""
    import uvicorn

    from gateway.app import server_options

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,  # our JSON logging, configured by serve
        access_log=False,  # the gateway writes its own access log line
        lifespan="on",
        timeout_graceful_shutdown=int(settings.http.graceful_shutdown_s),
        server_header=False,
        # Also the backlog of a socket bound by serve: asyncio listens on it with this.
        backlog=settings.http.listen_backlog,
        **server_options(settings),
    )


def _child_plan(
    args: argparse.Namespace,
    count: int,
    host: str,
    port: int,
    info: RayInfo | None,
    entities: EntityClient | None,
    metrics_dir: str | None,
    tally_dir: str | None,
) -> ChildPlan:
    """What ``serve``'s child gateways are started with: this same command."""
    from panic_alert.gateways import ChildPlan

    script = sys.argv[0]
    command = (
        (sys.executable, os.path.abspath(script))
        if os.path.isfile(script)
        else (sys.executable, "-m", "panic_alert.cli")
    )
    return ChildPlan(
        command=command,
        host=host,
        port=port,
        count=count,
        with_ray=info is not None,
        log_level=args.log_level,
        ray_address=None if info is None else info.address,
        ray_namespace=None if info is None else info.namespace,
        shards=None if entities is None else entities.shard_count,
        metrics_dir=metrics_dir,
        tally_dir=tally_dir,
    )


def _both(first: Callable[[], object], then: Callable[[], object]) -> Callable[[], None]:
    def both() -> None:
        first()
        then()

    return both


@contextmanager
def _signals_handled_by(handler: Callable[[int, FrameType | None], None]) -> Iterator[None]:
    signals = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# ------------------------------------------------------------------- migrate


async def migrate(settings: Settings) -> int:
    """Apply pending migrations and print what was applied (nothing is not an error)."""
    from persistence.errors import PersistenceError
    from persistence.migrations import apply_migrations

    try:
        async with _pool(settings) as pool:
            applied = await apply_migrations(pool)
    except PersistenceError as exc:
        raise CommandError(f"migrate failed: {exc}") from exc
    db = settings.postgres.database
    if applied:
        print(f"applied {len(applied)} migration(s) to {db}: {', '.join(applied)}")
    else:
        print(f"{db} is up to date; no migration applied")
    return EXIT_OK


# --------------------------------------------------------------------- media


async def media_command(settings: Settings, action: str) -> int:
    """``rotate-key`` or ``purge``; a JSON report on stdout, progress on stderr."""
    from datetime import UTC, datetime

    from media.resumable import expire_uploads
    from media.retention import purge_due, rewrap_all
    from media.vault import media_keys
    from persistence.errors import PersistenceError
    from persistence.media.objects import object_store
    from persistence.stores.media import PostgresMediaRecords
    from persistence.stores.media_uploads import PostgresMediaUploads

    def progress(done: int, failed: int) -> None:
        print(f"rewrapped {done} data key(s), {failed} failed so far", file=sys.stderr)

    try:
        async with _pool(settings) as pool:
            records = PostgresMediaRecords(pool, source=settings.kafka.source)
            if action == "rotate-key":
                keys = media_keys(settings.media)
                result = await rewrap_all(records, keys, progress=progress)
                report = {
                    "active_key_id": keys.active,
                    "rewrapped": result.rewrapped,
                    "failed": result.failed,
                }
                print(json.dumps(report))
                return EXIT_OK if not result.failed else EXIT_FAILURE
            objects = object_store(settings.media, settings.data_dir)
            uploads = PostgresMediaUploads(pool, source=settings.kafka.source)
            total = expired = 0
            while purged := await purge_due(records, objects, datetime.now(UTC)):
                total += purged
                print(f"purged {total} file(s)", file=sys.stderr)
            while gone := await expire_uploads(uploads, objects, datetime.now(UTC)):
                expired += gone
                print(f"removed {expired} expired upload(s)", file=sys.stderr)
            print(json.dumps({"purged": total, "expired_uploads": expired}))
            return EXIT_OK
    except PersistenceError as exc:
        raise CommandError(f"media {action} failed: {exc}") from exc


# -------------------------------------------------------------- create-admin


def read_new_password(*, from_stdin: bool, stdin: TextIO | None = None) -> str:
    """The new password: first line of stdin, or typed twice at a hidden prompt."""
    from gateway.auth.passwords import WeakPasswordError, check_password_policy

    stream = stdin if stdin is not None else sys.stdin
    if from_stdin:
        line = stream.readline()
        password = line[:-1] if line.endswith("\n") else line
        password = password.removesuffix("\r")
    else:
        if not stream.isatty():
            raise CommandError(
                "no terminal to prompt for the password; pipe it with --password-stdin",
                EXIT_USAGE,
            )
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != password:
            raise CommandError("the two passwords differ", EXIT_USAGE)
    try:
        check_password_policy(password, min_length=ADMIN_MIN_PASSWORD_LENGTH)
    except WeakPasswordError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from exc
    return password


async def create_admin(
    settings: Settings, *, email: str, full_name: str, password: str, only_first: bool = False
) -> int:
    """Create an ``admin`` account; a taken email is exit code 1 with a clear message.
    ``only_first``: do nothing (exit 0, saying so) when an administrator exists."""
    from email_validator import EmailNotValidError, validate_email

    from actors.roles import Role
    from gateway.auth.passwords import PasswordHasher
    from persistence.errors import PersistenceError
    from persistence.stores.accounts import (
        DuplicateEmail,
        admin_exists,
        create_account,
        normalize_email,
    )

    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError as exc:
        raise CommandError(f"invalid email: {exc}", EXIT_USAGE) from exc
    name = full_name.strip()
    if not name or len(name) > 200:
        raise CommandError("--full-name must be 1 to 200 characters", EXIT_USAGE)
    stored_email = normalize_email(email)
    password_hash = await PasswordHasher(settings.auth).hash_async(password)
    try:
        async with _pool(settings) as pool:
            if only_first and await admin_exists(pool):
                print("an administrator exists already; none created")
                return EXIT_OK
            account_id = await create_account(
                pool,
                email=stored_email,
                password_hash=password_hash,
                full_name=name,
                role=Role.ADMIN,
            )
    except DuplicateEmail as exc:
        raise CommandError(f"an account with email {stored_email} already exists") from exc
    except PersistenceError as exc:
        raise CommandError(f"create-admin failed: {exc}") from exc
    print(f"created admin {account_id} ({stored_email})")
    return EXIT_OK


# -------------------------------------------------------------- import-zones


def import_zones(
    settings: Settings, file: str, *, kind: str | None, dry_run: bool, batch_size: int
) -> int:
    """Validate and store the file's zones; the JSON report on stdout (see ``zone_import``)."""
    import json
    from pathlib import Path

    from actors.zone_rules import ZoneKind
    from panic_alert import zone_import
    from persistence.errors import PersistenceError

    if batch_size < 1:
        raise CommandError("--batch-size must be at least 1", EXIT_USAGE)
    path = Path(file)
    if not path.is_file():
        raise CommandError(f"no such file: {file}", EXIT_USAGE)
    try:
        features = zone_import.read_features(path)
    except zone_import.ImportFailed as exc:
        raise CommandError(str(exc)) from exc
    print(f"{PROG}: read {len(features)} features; validating", file=sys.stderr)
    ready, rejected = zone_import.prepare(
        features,
        default_kind=None if kind is None else ZoneKind(kind),
        resolution=settings.actors.region_resolution,
    )
    report = zone_import.ImportReport(
        file=str(path), features=len(features), dry_run=dry_run, valid=len(ready)
    )
    report.rejected.extend(rejected)

    def progress(done: int, total: int) -> None:
        print(f"{PROG}: stored {done}/{total} zones", file=sys.stderr)

    async def store() -> None:
        async with _pool(settings) as pool:
            await zone_import.store(pool, ready, report, batch_size=batch_size, progress=progress)

    if not dry_run and ready:
        try:
            asyncio.run(store())
        except PersistenceError as exc:
            print(json.dumps(report.to_json()))
            raise CommandError(f"import-zones failed: {exc}") from exc
    print(json.dumps(report.to_json()))
    return EXIT_OK if not report.rejected else EXIT_FAILURE


# ---------------------------------------------------------------------- demo


def demo_options(settings: Settings, args: argparse.Namespace) -> DemoOptions:
    """The demo's options from its arguments; ``CommandError`` (exit 2) when invalid."""
    from panic_alert.demo import plan
    from panic_alert.demo.run import Options

    def usage(message: str) -> CommandError:
        return CommandError(message, EXIT_USAGE)

    if not 0 <= args.responders <= 10_000 or not 0 <= args.users <= 10_000:
        raise usage("--responders and --users must be 0 to 10000")
    if args.responders + args.users == 0:
        raise usage("nobody to simulate: give --responders or --users")
    if not 0 < args.speed <= 1000:
        raise usage("--speed must be above 0 and at most 1000")
    if args.duration is not None and args.duration <= 0:
        raise usage("--duration must be above 0")
    if not 0.1 <= args.radius_km <= 100:
        raise usage("--radius-km must be 0.1 to 100")
    if args.alert_every <= 0:
        raise usage("--alert-every must be above 0")
    if (args.admin_email is None) != (args.admin_password is None):
        raise usage("give --admin-email and --admin-password together")
    try:
        centre = plan.parse_city(args.city)
    except ValueError as exc:
        raise usage(f"--city: {exc}") from exc
    return Options(
        url=args.url.rstrip("/"),
        responders=args.responders,
        users=args.users,
        city=plan.City(centre, args.radius_km * 1000.0),
        speed=args.speed,
        duration_s=args.duration,
        seed=args.seed,
        tuning=plan.Tuning(alert_every_s=args.alert_every),
        state_path=settings.data_dir / "demo" / "state.json",
        admin_email=args.admin_email,
        admin_password=args.admin_password,
    )


def run_demo_command(settings: Settings, args: argparse.Namespace) -> int:
    """``panic-alert demo``: 0 when it ran without an unexpected error, else 1."""
    from panic_alert.demo.accounts import DemoError
    from panic_alert.demo.run import run_demo

    options = demo_options(settings, args)

    async def make_admin(email: str, password: str) -> None:
        # Exactly what `create-admin` does, with the demo's random password.
        await create_admin(settings, email=email, full_name="Demo Administrator", password=password)

    try:
        return asyncio.run(run_demo(options, make_admin, err=sys.stderr))
    except DemoError as exc:
        raise CommandError(f"demo: {exc}") from exc


# ------------------------------------------------------------------- helpers


@asynccontextmanager
async def _pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    """A small pool for one-shot commands, closed on exit."""
    from persistence.drivers.postgres import create_pool

    pool = await create_pool(settings.postgres.model_copy(update={"pool_min": 1, "pool_max": 2}))
    try:
        yield pool
    finally:
        await pool.close()


if __name__ == "__main__":
    sys.exit(main())
