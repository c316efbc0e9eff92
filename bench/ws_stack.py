"""Server CPU per received WebSocket text frame, by Python ASGI server stack.

The workload is the gateway's: many mostly idle sockets, each sending one small
JSON frame (a location fix) about once a second. For each server the driver
starts ``bench/ws_stack.py --serve NAME`` as a subprocess (one process, one
worker, 127.0.0.1), opens ``--sockets`` client WebSockets (the ``websockets``
asyncio client, no pings, no compression unless ``--deflate``) in batches,
sends ``--rate`` frames a second in total, round robin over the sockets (each
socket every ``sockets / rate`` seconds, evenly spread), for ``--warmup``
seconds and then ``--seconds`` measured, and prints one JSON object:

- ``server_cores``: the server's CPU (user + system from ``/proc/<pid>/stat``,
  summed over its process tree: granian runs its worker in a child process)
  over the measured window, divided by the window's wall time;
- ``frames_counted_per_s``: frames the app counted (read from ``GET /count``
  before and after the window) per second;
- ``server_us_per_frame``: server CPU microseconds per counted frame, the
  idle cost of the open sockets included (that is part of the workload);
- ``client_cores``: the driver's own CPU (it shares the machine: if it nears
  one core, or ``frames_sent_per_s`` falls short of ``offered_rate``, the
  client is the bottleneck and the figures understate the load);
- ``server_rss_mb``: the server tree's resident memory at the window's end.

The app is pure ASGI (``--app raw``, the default) or Starlette's ``WebSocket``
(``--app starlette``, as the gateway uses): accept, then ``receive()`` in a
loop, ``json.loads`` each text frame and count it. Servers:

- ``uvicorn-websockets``: uvicorn, ws="websockets" (legacy implementation),
  loop="uvloop", http="httptools";
- ``uvicorn-sansio``: the same with ws="websockets-sansio" (uvicorn >= 0.35);
- ``uvicorn-gateway``: the same with the gateway's own protocol over it
  (``gateway.ws.transport``, what ``panic-alert serve`` runs): frames cut in
  ``data_received``, and the app counts each text frame in the text handler it
  registers rather than through ``receive()`` (needs this repository's packages);
- ``uvicorn-wsproto``: the same with ws="wsproto";
- ``granian``: granian's ASGI interface, 1 worker (a child process of the
  server's), loop uvloop, backpressure raised to 65536 as a precaution (its
  default, backlog / workers, caps concurrent requests; granian 2.8.9 served
  100 WebSockets with it at 50, so upgraded sockets do not seem to hold it);
- ``hypercorn``: hypercorn's asyncio worker (h11 + wsproto) on uvloop.

Server-side pings are off everywhere (uvicorn pings every 20 s by default,
granian and hypercorn not at all). Servers whose packages the interpreter
lacks are listed under ``unavailable``. Run it from the repository's root,
with the project's venv (uvicorn only) or a separate one holding them all::

  .venv/bin/python bench/ws_stack.py [--servers uvicorn-websockets,uvicorn-sansio]
  /tmp/wsvenv/bin/python bench/ws_stack.py [--app starlette] [--sockets 5000]
      [--rate 5000] [--warmup 5] [--seconds 15] [--deflate] [--settle-load 1.0]

Progress goes to stderr. The machine has few cores: run nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import importlib.metadata
import importlib.util
import json
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

SERVERS = (
    "uvicorn-websockets",
    "uvicorn-sansio",
    "uvicorn-gateway",
    "uvicorn-wsproto",
    "granian",
    "hypercorn",
)
#: uvicorn's ``ws`` implementation under each uvicorn server (``uvicorn-gateway``
#: runs the gateway's protocol over websockets-sansio).
UVICORN_WS = {
    "uvicorn-websockets": "websockets",
    "uvicorn-sansio": "websockets-sansio",
    "uvicorn-gateway": "websockets-sansio",
    "uvicorn-wsproto": "wsproto",
}
APPS = ("raw", "starlette")
HOST = "127.0.0.1"
BACKLOG = 2048
#: Granian's cap on concurrent requests per worker (a precaution: see the docstring).
GRANIAN_BACKPRESSURE = 65536
FRAME = (
    '{"type":"location","ref":"%d","data":{"latitude":52.5,"longitude":13.4,'
    '"accuracy_m":12.0,"recorded_at":"2026-12-06T05:00:00.123456+00:00"}}'
)
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

#: Text frames the app has parsed, since the server started.
FRAMES = 0


def log(message: str) -> None:
    print(f"[ws_stack] {message}", file=sys.stderr, flush=True)


def raise_nofile() -> int:
    """Raise the open-file limit to the hard limit; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return hard
    return soft


