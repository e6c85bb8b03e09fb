import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hfstream.apps import args as cli_args
from hfstream.apps.cli import main
from hfstream.apps.images import read_rgb
from hfstream.protocol.schedules import _LABELS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _shared_model(codec, monkeypatch):
    """Commands get the session's already loaded shipped model instead of reloading it."""
    from hfstream.codec.hybrid import HybridCodec

    load = HybridCodec.from_pretrained
    monkeypatch.setattr(
        HybridCodec,
        "from_pretrained",
        classmethod(lambda cls, p=None: codec if p is None else load(p)),
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_bound(port: int) -> None:
    """Until a receiver holds the UDP port (binding it here then fails)."""
    import time

    for _ in range(12000):  # a safety net of 120 s for a hung receiver, not a timing check
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return
        time.sleep(0.01)
    raise AssertionError(f"nothing bound UDP port {port}")


def test_encode_decode_round_trip(tmp_path, small_image, capsys):
    src, hfs, out = tmp_path / "in.png", tmp_path / "x.hfs", tmp_path / "out.png"
    Image.fromarray(small_image).save(src)
    assert main(["encode", str(src), str(hfs), "--schedule", "1_4"]) == 0
    assert "bpp" in capsys.readouterr().out
    assert main(["decode", str(hfs), str(out), "--steps", "2"]) == 0
    assert np.asarray(Image.open(out)).shape == small_image.shape


def test_encode_to_a_budget(tmp_path, small_image, capsys):
    src, hfs = tmp_path / "in.png", tmp_path / "x.hfs"
    Image.fromarray(small_image).save(src)
    budget = 0.2 * small_image.shape[0] * small_image.shape[1] / 8
    assert main(["encode", str(src), str(hfs), "--bpp", "0.2"]) == 0
    assert hfs.stat().st_size <= budget  # the budget counts packet headers: the file is less
    assert main(["encode", str(src), str(hfs), "--bpp", "0.2", "--schedule", "1_4"]) == 2
    assert "--bpp plans" in capsys.readouterr().err
    assert main(["encode", str(src), str(hfs), "--rung", "99"]) == 2
    assert "--rung 99" in capsys.readouterr().err


def test_a_budget_under_the_lowest_rung_codes_below_size(tmp_path, small_image, capsys):
    src, hfs, out = tmp_path / "in.png", tmp_path / "x.hfs", tmp_path / "out.png"
    Image.fromarray(small_image).save(src)
    assert main(["encode", str(src), str(hfs), "--bpp", "0.01", "--refine-steps", "0"]) == 0
    assert re.search(r"coded at 1/[24] of its size", capsys.readouterr().out)
    assert main(["decode", str(hfs), str(out)]) == 0
    assert np.asarray(Image.open(out)).shape == small_image.shape


@pytest.mark.parametrize(
    "bpp, note", [("0.001", "is below the least"), ("5", "is above the most"), ("0.2", None)]
)
def test_an_unreachable_budget_says_what_was_used(tmp_path, small_image, capsys, bpp, note):
    src, hfs = tmp_path / "in.png", tmp_path / "x.hfs"
    Image.fromarray(small_image).save(src)
    assert main(["encode", str(src), str(hfs), "--bpp", bpp, "--refine-steps", "0"]) == 0
    err = capsys.readouterr().err
    if note is None:
        assert "note" not in err
    else:
        assert err.startswith(f"hfstream encode: note: --bpp {bpp} {note}")
        assert err.count("\n") == 1 and re.search(r"coded at \d\.\d{4} bpp on the wire", err)


def test_bad_files_exit_2_with_one_line(tmp_path, small_image, capsys):
    src, hfs = tmp_path / "in.png", tmp_path / "x.hfs"
    Image.fromarray(small_image).save(src)
    main(["encode", str(src), str(hfs)])
    capsys.readouterr()
    hfs.write_bytes(hfs.read_bytes()[:40])
    assert main(["decode", str(hfs), str(tmp_path / "o.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "truncated" in err and "Traceback" not in err
    assert main(["decode", str(tmp_path / "missing.hfs"), str(tmp_path / "o.png")]) == 2
    assert "No such file" in capsys.readouterr().err
    (tmp_path / "junk.png").write_bytes(b"not an image")
    assert main(["encode", str(tmp_path / "junk.png"), str(hfs)]) == 2
    assert "error" in capsys.readouterr().err
    assert main(["encode", str(src), str(hfs), "--schedule", "1_3"]) == 2
    err = capsys.readouterr().err
    assert 'Invalid schedule "1_3"' in err and "auto" in err


def test_encode_never_overwrites_its_input_and_reads_only_images(tmp_path, small_image, capsys):
    src = tmp_path / "photo.png"
    Image.fromarray(small_image).save(src)
    before = src.read_bytes()
    assert main(["encode", str(src), str(src)]) == 2
    err = capsys.readouterr().err
    assert 'written as .hfs, not ".png"' in err and err.count("\n") == 1
    assert src.read_bytes() == before
    (tmp_path / "clip.mp4").write_bytes(b"")
    assert main(["encode", str(tmp_path / "clip.mp4"), str(tmp_path / "x.hfs")]) == 2
    assert "is a video: encode codes one picture" in capsys.readouterr().err
    (tmp_path / "notes.png").write_text("not a picture")
    assert main(["encode", str(tmp_path / "notes.png"), str(tmp_path / "x.hfs")]) == 2
    assert "notes.png is not an image" in capsys.readouterr().err
    assert not (tmp_path / "x.hfs").exists()


def test_output_hfs_refuses_the_input_itself(tmp_path):
    src = tmp_path / "odd.hfs"
    src.write_bytes(b"")
    with pytest.raises(ValueError, match="is the input"):
        cli_args.output_hfs(str(src), source=src)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["decode", "IN.hfs", "out.png", "--steps", "0"], "--steps: must be at least 1, got 0"),
        (["send", "pattern", "--rate", "0"], "--rate: must be a positive number, got 0"),
        (["send", "pattern", "--fps", "0"], "--fps: must be a positive number, got 0"),
        (["recv", "--fps", "-1"], "--fps: must be a positive number, got -1"),
        (["recv", "--frames", "x"], '--frames: "x" is not a whole number'),
        (["demo", "--loss", "1.5"], "--loss: must be at least 0 and below 1, got 1.5"),
        (["decode", "IN.hfs", "x.jpgg"], 'cannot write ".jpgg" images, use .png'),
        (["decode", "IN.hfs", "nodir/x.png"], "no folder"),
        (["encode", "IN.png", "IN.png"], 'written as .hfs, not ".png"'),
        (["encode", "IN.png", "o.hfs", "--max-megapixels", "0.01"], "0.01 Mpx limit"),
        (["send", "pattern", "--to", "no-such-host.invalid:5000"], "cannot resolve host"),
    ],
)
def test_bad_arguments_exit_2_with_one_line_before_any_work(
    tmp_path, small_image, capsys, monkeypatch, argv, message
):
    """Checked before the model loads: an output path that cannot be written fails even
    though the input would decode (the .hfs here is junk, which would fail later)."""
    monkeypatch.chdir(tmp_path)
    Image.fromarray(small_image).save("IN.png")
    Path("IN.hfs").write_bytes(b"junk")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_cli_schedules_are_the_codecs_and_auto():
    assert set(cli_args.SCHEDULES) == {"auto", *_LABELS.values()}


def test_help_and_argument_errors_do_not_import_torch():
    code = (
        "import sys; from hfstream.apps.cli import main\n"
        "for argv in (['--help'], ['send', '--help'], ['decode', 'a', 'b', '--steps', '0']):\n"
        "    assert main(argv) == (0 if argv[-1] == '--help' else 2)\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "usage: hfstream" in r.stdout and "--steps: must be at least 1" in r.stderr


def test_alpha_and_gray_inputs_are_converted_with_a_notice(tmp_path, small_image, capsys):
    Image.fromarray(small_image).convert("RGBA").save(tmp_path / "a.png")
    Image.fromarray(small_image).convert("L").save(tmp_path / "g.png")
    Image.fromarray(small_image).save(tmp_path / "c.png")
    assert read_rgb(tmp_path / "a.png", 16, "x").shape == small_image.shape
    assert "alpha channel: transparency dropped" in capsys.readouterr().err
    gray = read_rgb(tmp_path / "g.png", 16, "x")
    assert (gray[..., 0] == gray[..., 2]).all()
    assert "grayscale" in capsys.readouterr().err
    assert (read_rgb(tmp_path / "c.png", 16, "x") == small_image).all()
    assert capsys.readouterr().err == ""


def test_send_without_a_receiver_warns_and_fails(tmp_path, small_image, capsys):
    src = tmp_path / "in.png"
    Image.fromarray(small_image).save(src)
    to = f"127.0.0.1:{_free_port()}"  # nobody listens there
    assert main(["send", str(src), "--to", to, "--report-wait", "0.3"]) == 1
    err = capsys.readouterr().err
    assert "no receiver report within 0.3 s" in err and to in err


def test_send_and_recv_over_udp(tmp_path, capsys):
    """The two commands in two threads (each runs its own event loop), UDP on loopback,
    live, two streams one after the other into one ``recv --keep-listening``."""
    port = _free_port()
    out = tmp_path / "recv"
    result = {}

    def receive():
        result["rc"] = main(
            [
                "recv",
                "--listen",
                f"127.0.0.1:{port}",
                "--frames",
                "2",
                "--fps",
                "5",
                "--timeout",
                "20",
                "--out",
                str(out),
                "--live",
                "--keep-listening",
                "--wait",
                "8",  # for each stream's first picture: the third never comes
            ]
        )

    t = threading.Thread(target=receive)
    t.start()
    import time

    time.sleep(1.0)
    send = ["send", "pattern", "--frames", "2", "--fps", "5", "--live"]
    for i in range(2):
        if i:  # a receiver moves only to a session that started in a later second
            time.sleep(1.1)
        assert main([*send, "--to", f"127.0.0.1:{port}"]) == 0
    t.join(120)
    assert result["rc"] == 0
    for stream in ("stream001", "stream002"):
        assert (out / stream / "received.mp4").exists()
        rows = (out / stream / "frames.csv").read_text().splitlines()
        assert rows[0] == (
            "frame,stage,latency_ms,first_picture_ms,updates,capture_to_first_ms,capture_to_best_ms"
        )
        # Frames 0 and 1, each shown or skipped (or lost: under load a frame's packets
        # can miss their one-frame deadline, and live mode never waits for them).
        ids = [int(row.split(",")[0]) for row in rows[1:]]
        assert ids and set(ids) <= {0, 1} and len(ids) == len(set(ids))
    printed = capsys.readouterr().out
    assert printed.count("waiting for the next stream") == 2
    assert "frame(s) skipped" in printed and "first picture p50" in printed


def test_a_pattern_is_made_as_it_is_sent():
    import argparse

    from hfstream.apps.stream import _frames

    args = argparse.Namespace(input="pattern", fps=None, frames=100_000)
    frames, fps = _frames(args)  # 100000 frames made up front would take minutes
    assert not isinstance(frames, list) and next(frames).shape[2] == 3 and fps == 10.0


def test_stream_inputs_and_outputs_fail_in_one_line(tmp_path, capsys):
    (tmp_path / "x.hfs").write_bytes(b"HFS")
    assert main(["send", str(tmp_path / "x.hfs"), "--to", "127.0.0.1:9"]) == 2
    assert "is an encoded .hfs file: send streams an image or a video" in capsys.readouterr().err
    (tmp_path / "photo.png").write_bytes(b"")
    assert main(["recv", "--out", str(tmp_path / "photo.png")]) == 2
    err = capsys.readouterr().err
    assert err == f"hfstream recv: error: --out {tmp_path / 'photo.png'} is a file: recv " \
        "writes a folder (frames.csv, received.mp4, pictures)\n"  # fmt: skip
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        out = str(tmp_path / "recv")
        assert main(["recv", "--listen", f"127.0.0.1:{port}", "--out", out]) == 2
    err = capsys.readouterr().err
    assert f"cannot listen on UDP 127.0.0.1:{port}: the port is in use" in err
    assert err.count("\n") == 1 and "Errno" not in err


def test_recv_says_in_one_line_that_every_packet_had_another_key(tmp_path, capsys):
    port = _free_port()
    result = {}
    listen = ["recv", "--listen", f"127.0.0.1:{port}", "--out", str(tmp_path / "recv")]
    receiving = threading.Thread(
        target=lambda: result.update(rc=main([*listen, "--wait", "10", "--key", "ab" * 16]))
    )
    receiving.start()
    try:
        _wait_until_bound(port)
        send = ["send", "pattern", "--frames", "1", "--to", f"127.0.0.1:{port}"]
        assert main([*send, "--key", "cd" * 16, "--report-wait", "0.3"]) == 1
    finally:
        receiving.join(120)
    assert result["rc"] == 1
    err = capsys.readouterr().err
    assert re.search(
        r"^hfstream recv: no picture arrived: (\d+) of \1 packets failed authentication: "
        r"wrong --key, or a key on one side only\?$",
        err,
        re.M,
    ), err
    assert err.count("no picture arrived") == 1  # said a few seconds in, not again


def test_send_stops_when_the_receiver_has_gone(tmp_path, capsys):
    """``recv --frames 1`` ends after its first frame; the sender, which had heard its
    reports, stops with one line and status 1 instead of sending the other frames."""
    port = _free_port()
    result = {}
    listen = ["recv", "--listen", f"127.0.0.1:{port}", "--out", str(tmp_path / "recv")]
    receiving = threading.Thread(target=lambda: result.update(rc=main([*listen, "--wait", "60"])))
    receiving.start()
    try:
        _wait_until_bound(port)
        send = ["send", "pattern", "--frames", "1000", "--fps", "5", "--to", f"127.0.0.1:{port}"]
        assert main([*send, "--receiver-timeout", "1"]) == 1
    finally:
        receiving.join(120)
    assert result["rc"] == 0
    err = capsys.readouterr().err
    assert re.search(r"^hfstream send: the receiver stopped reporting \(\d+ reports, then none "
                     r"for \d+ s\): stopped after \d+ packets", err, re.M), err  # fmt: skip


def test_bad_address(capsys):
    assert main(["send", "pattern", "--to", "nowhere"]) == 2
    assert 'Invalid address "nowhere"' in capsys.readouterr().err


def test_recv_interrupted_mid_stream_keeps_what_arrived(tmp_path):
    """Ctrl-C on a real ``hfstream recv`` process that still waits for more frames: one
    line on stderr, status 130, and frames.csv and the video of what arrived."""
    port, out = _free_port(), tmp_path / "recv"
    key = "ab" * 16  # keyed on both sides: no unauthenticated-mode warning on stderr
    proc = subprocess.Popen(
        [sys.executable, "-W", "ignore", "-m", "hfstream", "recv", "--listen",
         f"127.0.0.1:{port}", "--frames", "5", "--out", str(out), "--key", key],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()

    def next_line() -> str:
        return lines.get(timeout=120)  # a safety net for a hung process, not a timing check

    try:
        assert next_line().startswith(f"waiting for a sender on UDP 127.0.0.1:{port}")
        send = ["send", "pattern", "--frames", "2", "--fps", "5", "--to", f"127.0.0.1:{port}"]
        assert main([*send, "--key", key]) == 0
        pictured = set()
        while pictured != {"frame 0", "frame 1"}:  # both frames shown; 3 more are awaited
            pictured.add(next_line().split(":")[0])
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
    finally:
        proc.kill()
    err = proc.stderr.read()
    assert proc.returncode == 130
    assert err == "hfstream recv: stopped by SIGINT; writing what arrived\n"
    rows = (out / "frames.csv").read_text().splitlines()
    assert rows[0].startswith("frame,stage") and len(rows) == 3
    assert (out / "received.mp4").stat().st_size > 0


def test_bad_key_is_one_line_before_any_work(capsys, monkeypatch):
    assert main(["send", "pattern", "--to", "127.0.0.1:9", "--key", "xyz"]) == 2
    assert "key must be hexadecimal" in capsys.readouterr().err
    assert main(["recv", "--key", "abcd"]) == 2
    assert "key must be at least 16 bytes" in capsys.readouterr().err
