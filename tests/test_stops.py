"""Ctrl-C and SIGTERM on ``send`` and ``recv``: one line, the conventional status, and a
quiet exit while worker threads finish."""

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from hfstream.apps.stops import _exit_now, run_until_stopped

ROOT = Path(__file__).resolve().parents[1]


def test_a_stop_the_command_does_not_catch_is_one_line_and_a_quiet_exit(capsys):
    async def opening(args, stop):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while, say, a transport opens
        await asyncio.sleep(60)  # a safety net: the signal cancels this at once
        raise AssertionError("not stopped")

    try:
        status = run_until_stopped(opening, argparse.Namespace(command="send"))
        # Until the process exits (it waits for worker threads), a signal ends it at once
        # instead of raising KeyboardInterrupt inside that wait.
        assert signal.getsignal(signal.SIGINT) is _exit_now
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    assert status == 130
    assert capsys.readouterr().err == "hfstream send: stopped by SIGINT\n"


def test_ctrl_c_on_send_is_one_line_and_status_130():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(120)  # a safety net for a hung sender, not a timing check
        port = rx.getsockname()[1]
        key = "ab" * 16  # keyed: no unauthenticated-mode warning on stderr
        proc = subprocess.Popen(
            [sys.executable, "-m", "hfstream", "send", "pattern", "--frames", "1000",
             "--fps", "5", "--to", f"127.0.0.1:{port}", "--key", key],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            rx.recv(2048)  # sending: the model is loaded and the handlers are set
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=120)
        finally:
            proc.kill()
    assert proc.returncode == 130
    assert err.startswith("hfstream send: stopped by SIGINT after ") and err.count("\n") == 1