# --- the apps ---------------------------------------------------------------------------------


async def _http(scope: Scope, send: Send) -> None:
    if scope.get("path") == "/count":
        status, body = 200, str(FRAMES).encode()
    else:
        status, body = 404, b"not found"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _count(text: str) -> None:
    global FRAMES
    json.loads(text)
    FRAMES += 1


async def _count_until_disconnect(receive: Receive) -> None:
    """Parse and count every text frame ``receive`` gives, until the disconnect."""
    while True:
        message = await receive()
        if message["type"] == "websocket.receive":
            text = message.get("text")
            if text is not None:
                _count(text)
        elif message["type"] == "websocket.disconnect":
            return


#: The scope extension of the gateway's protocol (``gateway.ws.transport.TEXT_HANDLER``),
#: set by ``serve`` when it runs ``uvicorn-gateway``.
TEXT_HANDLER: str | None = None


def _counted(text: str) -> bool:
    """A text handler: count the frame; taken."""
    _count(text)
    return True


def _register_counter(scope: Scope) -> None:
    """Count text frames in the server's text handler, where the server offers one."""
    register = scope.get("extensions", {}).get(TEXT_HANDLER) if TEXT_HANDLER else None
    if register is not None:
        register(_counted)


async def _raw_socket(scope: Scope, receive: Receive, send: Send) -> None:
    if (await receive())["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    _register_counter(scope)
    await _count_until_disconnect(receive)


async def _starlette_socket(scope: Scope, receive: Receive, send: Send) -> None:
    from starlette.websockets import WebSocket

    ws = WebSocket(scope, receive=receive, send=send)
    await ws.accept()
    _register_counter(scope)
    await _count_until_disconnect(ws.receive)


def _app(
    socket: Callable[[Scope, Receive, Send], Awaitable[None]],
) -> Callable[[Scope, Receive, Send], Coroutine[Any, Any, None]]:
    """An ASGI app: sockets to ``socket``, ``GET /count`` and the lifespan as above."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            await socket(scope, receive, send)
        elif kind == "http":
            await _http(scope, send)
        elif kind == "lifespan":
            await _lifespan(receive, send)

    return app


#: Pure ASGI: accept, then parse and count every text frame until the disconnect.
raw_app = _app(_raw_socket)
#: The same through ``starlette.websockets.WebSocket``, as the gateway reads its sockets.
starlette_app = _app(_starlette_socket)


APP_OBJECTS: dict[str, Callable[[Scope, Receive, Send], Coroutine[Any, Any, None]]] = {
    "raw": raw_app,
    "starlette": starlette_app,
}


# --- the servers ------------------------------------------------------------------------------


def _has(*modules: str) -> bool:
    return all(importlib.util.find_spec(module) is not None for module in modules)


def _version(*dists: str) -> str:
    parts = []
    for dist in dists:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            parts.append(f"{dist} {importlib.metadata.version(dist)}")
    return ", ".join(parts)


def unavailable_reason(server: str, app: str) -> str | None:
    """Why this interpreter cannot run the server (None: it can)."""
    if app == "starlette" and not _has("starlette"):
        return "starlette is not installed"
    if server.startswith("uvicorn-"):
        missing = [m for m in ("uvicorn", "uvloop", "httptools") if not _has(m)]
        if missing:
            return f"not installed: {', '.join(missing)}"
        ws = UVICORN_WS.get(server)
        if ws is None:
            return f"unknown server {server!r}"
        from uvicorn.config import WS_PROTOCOLS

        if ws not in WS_PROTOCOLS:
            return f"uvicorn {_version('uvicorn')} has no ws={ws!r}"
        lib = "wsproto" if ws == "wsproto" else "websockets"
        if not _has(lib):
            return f"{lib} is not installed"
        if server == "uvicorn-gateway" and _gateway_protocol() is None:
            return "the gateway's packages do not import here (run it with the project's venv)"
        return None
    if server == "granian":
        return None if _has("granian", "uvloop") else "granian (or uvloop) is not installed"
    if server == "hypercorn":
        return None if _has("hypercorn", "uvloop") else "hypercorn (or uvloop) is not installed"
    return f"unknown server {server!r}"


def _gateway_protocol() -> type[asyncio.Protocol] | None:
    """The gateway's protocol class, with its scope extension noted in TEXT_HANDLER."""
    global TEXT_HANDLER
    # Run as a script, this file's folder comes first on sys.path, and its
    # bench/gateway.py would hide the gateway package: the repository's root instead.
    root = Path(__file__).resolve().parent.parent
    sys.path[:] = [str(root)] + [p for p in sys.path if Path(p or ".").resolve() != root / "bench"]
    try:
        from gateway.ws.transport import TEXT_HANDLER as extension
        from gateway.ws.transport import FastWebSocketProtocol
    except ImportError:
        return None
    TEXT_HANDLER = extension
    return FastWebSocketProtocol


def server_version(server: str) -> str:
    if server == "uvicorn-wsproto":
        return _version("uvicorn", "wsproto", "uvloop", "httptools")
    if server.startswith("uvicorn-"):
        return _version("uvicorn", "websockets", "uvloop", "httptools")
    if server == "granian":
        return _version("granian", "uvloop")
    return _version("hypercorn", "wsproto", "h11", "uvloop")


def serve(server: str, app_name: str, port: int) -> None:
    """Run the app under one server until SIGTERM (this process, one worker)."""
    raise_nofile()
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    reason = unavailable_reason(server, app_name)
    if reason is not None:
        log(f"{server}: unavailable: {reason}")
        sys.exit(3)
    app = APP_OBJECTS[app_name]
    if server.startswith("uvicorn-"):
        import uvicorn

        ws: str | type[asyncio.Protocol] | None = (
            _gateway_protocol() if server == "uvicorn-gateway" else UVICORN_WS[server]
        )
        config = uvicorn.Config(
            app,
            host=HOST,
            port=port,
            ws=ws,
            loop="uvloop",
            http="httptools",
            lifespan="on",
            log_level="warning",
            access_log=False,
            ws_ping_interval=None,
            ws_ping_timeout=None,
            backlog=BACKLOG,
        )
        uvicorn.Server(config).run()
    elif server == "granian":
        from granian import Granian
        from granian.constants import Interfaces, Loops
        from granian.log import LogLevels

        Granian(
            f"{Path(__file__).resolve()}:{app_name}_app",
            address=HOST,
            port=port,
            interface=Interfaces.ASGI,
            workers=1,
            loop=Loops.uvloop,
            log_level=LogLevels.warning,
            backlog=BACKLOG,
            backpressure=GRANIAN_BACKPRESSURE,
        ).serve()
    elif server == "hypercorn":
        import uvloop
        from hypercorn.asyncio import serve as hypercorn_serve
        from hypercorn.config import Config

        hyper_config = Config()
        hyper_config.bind = [f"{HOST}:{port}"]
        hyper_config.loglevel = "WARNING"
        hyper_config.accesslog = None
        hyper_config.backlog = BACKLOG
        hyper_config.websocket_ping_interval = None

        async def main() -> None:
            stop = asyncio.Event()
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
            await hypercorn_serve(app, hyper_config, shutdown_trigger=stop.wait)  # type: ignore[arg-type,unused-ignore]

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main())


