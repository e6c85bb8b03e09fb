"""Stopping ``send`` and ``recv`` on Ctrl-C or SIGTERM: one line, no traceback.

The first signal cancels the command's task; the command catches the cancellation at the
point where it can still finish (``recv`` writes what it has received) and returns the
conventional status, 128 + the signal number; where the command does not catch it, the
line is said here. A second signal ends the process at once, for a user who does not want
to wait for the writing, and so does a signal while the stopped process waits for its
worker threads (an encode or a decode in progress) before it exits.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass
class Stop:
    """Which signal asked the command to stop, if any."""

    signal: int | None = None

    @property
    def requested(self) -> bool:
        return self.signal is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signal).name if self.signal is not None else ""

    @property
    def exit_status(self) -> int:
        return 128 + (self.signal or 0)

    def acknowledge(self) -> None:
        """Call after catching the cancellation, so later timeouts in the task still work."""
        task = asyncio.current_task()
        uncancel = getattr(task, "uncancel", None)  # Python 3.11+
        if uncancel is not None:
            while task is not None and task.cancelling():
                uncancel()


Command = Callable[[argparse.Namespace, Stop], Awaitable[int]]


def run_until_stopped(command: Command, args: argparse.Namespace) -> int:
    stop = Stop()
    status = asyncio.run(_run(command, args, stop))
    if stop.requested and threading.current_thread() is threading.main_thread():
        # The process exits next, after the worker threads finish what they run (an
        # encode or a decode cannot be cut short). A signal meanwhile would raise
        # KeyboardInterrupt inside that wait ("Exception ignored in: <module 'threading'>",
        # then a native abort): it ends the process at once instead, as a second signal
        # does while the command runs.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, _exit_now)
    return status


async def _run(command: Command, args: argparse.Namespace, stop: Stop) -> int:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    # Signal handlers can only be set from the main thread; tests call main() from others.
    handled = []
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, _on_signal, stop, task, sig)
            handled.append(sig)
    try:
        return await command(args, stop)
    except asyncio.CancelledError:
        # The stop reached the command where it does not catch it (opening a transport,
        # closing one): the one line is said here.
        if not stop.requested:
            raise
        print(f"hfstream {args.command}: stopped by {stop.name}", file=sys.stderr)
        return stop.exit_status
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)


def _on_signal(stop: Stop, task: asyncio.Task, sig: int) -> None:
    if stop.requested:
        _exit_now(sig)
    stop.signal = sig
    task.cancel()


def _exit_now(sig: int, _frame: object = None) -> None:
    print(f"\n{signal.Signals(sig).name} again: stopping now", file=sys.stderr, flush=True)
    os._exit(128 + sig)
