"""``hfstream``: encode and decode ``.hfs`` files, run the demo.

    hfstream encode IN.png OUT.hfs [--schedule auto|1_2|1_4|1_9|1_16|1_1] [--codebook 1024]
    hfstream decode IN.hfs OUT.png [--mode hybrid|vq|continuous] [--steps 1]
    hfstream send IMAGE|VIDEO|pattern [--to HOST:PORT] [--rtc] [--fps F] [--target BYTES/S]
    hfstream recv [--listen HOST:PORT] [--rtc] [--out DIR] [--frames N]
    hfstream demo [--out out/demo] [--loss 0.2]

Bad input (a truncated, corrupt or foreign file, a missing model) prints one line naming
the problem and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image, UnidentifiedImageError

EXIT_BAD_INPUT = 2


def _codec(model: str | None):
    from hfstream.codec.hybrid import HybridCodec

    return HybridCodec.from_pretrained(model)


def cmd_encode(args: argparse.Namespace) -> int:
    from hfstream import container
    from hfstream.codec.hybrid import to_uint8_image

    codec = _codec(args.model)
    img = to_uint8_image(args.input)
    enc = codec.encode(img, schedule=args.schedule, codebook_size=args.codebook)
    coding = container.IndexCoding.FIXED if args.fixed else container.IndexCoding.PRIOR
    data = container.write(enc, codec, coding, include_withheld=args.withheld)
    Path(args.output).write_bytes(data)
    bpp = 8 * len(data) / (img.shape[0] * img.shape[1])
    print(f"{args.output}: {len(data)} bytes, {bpp:.4f} bpp, {len(enc.patches)} patches")
    return 0


def cmd_decode(args: argparse.Namespace) -> int:
    from hfstream import container

    codec = _codec(args.model)
    path = Path(args.input)
    size = path.stat().st_size
    if size > container.MAX_FILE_BYTES:
        raise container.ContainerError(f"{size} bytes is more than an .hfs file may hold")
    enc = container.read(path.read_bytes(), codec)
    img = codec.decode(enc, mode=args.mode, steps=args.steps)
    Image.fromarray(img).save(args.output)
    print(f"{args.output}: {img.shape[1]}x{img.shape[0]}")
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    import asyncio

    from hfstream.apps.stream import run_send

    return asyncio.run(run_send(args))


def cmd_recv(args: argparse.Namespace) -> int:
    import asyncio

    from hfstream.apps.stream import run_recv

    return asyncio.run(run_recv(args))


def cmd_demo(args: argparse.Namespace) -> int:
    from hfstream.apps.demo import run_demo

    return run_demo(Path(args.out), args.loss)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hfstream", description="hfstream dual-stream image codec")
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("encode", help="image -> .hfs")
    e.add_argument("input")
    e.add_argument("output")
    e.add_argument("--schedule", default="auto", help="auto, 1_1, 1_2, 1_4, 1_9, 1_16 or 0")
    e.add_argument("--codebook", type=int, default=None, help="1024 or a reduced size")
    e.add_argument(
        "--fixed", action="store_true", help="fixed-length indices instead of the learned prior"
    )
    e.add_argument("--withheld", action="store_true", help="also store the withheld indices")
    e.add_argument("--model", default=None, help="model folder (default: the shipped model)")
    e.set_defaults(func=cmd_encode)
    d = sub.add_parser("decode", help=".hfs -> image")
    d.add_argument("input")
    d.add_argument("output")
    d.add_argument("--mode", default="hybrid", choices=["hybrid", "vq", "continuous"])
    d.add_argument("--steps", type=int, default=1, help="predictor passes (1 = single pass)")
    d.add_argument("--model", default=None)
    d.set_defaults(func=cmd_decode)
    s = sub.add_parser("send", help="stream an image or a video (UDP or --rtc)")
    r = sub.add_parser("recv", help="receive a stream, saving pictures as they improve")
    from hfstream.apps.stream import add_arguments

    add_arguments(s, r)
    s.set_defaults(func=cmd_send)
    r.set_defaults(func=cmd_recv)
    m = sub.add_parser("demo", help="stream the bundled photo over a lossy in-process link")
    m.add_argument("--out", default="out/demo")
    m.add_argument("--loss", type=float, default=0.2, help="share of packets the link drops")
    m.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError, UnidentifiedImageError) as e:
        # ContainerError, ModelFileError and bad images are ValueErrors; missing files OSErrors.
        print(f"hfstream {args.command}: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
