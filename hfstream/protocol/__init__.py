"""The hfstream protocol, torch-free: the wire format, packetizer, pacer, reassembler,
receiver reports and packet authentication. Every piece is sans-I/O: bytes and ``now``
in, packets and events out. The codec and the asyncio endpoints sit around it."""
