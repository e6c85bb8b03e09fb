"""WebRTC data channels (aiortc) as a datagram transport.

Two pre-negotiated channels (ids 0 and 1, created identically on both peers, so no
in-band channel set-up is needed):

- ``hf-tier0``: unordered, partially reliable; a lost message is retransmitted until
  ``tier0_lifetime_ms`` (the frame deadline) has passed. Carries tier 0, its parity and
  feedback. (aiortc reads ``maxPacketLifeTime=0`` as "no limit", so at least 1 ms.)
- ``hf-index``: unordered, ``maxRetransmits=0``: plain datagrams for tiers 1 and 2.

ICE: no server unless given (``hfstream.transports.ice``: no STUN server on the public
internet by default), and the host candidates include loopback, which aioice leaves out:
two peers on one machine meet over 127.0.0.1, even in a network namespace that has
nothing else; ``local_only`` keeps loopback alone.

Signalling: ``rtc_pair`` joins two peers in one process (tests, examples);
``rtc_connect`` joins two processes over TCP: one JSON line each way (the offer, then
the answer), each with an HMAC under the pre-shared key; the answer's covers the offer's.
The SDP carries the DTLS fingerprints, so an authentic exchange also authenticates the
DTLS channel. A connection whose answer does not verify is closed and the offering side
keeps listening: whoever connects first no longer becomes the peer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator, Sequence

from hfstream.extras import require
from hfstream.protocol.auth import signal_mac, signal_mac_matches
from hfstream.protocol.wire import PacketType
from hfstream.transports.base import ClosingTransport, Inbox, TransportClosed
from hfstream.transports.ice import IceServer

# aiortc is the ``rtc`` extra: importing this module without it says so.
_aiortc = require("aiortc", purpose="WebRTC data channels")
RTCPeerConnection = _aiortc.RTCPeerConnection
RTCSessionDescription = _aiortc.RTCSessionDescription
_aioice_ice = require("aioice.ice", purpose="WebRTC data channels")
LOOPBACK = "127.0.0.1"
OPEN_TIMEOUT_S = 20.0  # ICE checks and the DTLS handshake, once signalling is done

_RELIABLE_TYPES = {PacketType.TIER0, PacketType.PARITY, PacketType.FEEDBACK}
SIGNAL_LINE_LIMIT = 64 * 1024  # an SDP is a few kB
SIGNAL_TIMEOUT_S = 10.0
log = logging.getLogger(__name__)
# What the API reference shows: not the aiortc classes this module binds.
__all__ = ["RtcTransport", "peer_connection", "rtc_connect", "rtc_pair"]


class RtcTransport(ClosingTransport):
    """One WebRTC peer connection's two data channels as a datagram transport: tier 0,
    parity and reports on the partially reliable one, indices on the unreliable one.

    ``tier0_lifetime_ms``: how long a lost tier-0 message is sent again (the frame
    deadline); ``max_queue``: received datagrams held for ``recv`` (beyond it new ones
    are dropped). ``rtc_connect`` and ``rtc_pair`` make connected ones:

        transport = await rtc_connect("answer", host, port, key=key)  # the offer listens
        async with transport, Sender(transport, codec, SenderConfig(key=key)) as sender:
            await sender.send_image(image)
    """

    def __init__(self, pc: RTCPeerConnection, tier0_lifetime_ms: int = 1000, max_queue: int = 4096):
        if tier0_lifetime_ms < 1:
            raise ValueError(
                f"tier0_lifetime_ms must be at least 1 (0 means no limit), got {tier0_lifetime_ms}"
            )
        self.pc = pc
        self.inbox = Inbox(max_queue)
        self.tier0 = pc.createDataChannel(
            "hf-tier0", ordered=False, maxPacketLifeTime=tier0_lifetime_ms, negotiated=True, id=0
        )
        self.index = pc.createDataChannel(
            "hf-index", ordered=False, maxRetransmits=0, negotiated=True, id=1
        )
        for ch in (self.tier0, self.index):
            ch.on("message", self._on_message)
        self._opened = asyncio.get_running_loop().create_future()
        self._n_open = 0
        for ch in (self.tier0, self.index):
            ch.on("open", self._on_open)

    def _on_open(self) -> None:
        self._n_open += 1
        if self._n_open == 2 and not self._opened.done():
            self._opened.set_result(None)

    def _on_message(self, message: bytes | str) -> None:
        if isinstance(message, str):
            return  # hfstream speaks bytes only
        self.inbox.put(message)

    async def wait_open(self, timeout: float = 20.0) -> None:
        """Until both data channels are open (``asyncio.TimeoutError`` after ``timeout``)."""
        await asyncio.wait_for(asyncio.shield(self._opened), timeout)

    @property
    def buffered_bytes(self) -> int:
        """Bytes both channels hold that have not left yet."""
        return self.tier0.bufferedAmount + self.index.bufferedAmount

    async def send(self, data: bytes) -> None:
        ch = self.tier0 if len(data) > 3 and data[3] in _RELIABLE_TYPES else self.index
        if ch.readyState != "open":
            raise TransportClosed(f"data channel {ch.label} is {ch.readyState}")
        ch.send(data)

    async def recv(self) -> bytes:
        return await self.inbox.get()

    async def close(self) -> None:
        await self.pc.close()
        self.inbox.close()


def peer_connection(ice_servers: Sequence[IceServer] = ()) -> RTCPeerConnection:
    """A peer that uses ``ice_servers`` and no other (aiortc's default is a public STUN
    server)."""
    servers = [
        _aiortc.RTCIceServer(urls=s.url, username=s.username, credential=s.credential)
        for s in ice_servers
    ]
    return RTCPeerConnection(_aiortc.RTCConfiguration(iceServers=servers))


@contextlib.contextmanager
def _host_candidates(local_only: bool) -> Iterator[None]:
    """While candidates are gathered (``setLocalDescription``): aioice's host addresses
    plus loopback, or loopback alone. aioice offers no option for it, so its address
    function is replaced for the duration (one event loop: nothing else gathers then)."""
    ice = _aioice_ice
    own = ice.get_host_addresses

    def addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        found = [] if local_only else own(use_ipv4, use_ipv6)
        return [*found, LOOPBACK] if use_ipv4 else found

    ice.get_host_addresses = addresses
    try:
        yield
    finally:
        ice.get_host_addresses = own


async def _describe(pc: RTCPeerConnection, kind: str, local_only: bool) -> None:
    """Create and set ``pc``'s offer or answer, gathering its candidates."""
    desc = await (pc.createOffer() if kind == "offer" else pc.createAnswer())
    with _host_candidates(local_only):
        await pc.setLocalDescription(desc)


