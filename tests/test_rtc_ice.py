"""WebRTC without outside servers: no STUN unless given, loopback candidates (one machine,
or a namespace with loopback alone), and clear errors and timeouts around signalling."""

import asyncio
import socket

import pytest

from hfstream.transports.ice import IceServer, parse_ice_server


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ice_servers_are_parsed_with_their_credentials():
    assert parse_ice_server("stun:stun.example.org:3478") == IceServer("stun:stun.example.org:3478")
    turn = parse_ice_server("turn:ann:s3cr:et@relay.example.org:3478?transport=tcp")
    assert turn == IceServer("turn:relay.example.org:3478?transport=tcp", "ann", "s3cr:et")
    assert "s3cr" not in repr(turn)
    for bad, message in (
        ("stun.example.org", "Invalid ICE server"),
        ("turn:relay.example.org", "needs USER:PASSWORD@"),
        ("stun:ann:pw@host", "credentials go with turn: only"),
    ):
        with pytest.raises(ValueError, match=message):
            parse_ice_server(bad)


def test_a_peer_gathers_no_server_candidate_and_loopback_when_local_only():
    pytest.importorskip("aiortc")
    from hfstream.transports.rtc import RtcTransport, _describe, peer_connection

    async def offer_sdp() -> str:
        pc = peer_connection()
        RtcTransport(pc)  # the data channels, so the offer has an application section
        try:
            await _describe(pc, "offer", local_only=True)
            return pc.localDescription.sdp
        finally:
            await pc.close()

    candidates = [line for line in asyncio.run(offer_sdp()).splitlines() if "candidate:" in line]
    assert candidates and all(" 127.0.0.1 " in c and "typ host" in c for c in candidates)


def test_two_processes_worth_of_signalling_connect_over_loopback_alone():
    pytest.importorskip("aiortc")
    from hfstream.transports.rtc import rtc_connect

    port, key = _free_tcp_port(), bytes(range(16))

    async def main():
        offer = asyncio.create_task(
            rtc_connect("offer", "127.0.0.1", port, key=key, local_only=True, wait_s=60)
        )
        for _ in range(600):  # until the offering side listens (a safety net of 60 s)
            try:
                answer = await rtc_connect("answer", "127.0.0.1", port, key=key, local_only=True)
                break
            except ValueError as e:
                assert "no WebRTC receiver" in str(e)
                await asyncio.sleep(0.1)
        a = await asyncio.wait_for(offer, 60)
        await answer.send(b"HF hello")
        got = await asyncio.wait_for(a.recv(), 30)
        await a.close()
        await answer.close()
        return got

    assert asyncio.run(main()) == b"HF hello"


def test_signalling_waits_as_long_as_told_and_a_missing_receiver_is_one_line():
    pytest.importorskip("aiortc")
    from hfstream.transports.rtc import rtc_connect

    port = _free_tcp_port()
    with pytest.raises(ValueError, match=f"no WebRTC sender connected to 127.0.0.1:{port} within"):
        asyncio.run(rtc_connect("offer", "127.0.0.1", port, wait_s=0.2))
    with pytest.raises(ValueError) as e:
        asyncio.run(rtc_connect("answer", "127.0.0.1", port))
    assert f"no WebRTC receiver at the signalling address 127.0.0.1:{port}" in str(e.value)
    assert "start `hfstream recv --rtc --listen" in str(e.value)


def test_recv_rtc_gives_up_after_wait_in_one_line(tmp_path, capsys, codec, monkeypatch):
    pytest.importorskip("aiortc")
    from hfstream.apps.cli import main
    from hfstream.codec.hybrid import HybridCodec

    monkeypatch.setattr(HybridCodec, "from_pretrained", classmethod(lambda cls, p=None: codec))
    port = _free_tcp_port()
    argv = ["recv", "--rtc", "--listen", f"127.0.0.1:{port}", "--out", str(tmp_path), "--wait"]
    assert main([*argv, "0.3"]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"hfstream recv: error: no WebRTC sender connected to 127.0.0.1:{port} within 0.3 s\n"
    )
