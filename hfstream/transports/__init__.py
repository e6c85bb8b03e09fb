"""Datagram transports: what the sender and receiver move bytes over."""

from hfstream.transports.base import DatagramTransport, TransportClosed
from hfstream.transports.memory import MemoryTransport, memory_pair

__all__ = ["DatagramTransport", "MemoryTransport", "TransportClosed", "memory_pair"]