async def rtc_pair(
    tier0_lifetime_ms: int = 1000,
    *,
    ice_servers: Sequence[IceServer] = (),
    local_only: bool = False,
) -> tuple[RtcTransport, RtcTransport]:
    """Two connected peers in this process (ICE over this machine's host candidates)."""
    pc_a, pc_b = peer_connection(ice_servers), peer_connection(ice_servers)
    a, b = RtcTransport(pc_a, tier0_lifetime_ms), RtcTransport(pc_b, tier0_lifetime_ms)
    await _describe(pc_a, "offer", local_only)
    await pc_b.setRemoteDescription(pc_a.localDescription)
    await _describe(pc_b, "answer", local_only)
    await pc_a.setRemoteDescription(pc_b.localDescription)
    await asyncio.gather(a.wait_open(), b.wait_open())
    return a, b


def _line(desc: RTCSessionDescription, mac: str) -> bytes:
    return json.dumps({"type": desc.type, "sdp": desc.sdp, "mac": mac}).encode() + b"\n"


async def _read_desc(reader: asyncio.StreamReader, kind: str) -> tuple[RTCSessionDescription, str]:
    """One signalling line, checked field by field (the peer is not trusted yet)."""
    try:
        line = await asyncio.wait_for(reader.readuntil(b"\n"), SIGNAL_TIMEOUT_S)
        obj = json.loads(line)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as e:
        raise ValueError(f"signalling peer sent no valid {kind}: {e}") from None
    if not (
        isinstance(obj, dict)
        and obj.get("type") == kind
        and isinstance(obj.get("sdp"), str)
        and isinstance(obj.get("mac"), str)
    ):
        raise ValueError(f"signalling peer sent no valid {kind}")
    return RTCSessionDescription(sdp=obj["sdp"], type=kind), obj["mac"]


