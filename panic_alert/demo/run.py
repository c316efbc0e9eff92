"""The demo's driver: simulated responders and users living through the real
API of a running server, with the Python client only (``panic_alert_client``).

A thin shell: every decision (where to drive or walk, what to answer, when
to raise or cancel) is :mod:`panic_alert.demo.plan`'s; the people are
:mod:`panic_alert.demo.people`, their shared world (clock, tally, output)
:mod:`panic_alert.demo.world`; this module signs everyone in
(:mod:`panic_alert.demo.accounts`), runs them, prints the progress line and
stops them. Simulated time runs ``speed`` times faster than the clock.

Guarantees:

* Expected races (an offer taken by another responder, an alert cancelled
  while its responder drives) are not errors (``plan.RACE_CODES``); a
  location fix that cannot be sent while the socket reconnects is skipped.
  Anything else a person meets is an error: one ``demo: error:`` line, that
  person stops, and the demo exits 1 at the end.
* Stopping (``--duration`` over, SIGINT, SIGTERM) is clean: users cancel
  their open alerts with their PIN, then responders go offline, then every
  socket and connection is closed.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Sequence
from typing import TextIO

from panic_alert.demo import plan
from panic_alert.demo.accounts import Accounts, DemoError, MakeAdmin, StateFile
from panic_alert.demo.people import Responder, User
from panic_alert.demo.world import Demo, Options
from panic_alert_client import AsyncClient, ClientError, TransportError

__all__ = ["Options", "run_demo"]

EXIT_OK = 0
EXIT_ERRORS = 1

#: Real seconds between two progress lines.
PROGRESS_EVERY_S = 5.0
#: The most the clean stop may take (real seconds).
STOP_TIMEOUT_S = 45.0


async def run_demo(
    options: Options,
    make_admin: MakeAdmin,
    *,
    err: TextIO,
    handle_signals: bool = True,
) -> int:
    """Set the accounts up, run the city until the duration or a signal, stop cleanly.

    Returns 0, or 1 when any person met an unexpected error; raises
    :class:`DemoError` when the setup fails (no server, no administrator).
    """
    demo = Demo(options, err=err)
    if handle_signals:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, demo.stopping.set)
    state_file = StateFile(options.state_path)
    state = state_file.load()
    accounts = Accounts(options.url, state, state_file, err=err, stopping=demo.stopping)
    clients: list[AsyncClient] = []
    try:
        try:
            demo.say(f"setting up {options.responders} responders and {options.users} users")
            admin = await accounts.admin(options.admin_email, options.admin_password, make_admin)
            clients.append(admin)
            responders = await accounts.sign_in_all("responder", options.responders)
            clients.extend(account.client for account in responders)
            users = await accounts.sign_in_all("user", options.users)
            clients.extend(account.client for account in users)
        except DemoError:
            if demo.stopping.is_set():
                demo.say("stopped during the setup")
                return EXIT_OK
            raise
        except TransportError as exc:
            raise DemoError(f"the server at {options.url} did not answer: {exc}") from exc
        except ClientError as exc:
            raise DemoError(f"the setup failed: {type(exc).__name__}: {exc}") from exc
        demo.responders = [Responder(demo, account) for account in responders]
        demo.users = [User(demo, account, state.cancel_pin) for account in users]
        demo.started = demo.clock()
        await _run(demo)
    finally:
        await _close(clients)
    tally = demo.tally()
    demo.say(f"stopped. {plan.progress_line(tally)}")
    return EXIT_ERRORS if tally.errors else EXIT_OK


async def _close(clients: Sequence[AsyncClient]) -> None:
    await asyncio.gather(*(client.aclose() for client in clients), return_exceptions=True)


async def _run(demo: Demo) -> None:
    people: list[Responder | User] = [*demo.responders, *demo.users]
    lives = [asyncio.create_task(demo.guarded(person.name, person.live)) for person in people]
    progress = asyncio.create_task(_progress(demo))
    duration = demo.options.duration_s
    try:
        await asyncio.wait_for(demo.stopping.wait(), duration)
    except TimeoutError:
        demo.stopping.set()
    demo.say("stopping: users cancel their open alerts, responders go offline")
    try:
        async with asyncio.timeout(STOP_TIMEOUT_S):
            await _cancel_all(lives)
            await _each(demo, "stopping", [user.stop for user in demo.users])
            await _each(demo, "stopping", [responder.stop for responder in demo.responders])
    except TimeoutError:
        demo.say(f"the clean stop took longer than {STOP_TIMEOUT_S:.0f}s; closing anyway")
    finally:
        await _cancel_all([progress])


async def _each(demo: Demo, what: str, calls: Sequence[Callable[[], Awaitable[None]]]) -> None:
    gate = asyncio.Semaphore(32)

    async def one(call: Callable[[], Awaitable[None]]) -> None:
        async with gate:
            try:
                await call()
            except Exception as exc:
                demo.error(what, exc)

    await asyncio.gather(*(one(call) for call in calls))


async def _cancel_all(tasks: Sequence[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _progress(demo: Demo) -> None:
    while await demo.pause(PROGRESS_EVERY_S):
        demo.say(plan.progress_line(demo.tally()))
