"""``hfstream``: encode and decode ``.hfs`` files, stream pictures, run the demo.

    hfstream encode IN.png OUT.hfs [--schedule auto|1_2|1_4|1_9|1_16|1_1|0] [--codebook 1024]
    hfstream decode IN.hfs OUT.png [--mode hybrid|vq|continuous] [--steps 1]
    hfstream recv [--listen HOST:PORT] [--rtc] [--out DIR] [--frames N] [--live] [--keep-listening]
    hfstream send IMAGE|VIDEO|pattern [--to HOST:PORT] [--rtc] [--fps F] [--target B/S] [--live]
    hfstream demo [--out out/demo] [--loss 0.2]

Every argument is checked before the model loads. Bad input (a bad value, a truncated,
corrupt or foreign file, a missing model) prints one line naming the problem and exits
with status 2. Ctrl-C (or SIGTERM) stops ``send`` and ``recv`` cleanly: ``recv`` writes
what it has received and both exit with 130 (143 for SIGTERM).

This module imports neither torch nor the codec at import time, so ``--help`` and
argument errors answer at once; each command imports what it needs.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from hfstream.apps import args as a
from hfstream.geometry import DEFAULT_MAX_FRAME_PIXELS

if TYPE_CHECKING:
    from hfstream.planning import FramePlan

EXIT_BAD_INPUT = a.EXIT_BAD_INPUT
# A progress bar appears from this many 256x256 patches (about 4 Mpx to encode, 1 Mpx to
# decode: a few seconds on a 2-core CPU).
ENCODE_BAR_PATCHES = 64
REFINE_BAR_PATCH_STEPS = 300  # a 768x512 photo at 50 steps: about 5 s
DECODE_BAR_PATCHES = 16


def _codec(model: str | None):
    from hfstream.codec.shared import shared_codec

    return shared_codec(model)


def _bar(total: int, from_patches: int, desc: str, unit: str = "patch"):
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, desc=desc, disable=total < from_patches, leave=False)


def _patches(width: int, height: int) -> int:
    return -(-width // 256) * -(-height // 256)


def cmd_encode(args: argparse.Namespace) -> int:
    from hfstream.apps.images import read_rgb

    src = a.input_image(args.input)
    out = a.output_hfs(args.output, source=src)
    img = read_rgb(src, args.max_megapixels, "hfstream encode")  # size checked before decoding

    from hfstream.codec.rates import Fixed
    from hfstream.files import container

    if args.bpp is not None and (args.schedule or args.codebook or args.rung is not None):
        raise ValueError(
            "--bpp plans the rungs and the schedule: drop --schedule/--codebook/--rung"
        )
    codec = _codec(args.model)
    h, w = img.shape[:2]
    top = codec.continuous.rungs - 1
    if args.rung is not None and args.rung > top:
        raise ValueError(f"--rung {args.rung}: model {codec.model_id:08x} has rungs 0..{top}")
    if args.bpp is not None:
        from hfstream.planning import encode_within

        planned = encode_within(
            codec,
            img,
            args.bpp * h * w / 8,
            prior_coding=not args.fixed,
            parity_ratios=(0.0,),
            refine_steps=args.refine_steps,
        )
        enc = planned.encoded
        note = budget_note(planned.plan, args.bpp, h * w, top_rung=top, scale=enc.scale)
        if note:
            print(f"hfstream encode: note: {note}", file=sys.stderr)
    else:
        work = _patches(w, h) * args.refine_steps
        with (
            _bar(work, REFINE_BAR_PATCH_STEPS, "refining", "patch-step") as refining,
            _bar(_patches(w, h), ENCODE_BAR_PATCHES, "encoding") as bar,
        ):
            enc = codec.encode(
                img,
                args.schedule or "auto",
                rate=Fixed(args.rung),
                codebook_size=args.codebook,
                refine_steps=args.refine_steps,
                progress=bar.update,
                refine_progress=refining.update,
            )
    coding = container.IndexCoding.FIXED if args.fixed else container.IndexCoding.PRIOR
    data = container.write(enc, codec, coding=coding, include_withheld=args.withheld)
    out.write_bytes(data)
    bpp = 8 * len(data) / (h * w)
    scaled = f", coded at 1/{enc.scale} of its size" if enc.scale > 1 else ""
    print(f"{out}: {len(data)} bytes, {bpp:.4f} bpp, {len(enc.patches)} patches{scaled}")
    return 0


def budget_note(
    plan: FramePlan, bpp: float, pixels: int, *, top_rung: int, scale: int
) -> str | None:
    """What to tell a user whose ``--bpp`` lies outside what the picture can take: below
    its smallest coding, or above the most the model spends on it (``plan`` is a
    ``FramePlan``: its bytes are wire bytes, as ``--bpp`` counts them)."""
    used = 8 * plan.bytes / pixels
    if used > bpp:
        size = f"at 1/{scale} of its size" if scale > 1 else "at full size"
        return (
            f"--bpp {bpp:g} is below the least this picture can be sent in: coded at "
            f"{used:.4f} bpp on the wire (the lowest rung, {size})"
        )
    if min(plan.rungs) == top_rung and used < 0.9 * bpp:
        indices = "every index" if plan.schedule == "1_1" else "the indices that help"
        return (
            f"--bpp {bpp:g} is above the most the model spends on this picture: coded at "
            f"{used:.4f} bpp on the wire (the top rung and {indices})"
        )
    return None


def cmd_decode(args: argparse.Namespace) -> int:
    src = a.input_file(args.input)
    out = a.output_image(args.output)  # a bad extension fails now, not after the decode

    from PIL import Image

    from hfstream.files import container

    size = src.stat().st_size
    if size > container.MAX_FILE_BYTES:
        raise container.ContainerError(f"{size} bytes is more than an .hfs file may hold")
    data = src.read_bytes()
    max_pixels = int(args.max_megapixels * 1e6)
    container.read_header(data, max_pixels=max_pixels)  # before the model loads
    codec = _codec(args.model)
    enc = container.read_to_decode(data, codec, args.mode, max_pixels=max_pixels)
    with _bar(len(enc.patches), DECODE_BAR_PATCHES, "decoding") as bar:
        img = codec.decode(enc, mode=args.mode, steps=args.steps, progress=bar.update)
    Image.fromarray(img).save(out)
    print(f"{out}: {img.shape[1]}x{img.shape[0]}")
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    from hfstream.apps.stops import run_until_stopped
    from hfstream.apps.stream import run_send

    return run_until_stopped(run_send, args)


def cmd_recv(args: argparse.Namespace) -> int:
    from hfstream.apps.stops import run_until_stopped
    from hfstream.apps.stream import run_recv

    return run_until_stopped(run_recv, args)


def cmd_demo(args: argparse.Namespace) -> int:
    from hfstream.apps.demo import run_demo

    return run_demo(Path(args.out), args.loss)


def _max_megapixels(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--max-megapixels",
        type=a.positive_float,
        default=a.DEFAULT_MAX_MEGAPIXELS,
        help="refuse larger pictures before any work (default %(default)g, about 4096x4096)",
    )


def _model(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="model folder (default: the shipped model)")


def add_stream_arguments(send: argparse.ArgumentParser, recv: argparse.ArgumentParser) -> None:
    send.add_argument("input", help='an image, a video, or "pattern" for a generated video')
    send.add_argument(
        "--to", type=a.address, default="127.0.0.1:5000", help="receiver (or signalling) HOST:PORT"
    )
    send.add_argument("--rtc", action="store_true", help="WebRTC data channels instead of UDP")
    send.add_argument(
        "--fps",
        type=a.positive_float,
        default=None,
        help="frame rate (default: the video's; 10 for pattern, 1 for an image); a faster "
        "video is sampled at this rate (frames dropped by timestamp), not slowed down",
    )
    send.add_argument("--frames", type=a.positive_int, default=None, help="at most this many")
    send.add_argument("--rate", type=a.positive_float, default=250_000, help="pacing, bytes/s")
    send.add_argument(
        "--target", type=a.positive_float, default=None, help="rate-control target, bytes/s"
    )
    send.add_argument("--schedule", type=a.schedule, default="auto", help=", ".join(a.SCHEDULES))
    send.add_argument(
        "--refine-steps",
        type=a.non_negative_int,
        default=0,
        help="optimise each frame's continuous latent (about 0.13 s a step for 768x512: for "
        "still images, not live video; default 0)",
    )
    send.add_argument(
        "--tier0-sends",
        type=a.positive_int,
        default=1,
        help="with --target: the sends a tier-0 packet can get from the transport (--rtc "
        "resends within the frame deadline); above 1 the planner keeps room for resends "
        "instead of parity, or, where a frame fits one packet, counts on resends on top "
        "of the target (default 1)",
    )
    send.add_argument(
        "--intra",
        action="store_true",
        help="with --target: code every frame on its own (by default a frame is predicted "
        "from a frame the receiver acknowledged or one still in flight, its unchanged "
        "patches reused)",
    )
    send.add_argument(
        "--in-flight",
        type=a.non_negative_float,
        default=0.5,
        help="with --target: predict from a frame sent less than this many seconds ago "
        "and not yet acknowledged (it should cover the round trip and the receiver's "
        "decode; 0: acknowledged frames only; --live always 0; default %(default)g s)",
    )
    send.add_argument(
        "--report-wait",
        type=a.positive_float,
        default=5.0,
        help="after the last packet, wait this long for a receiver report; with none, "
        "warn and exit 1 (default %(default)g s)",
    )
    send.add_argument(
        "--receiver-timeout",
        type=a.non_negative_float,
        default=10.0,
        help="once receiver reports came, stop (exit 1) when none came for this long: the "
        "receiver stopped or became unreachable (default %(default)g s; 0: never)",
    )
    send.add_argument(
        "--live",
        action="store_true",
        help="real time: skip a frame when the next is due before its encode can begin",
    )
    _max_megapixels(send)
    _model(send)
    _key(send)
    recv.add_argument(
        "--listen", type=a.address, default="127.0.0.1:5000", help="HOST:PORT to listen on"
    )
    recv.add_argument("--rtc", action="store_true", help="WebRTC data channels instead of UDP")
    recv.add_argument("--out", default="out/recv", help="folder for previews, video and CSV")
    recv.add_argument(
        "--max-megapixels",
        type=a.positive_float,
        default=DEFAULT_MAX_FRAME_PIXELS / 1e6,
        help="drop frames declaring a larger picture at their first packet, before any "
        "work (default %(default).2f, 2048x2048: a frame's decode time and memory grow "
        "with its pixels)",
    )
    recv.add_argument(
        "--frames",
        type=a.non_negative_int,
        default=1,
        help="stop once this many frames, counted from the first picture, reached their last "
        "picture (default 1: one picture, saved as a PNG at each stage; more, or 0, also "
        "writes received.mp4); 0: until no picture came for --timeout seconds",
    )
    recv.add_argument(
        "--wait",
        type=a.positive_float,
        default=None,
        help="give up if no picture arrives within this many seconds (default: wait until Ctrl-C)",
    )
    recv.add_argument(
        "--timeout",
        type=a.positive_float,
        default=10.0,
        help="once pictures arrive, stop after this long without one (default %(default)g s)",
    )
    recv.add_argument(
        "--fps",
        type=a.positive_float,
        default=None,
        help="frame rate of received.mp4 (default: the sender's, from the frames' capture "
        "times; 10 when they tell none, as with a single frame)",
    )
    recv.add_argument(
        "--save-frames",
        action="store_true",
        help="also write the best picture of every frame as frameNNNNN.png (lossless)",
    )
    recv.add_argument(
        "--live",
        action="store_true",
        help="real time: decode only the newest frame, skip stale ones (bounded latency)",
    )
    recv.add_argument(
        "--keep-listening",
        action="store_true",
        help="after a stream ends (--frames done or --timeout idle), write it to "
        "OUT/streamNNN/ and wait for the next one",
    )
    _model(recv)
    _key(recv)
    for p in (send, recv):
        p.add_argument(
            "--ice-server",
            type=a.ice_server,
            action="append",
            default=[],
            metavar="URL",
            help="with --rtc: a STUN (stun:HOST[:PORT]) or TURN "
            "(turn:USER:PASSWORD@HOST[:PORT]) server, repeatable; default none: no public "
            "server learns of the stream, the peers meet over their own addresses",
        )
        p.add_argument(
            "--local-only",
            action="store_true",
            help="with --rtc: offer loopback candidates alone (both peers on this machine)",
        )


def _key(p: argparse.ArgumentParser) -> None:
    from hfstream.protocol.auth import KEY_ENV

    p.add_argument(
        "--key",
        type=a.key,
        default=os.environ.get(KEY_ENV),
        help=f"pre-shared key in hex, the same on both sides (default: ${KEY_ENV}); "
        "without one nothing is authenticated, for experiments only",
    )


def build_parser() -> argparse.ArgumentParser:
    p = a.OneLineParser(prog="hfstream", description="hfstream dual-stream image codec")
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("encode", help="image -> .hfs")
    e.add_argument("input", help="an image (PNG, JPEG, WebP, ...)")
    e.add_argument("output", help="the .hfs file to write (never the input)")
    e.add_argument(
        "--schedule", type=a.schedule, default=None, help=", ".join(a.SCHEDULES) + " (default auto)"
    )
    e.add_argument("--codebook", type=a.positive_int, default=None, help="1024 or a reduced size")
    e.add_argument(
        "--bpp",
        type=a.positive_float,
        default=None,
        help="fit this many bits per pixel (as sent on the wire): rungs and schedule planned",
    )
    e.add_argument(
        "--rung",
        type=a.non_negative_int,
        default=None,
        help="continuous-stream rung (ladder models)",
    )
    e.add_argument(
        "--refine-steps",
        type=a.non_negative_int,
        default=a.REFINE_STEPS,
        help="optimise the continuous latent for this picture (better quality for the bytes, "
        f"about 0.13 s a step for 768x512; 0: none; default {a.REFINE_STEPS})",
    )
    e.add_argument(
        "--fixed", action="store_true", help="fixed-length indices instead of the learned prior"
    )
    e.add_argument("--withheld", action="store_true", help="also store the withheld indices")
    _max_megapixels(e)
    _model(e)
    e.set_defaults(func=cmd_encode)
    d = sub.add_parser("decode", help=".hfs -> image")
    d.add_argument("input")
    d.add_argument("output", help="an image path; its extension picks the format")
    d.add_argument(
        "--mode",
        default="auto",
        choices=["auto", "hybrid", "vq", "continuous"],
        help="auto: hybrid, or continuous where the model measured that indices do not help",
    )
    d.add_argument(
        "--steps", type=a.positive_int, default=1, help="predictor passes (1 = single pass)"
    )
    _max_megapixels(d)
    _model(d)
    d.set_defaults(func=cmd_decode)
    r = sub.add_parser("recv", help="receive a stream, saving pictures as they improve")
    s = sub.add_parser("send", help="stream an image or a video (UDP or --rtc)")
    add_stream_arguments(s, r)
    s.set_defaults(func=cmd_send)
    r.set_defaults(func=cmd_recv)
    m = sub.add_parser("demo", help="stream the bundled photo over a lossy in-process link")
    m.add_argument("--out", default="out/demo")
    m.add_argument(
        "--loss", type=a.share, default=0.2, help="share of packets the link drops, 0 to <1"
    )
    m.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit status (argument errors and --help included)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help, or a bad argument already reported in one line
        return e.code if isinstance(e.code, int) else 0
    from PIL import Image, UnidentifiedImageError

    try:
        return args.func(args)
    except KeyboardInterrupt:  # Ctrl-C before send/recv set their own handlers, or elsewhere
        print(f"hfstream {args.command}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, UnidentifiedImageError, Image.DecompressionBombError) as e:
        # ContainerError, ModelFileError and bad images are ValueErrors; missing files OSErrors.
        return a.fail(f"hfstream {args.command}", str(e))


if __name__ == "__main__":
    sys.exit(main())