# --- /proc accounting -------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (field 3 first)."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    return raw[raw.rindex(")") + 2 :].split()


def process_tree(root: int) -> list[int]:
    """The root and every descendant of it, from each process's parent in /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                children.setdefault(int(_stat_fields(int(entry))[1]), []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def tree_cpu_seconds(root: int) -> tuple[float, int]:
    """User + system CPU seconds of the tree's live processes, and how many there are."""
    ticks, count = 0, 0
    for pid in process_tree(root):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = _stat_fields(pid)
            ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
            count += 1
    return ticks / CLK_TCK, count


def tree_rss_mb(root: int) -> float:
    total = 0
    for pid in process_tree(root):
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return total * PAGE / 2**20


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# --- the driver -------------------------------------------------------------------------------


@dataclass
class Errors:
    connect: int = 0
    send: int = 0
    closed: int = 0
    first: str | None = None

    def note(self, kind: str, exc: BaseException) -> None:
        setattr(self, kind, getattr(self, kind) + 1)
        if self.first is None:
            self.first = f"{kind}: {exc!r}"[:300]


@dataclass
class Snapshot:
    wall: float
    server_cpu: float
    #: Processes in the server's tree (granian: a supervisor and its worker).
    server_processes: int
    client_cpu: float
    counted: int
    sent: int


