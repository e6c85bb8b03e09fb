"""hfstream: images and video frames over lossy networks with a dual-stream learned codec.

The public API. Names load on first use (module ``__getattr__``), so ``import hfstream``
stays light and the torch-free protocol never pulls in the codec::

    from hfstream import HybridCodec, Receiver, ReceiverConfig, Sender, SenderConfig

Beside it, with their extras: WebRTC data channels in `hfstream.transports.rtc` (``rtc``:
aiortc) and video files in `hfstream.media.video` (``video``: PyAV).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "HybridCodec": "hfstream.codec.hybrid",
    "to_uint8_image": "hfstream.codec.frames",
    "EncodedImage": "hfstream.codec.encoded",
    "Sender": "hfstream.stream.sender",
    "SenderConfig": "hfstream.stream.sender_config",
    "FixedCoding": "hfstream.stream.coding",
    "PlannedCoding": "hfstream.stream.coding",
    "FrameSent": "hfstream.stream.sender_config",
    "Receiver": "hfstream.stream.receiver",
    "ReceiverConfig": "hfstream.stream.receiver_config",
    "FrameUpdate": "hfstream.stream.receiver",
    "Stage": "hfstream.stream.progressive",
    "PacketizerConfig": "hfstream.protocol.packetizer",
    "WireError": "hfstream.protocol.wire",
    "parse_key": "hfstream.protocol.auth",
    "MemoryTransport": "hfstream.transports.memory",
    "memory_pair": "hfstream.transports.memory",
    "UdpTransport": "hfstream.transports.udp",
}
__all__ = [
    "EncodedImage",
    "FixedCoding",
    "FrameSent",
    "FrameUpdate",
    "HybridCodec",
    "MemoryTransport",
    "PacketizerConfig",
    "PlannedCoding",
    "Receiver",
    "ReceiverConfig",
    "Sender",
    "SenderConfig",
    "Stage",
    "UdpTransport",
    "WireError",
    "memory_pair",
    "parse_key",
    "to_uint8_image",
]

if TYPE_CHECKING:
    from hfstream.codec.encoded import EncodedImage
    from hfstream.codec.frames import to_uint8_image
    from hfstream.codec.hybrid import HybridCodec
    from hfstream.protocol.auth import parse_key
    from hfstream.protocol.packetizer import PacketizerConfig
    from hfstream.protocol.wire import WireError
    from hfstream.stream.coding import FixedCoding, PlannedCoding
    from hfstream.stream.progressive import Stage
    from hfstream.stream.receiver import FrameUpdate, Receiver
    from hfstream.stream.receiver_config import ReceiverConfig
    from hfstream.stream.sender import Sender
    from hfstream.stream.sender_config import FrameSent, SenderConfig
    from hfstream.transports.memory import MemoryTransport, memory_pair
    from hfstream.transports.udp import UdpTransport


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hfstream' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
