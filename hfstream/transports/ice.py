"""The ICE servers a WebRTC peer may use, as the user gives them (no aiortc needed).

By default a peer uses none: no STUN server on the public internet learns of the
stream, and the peers meet over their host candidates (loopback included), which is
enough on one machine or one network. ``stun:HOST[:PORT]`` adds a server-reflexive
candidate (peers behind NAT), ``turn:USER:PASSWORD@HOST[:PORT][?transport=tcp]`` a relay.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SCHEMES = ("stun", "stuns", "turn", "turns")


@dataclass(frozen=True)
class IceServer:
    url: str  #: ``stun:HOST:PORT`` or ``turn:HOST:PORT[?transport=...]``, no credentials
    username: str | None = None  #: TURN only
    credential: str | None = field(default=None, repr=False)  #: TURN only


def parse_ice_server(text: str) -> IceServer:
    """``stun:HOST[:PORT]`` or ``turn:USER:PASSWORD@HOST[:PORT][?transport=udp|tcp]``."""
    scheme, sep, rest = text.partition(":")
    if not sep or scheme not in SCHEMES or not rest:
        raise ValueError(
            f'Invalid ICE server "{text}", should be stun:HOST[:PORT] or '
            "turn:USER:PASSWORD@HOST[:PORT]"
        )
    credentials, at, address = rest.rpartition("@")
    if not at:
        if scheme.startswith("turn"):
            raise ValueError(f'TURN server "{text}" needs USER:PASSWORD@ before its host')
        return IceServer(text)
    user, colon, password = credentials.partition(":")
    if scheme.startswith("stun") or not (user and colon and password and address):
        raise ValueError(
            f'Invalid ICE server "{scheme}:…@{address}", credentials go with turn: only, '
            "as USER:PASSWORD@HOST[:PORT]"
        )
    return IceServer(f"{scheme}:{address}", user, password)