async def fetch_count(port: int) -> int:
    async with asyncio.timeout(10):
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            writer.write(b"GET /count HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            await writer.drain()
            data = await reader.read()
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"/count answered {head[:40]!r}")
    return int(body.strip())


def wait_ready(proc: subprocess.Popen[bytes], port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering /count")
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection(HOST, port, timeout=2)
            try:
                conn.request("GET", "/count")
                if conn.getresponse().status == 200:
                    return
            finally:
                conn.close()
        if time.monotonic() > deadline:
            raise RuntimeError(f"/count did not answer within {timeout:.0f} s")
        time.sleep(0.2)


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL to the session the server was started in (its workers too)."""
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        log("server ignored SIGTERM for 10 s, killing it")
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


async def client_phase(pid: int, port: int, args: argparse.Namespace) -> dict[str, Any]:
    """Connect, send, measure; returns the measured part of one server's result."""
    from websockets.asyncio.client import ClientConnection, connect
    from websockets.exceptions import ConnectionClosed

    errors = Errors()
    conns: list[ClientConnection] = []
    uri = f"ws://{HOST}:{port}/ws"

    async def open_one() -> None:
        try:
            ws = await connect(
                uri,
                ping_interval=None,
                max_queue=4,
                compression="deflate" if args.deflate else None,
                open_timeout=30,
                close_timeout=5,
            )
        except Exception as exc:
            errors.note("connect", exc)
        else:
            conns.append(ws)

    started = time.monotonic()
    for first in range(0, args.sockets, args.connect_batch):
        size = min(args.connect_batch, args.sockets - first)
        await asyncio.gather(*(open_one() for _ in range(size)))
        await asyncio.sleep(args.connect_pause)
    log(
        f"{len(conns)} sockets open in {time.monotonic() - started:.1f} s ({errors.connect} failed)"
    )
    if not conns:
        return {"errors": vars(errors)}
    response = conns[0].response
    extension = response.headers.get("Sec-WebSocket-Extensions") if response else None

    loop = asyncio.get_running_loop()
    sent = 0
    load_until = loop.time() + args.warmup + args.seconds + 0.5

    async def send_loop() -> None:
        nonlocal sent
        start, turn = loop.time(), 0
        while conns:
            now = loop.time()
            if now >= load_until:
                return
            for _ in range(int((now - start) * args.rate) - sent):
                if not conns:
                    return
                turn %= len(conns)
                ws = conns[turn]
                try:
                    await ws.send(FRAME % sent)
                except Exception as exc:
                    errors.note("closed" if isinstance(exc, ConnectionClosed) else "send", exc)
                    conns.pop(turn)
                    continue
                sent += 1
                turn += 1
            await asyncio.sleep(0.005)

    async def snapshot() -> Snapshot:
        counted = await fetch_count(port)
        server_cpu, processes = tree_cpu_seconds(pid)
        return Snapshot(time.monotonic(), server_cpu, processes, own_cpu_seconds(), counted, sent)

    sender = asyncio.create_task(send_loop())
    try:
        await asyncio.sleep(args.warmup)
        before = await snapshot()
        log(f"warm ({before.counted} frames counted), measuring {args.seconds:g} s")
        await asyncio.sleep(args.seconds)
        after = await snapshot()
        rss = tree_rss_mb(pid)
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        log(f"closing {len(conns)} sockets")
        closing = [asyncio.ensure_future(ws.close()) for ws in conns]
        if closing:
            _, pending = await asyncio.wait(closing, timeout=10)
            for task in pending:
                task.cancel()
            for ws in conns:
                ws.transport.abort()

    wall = after.wall - before.wall
    counted = after.counted - before.counted
    server_cpu = after.server_cpu - before.server_cpu
    return {
        "frames_counted_per_s": round(counted / wall, 1),
        "frames_sent_per_s": round((after.sent - before.sent) / wall, 1),
        "server_cores": round(server_cpu / wall, 3),
        "server_us_per_frame": round(server_cpu / counted * 1e6, 2) if counted else None,
        "server_rss_mb": round(rss, 1),
        "server_processes": after.server_processes,
        "client_cores": round((after.client_cpu - before.client_cpu) / wall, 3),
        "window_s": round(wall, 2),
        "sockets_open": len(conns),
        "extension": extension,
        "errors": vars(errors),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def settle(max_load: float) -> None:
    if max_load <= 0:
        return
    while (load := loadavg()[0]) >= max_load:
        log(f"load {load:.2f} >= {max_load:g}, waiting")
        time.sleep(10)


def run_client(coro: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def bench_server(server: str, args: argparse.Namespace) -> dict[str, Any]:
    settle(args.settle_load)
    result: dict[str, Any] = {
        "server": server,
        "version": server_version(server),
        "app": args.app,
        "sockets": args.sockets,
        "offered_rate": args.rate,
        "frames_counted_per_s": None,
        "server_cores": None,
        "server_us_per_frame": None,
        "server_rss_mb": None,
        "client_cores": None,
        "loadavg_before": loadavg(),
        "errors": {},
    }
    port = free_port()
    log(f"{server}: starting on port {port} (load {result['loadavg_before'][0]:.2f})")
    command = [sys.executable, str(Path(__file__).resolve()), "--serve", server]
    command += ["--port", str(port), "--app", args.app]
    proc = subprocess.Popen(command, start_new_session=True)
    try:
        wait_ready(proc, port, timeout=30)
        result.update(run_client(client_phase(proc.pid, port, args)))
    except Exception as exc:  # one server's failure is reported, not fatal
        result["errors"]["fatal"] = repr(exc)[:300]
        log(f"{server}: failed: {exc!r}")
    finally:
        stop_server(proc)
    log(
        f"{server}: {result['frames_counted_per_s']} frames/s counted, "
        f"{result['server_cores']} server cores, {result['server_us_per_frame']} us/frame"
    )
    return result


def drive(args: argparse.Namespace) -> None:
    nofile = raise_nofile()
    if nofile < args.sockets + 100:
        log(f"open-file limit {nofile} is below --sockets {args.sockets} + 100")
    if importlib.util.find_spec("websockets") is None:
        sys.exit("the driver needs the websockets client library")
    wanted = [s.strip() for s in args.servers.split(",") if s.strip()] if args.servers else SERVERS
    unavailable: dict[str, str] = {}
    runnable = []
    for server in wanted:
        reason = unavailable_reason(server, args.app)
        if reason is None:
            runnable.append(server)
        else:
            unavailable[server] = reason
            log(f"{server}: unavailable: {reason}")
    results = []
    try:
        for server in runnable:
            results.append(bench_server(server, args))
    finally:
        report = {
            "machine": {
                "cores": os.cpu_count(),
                "affinity": len(os.sched_getaffinity(0)),
                "python": platform.python_version(),
                "interpreter": sys.executable,
                "platform": platform.platform(),
                "nofile": nofile,
            },
            "params": {
                "app": args.app,
                "sockets": args.sockets,
                "rate": args.rate,
                "warmup_s": args.warmup,
                "seconds": args.seconds,
                "deflate": args.deflate,
                "client": _version("websockets", "uvloop"),
            },
            "unavailable": unavailable,
            "results": results,
        }
        print(json.dumps(report, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--serve", choices=SERVERS, help="run one server (the driver's child)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--app", choices=APPS, default="raw")
    parser.add_argument("--servers", default="", help="comma-separated (default: all available)")
    parser.add_argument("--sockets", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=5000.0, help="frames/s over all sockets")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--connect-batch", type=int, default=100)
    parser.add_argument("--connect-pause", type=float, default=0.05)
    parser.add_argument("--deflate", action="store_true", help="offer permessage-deflate")
    parser.add_argument(
        "--settle-load",
        type=float,
        default=0.0,
        help="before each server, wait until the 1-minute loadavg is below this (0: don't)",
    )
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.app, args.port)
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    drive(args)


if __name__ == "__main__":
    main()
