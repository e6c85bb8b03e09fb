"""Command-line arguments checked before any work starts, without importing torch.

Every check fails with one line (``hfstream decode: error: ...``) and exit status 2, so a
typo costs a fraction of a second instead of a model load and a decode.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from hfstream.arguments import (  # noqa: F401 (the commands' argument types, in one place)
    EXIT_BAD_INPUT,
    OneLineParser,
    fail,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    share,
)
from hfstream.geometry import DEFAULT_MAX_PIXELS
from hfstream.protocol.schedules import Schedule

if TYPE_CHECKING:
    from hfstream.transports.ice import IceServer

# The schedules the command line accepts (the protocol package is torch-free).
SCHEDULES = ("auto", *(s.label for s in Schedule))

# Coding and decoding cost memory and time in proportion to the pixels (encoding an
# 8000x8000 picture took 10 minutes and 5.7 GB here), so larger pictures are refused,
# before any work, unless the user raises this.
DEFAULT_MAX_MEGAPIXELS = DEFAULT_MAX_PIXELS / 1e6


# ``hfstream encode``'s default refinement: ``hfstream.codec.refinement.DEFAULT_REFINE_STEPS``,
# not imported, so that ``--help`` loads no torch (a test keeps the two equal).
REFINE_STEPS = 50


def schedule(text: str) -> str:
    if text not in SCHEDULES:
        raise argparse.ArgumentTypeError(
            f'Invalid schedule "{text}", should be one of {", ".join(SCHEDULES)}'
        )
    return text


def address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f'Invalid address "{text}", should be HOST:PORT')
    return host or "127.0.0.1", int(port)


def resolvable(addr: tuple[str, int]) -> None:
    """Refuse a host name that does not resolve now, rather than send into the void."""
    import socket

    try:
        socket.getaddrinfo(addr[0], addr[1], type=socket.SOCK_DGRAM)
    except OSError as e:  # socket.gaierror
        raise ValueError(f'cannot resolve host "{addr[0]}": {e.strerror or e}') from None


def input_file(path: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"No such file: {path}" if not p.exists() else f"{path} is not a file")
    return p


def output_file(path: str) -> Path:
    """A path that can be written: its folder exists and it is not a folder itself."""
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{path} is a folder, not a file")
    if not p.parent.is_dir():
        raise ValueError(f"no folder {p.parent} to write {p.name} into")
    return p


# What ``hfstream encode`` refuses to read as a picture, with what to do instead.
VIDEO_SUFFIXES = {".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg"}


def input_image(path: str) -> Path:
    """An existing file that is not a video (``encode`` codes one picture)."""
    p = input_file(path)
    if p.suffix.lower() in VIDEO_SUFFIXES:
        raise ValueError(
            f"{path} is a video: encode codes one picture; stream a video with `hfstream send`"
        )
    return p


def output_hfs(path: str, *, source: Path) -> Path:
    """An ``.hfs`` path that can be written and is not ``source`` (never overwrite the
    input)."""
    p = output_file(path)
    if p.suffix.lower() != ".hfs":
        raise ValueError(f'the encoded file is written as .hfs, not "{p.suffix or p.name}"')
    if p.exists() and p.samefile(source):
        raise ValueError(f"{path} is the input: refusing to overwrite it")
    return p


def output_image(path: str) -> Path:
    """An image path whose extension Pillow can write (checked before decoding, not after)."""
    from PIL import Image

    p = output_file(path)
    Image.init()
    fmt = Image.registered_extensions().get(p.suffix.lower())
    if fmt is None or fmt not in Image.SAVE:
        writable = sorted(e for e, f in Image.registered_extensions().items() if f in Image.SAVE)
        common = [e for e in (".png", ".jpg", ".webp", ".bmp", ".tif") if e in writable]
        raise ValueError(
            f'cannot write "{p.suffix or p.name}" images, use {", ".join(common)} '
            f"(or another of Pillow's {len(writable)} writable extensions)"
        )
    return p


def ice_server(text: str) -> IceServer:
    """``--ice-server``: ``stun:HOST[:PORT]`` or ``turn:USER:PASSWORD@HOST[:PORT]``."""
    from hfstream.transports.ice import parse_ice_server  # aiortc-free

    try:
        return parse_ice_server(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def key(text: str) -> bytes:
    """A pre-shared key in hex (``--key`` or ``HFSTREAM_KEY``)."""
    from hfstream.protocol.auth import parse_key  # torch-free

    try:
        return parse_key(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