async def rtc_connect(
    role: str,
    host: str = "127.0.0.1",
    port: int = 9999,
    *,
    tier0_lifetime_ms: int = 1000,
    key: bytes | None = None,
    ice_servers: Sequence[IceServer] = (),
    local_only: bool = False,
    wait_s: float | None = None,
) -> RtcTransport:
    """Join a peer in another process; ``role`` is ``offer`` (listens for signalling) or
    ``answer``. Signalling runs over TCP on ``host:port``, authenticated with ``key``;
    media over ICE (``ice_servers``, ``local_only``: see the module docstring). The
    offering side waits ``wait_s`` for a peer (None: until cancelled); a failure is a
    ``ValueError`` that says what to check."""
    if role not in ("offer", "answer"):
        raise ValueError(f'Invalid role "{role}", should be offer or answer')
    pc = peer_connection(ice_servers)
    try:
        return await _connect(pc, role, host, port, tier0_lifetime_ms, key, local_only, wait_s)
    except BaseException:
        await pc.close()
        raise


async def _connect(
    pc: RTCPeerConnection,
    role: str,
    host: str,
    port: int,
    tier0_lifetime_ms: int,
    key: bytes | None,
    local_only: bool,
    wait_s: float | None,
) -> RtcTransport:
    transport = RtcTransport(pc, tier0_lifetime_ms)
    if role == "offer":
        await _describe(pc, "offer", local_only)
        offer = pc.localDescription
        offer_mac = signal_mac(key, "offer", offer.sdp)
        answered: asyncio.Future[RTCSessionDescription] = asyncio.get_running_loop().create_future()

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                writer.write(_line(offer, offer_mac))
                await writer.drain()
                answer, mac = await _read_desc(reader, "answer")
                if not signal_mac_matches(key, mac, "answer", offer_mac, answer.sdp):
                    raise ValueError("signalling answer failed authentication")
                if not answered.done():
                    answered.set_result(answer)
            except (ValueError, ConnectionError) as e:
                log.warning("signalling connection refused: %s", e)
            finally:
                writer.close()

        server = await asyncio.start_server(
            on_connect, host=host, port=port, limit=SIGNAL_LINE_LIMIT
        )
        try:
            await pc.setRemoteDescription(await asyncio.wait_for(answered, wait_s))
        except asyncio.TimeoutError:
            raise ValueError(
                f"no WebRTC sender connected to {host}:{port} within {wait_s:g} s"
            ) from None
        finally:
            server.close()
    else:
        try:
            reader, writer = await asyncio.open_connection(host, port, limit=SIGNAL_LINE_LIMIT)
        except OSError as e:
            raise ValueError(
                f"no WebRTC receiver at the signalling address {host}:{port} (TCP: "
                f"{e.strerror or e}); start `hfstream recv --rtc --listen {host}:{port}` first"
            ) from None
        try:
            offer, offer_mac = await _read_desc(reader, "offer")
            if not signal_mac_matches(key, offer_mac, "offer", offer.sdp):
                raise ValueError("signalling offer failed authentication")
            await pc.setRemoteDescription(offer)
            await _describe(pc, "answer", local_only)
            answer = pc.localDescription
            writer.write(_line(answer, signal_mac(key, "answer", offer_mac, answer.sdp)))
            await writer.drain()
        finally:
            writer.close()
    try:
        await transport.wait_open(OPEN_TIMEOUT_S)
    except asyncio.TimeoutError:
        raise ValueError(
            f"the WebRTC connection did not open within {OPEN_TIMEOUT_S:g} s of signalling: "
            "the peers found no path to each other (between networks, give --ice-server)"
        ) from None
    return transport
