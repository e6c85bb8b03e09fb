"""A small thread-safe least-recently-used cache, for what a receiver asks of a patch twice
(its ŷc, its prior pass): the sender's and the receiver's threads share one codec."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from typing import Generic, TypeVar

import torch

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(Generic[K, V]):
    """At most ``size`` entries; the least recently stored goes first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get_many(self, keys: Iterable[K]) -> dict[K, V]:
        """The entries of ``keys`` that are kept (a lookup does not refresh them)."""
        with self._lock:
            return {k: self._items[k] for k in keys if k in self._items}

    def put_many(self, items: Iterable[tuple[K, V]]) -> None:
        """Keep ``items`` as the most recent, in their order."""
        with self._lock:
            for k, v in items:
                self._items[k] = v
                self._items.move_to_end(k)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def digest(x: torch.Tensor) -> bytes:
    """A key for a tensor's values (one patch's ŷc, say)."""
    return hashlib.blake2b(x.contiguous().numpy().tobytes(), digest_size=16).digest()
