"""bench.live.cancelled_on_sigterm: a bench killed with SIGTERM (``timeout``,
``kill``) still runs its ``finally`` blocks, which stop ``serve`` and drop the
scratch databases. A real process and a real signal."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    sys.path.insert(0, sys.argv[1])
    from bench.live import cancelled_on_sigterm

    async def main():
        with cancelled_on_sigterm():
            try:
                print("ready", flush=True)
                await asyncio.sleep(60)
            finally:
                print("cleaned up", flush=True)

    asyncio.run(main())
    """
)


def test_sigterm_runs_the_finally_blocks_and_ends_the_bench() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(ROOT)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGTERM)
        out, _err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert out.strip() == "cleaned up"
    assert proc.returncode != 0  # ended by the signal's cancel, not as a clean run
