"""Loss models (sans-I/O): each call to ``lost()`` decides the fate of one packet.

Every model takes its random generator from the caller (``numpy.random.Generator``), so
the same seed gives the same run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import cycle
from typing import Protocol

import numpy as np

from hfstream.planning.channel import gilbert_transitions


class LossModel(Protocol):
    def lost(self) -> bool: ...


@dataclass
class NoLoss:
    def lost(self) -> bool:
        return False


@dataclass
class Bernoulli:
    """Each packet is lost independently with probability ``p``."""

    p: float
    rng: np.random.Generator

    def __post_init__(self) -> None:
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"loss probability must be in [0, 1], got {self.p}")

    def lost(self) -> bool:
        return bool(self.rng.random() < self.p)


@dataclass
class GilbertElliott:
    r"""Two-state Markov loss (Gilbert 1960, Elliott 1963), one step per packet.

    ::

                 p
           +-----------+
           |           v
         [ G ]       [ B ]        G: good state, a packet survives with probability k
           ^           |          B: bad state,  a packet survives with probability h
           +-----------+
                 r

    Transition matrix (rows: from, columns: to, order G, B)::

        | 1-p   p  |
        |  r   1-r |

    Steady state: pi_G = r / (p + r), pi_B = p / (p + r), so the mean loss rate is

        p_E = (1 - k) * r / (p + r) + (1 - h) * p / (p + r)

    and a visit to B lasts 1 / r packets on average. With k = 1 and h = 0 (the Gilbert
    model) every packet in B is lost, p_E = p / (p + r) and the mean loss burst is 1 / r.
    ``from_rate(loss, burst)`` builds that model from a target loss rate and burst length
    (``hfstream.planning.channel.gilbert_transitions``, the chain the frame planner's
    loss patterns follow).
    """

    p: float
    r: float
    rng: np.random.Generator
    k: float = 1.0
    h: float = 0.0
    bad: bool = field(default=False)

    def __post_init__(self) -> None:
        for name in ("p", "r", "k", "h"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"Gilbert-Elliott {name} must be in [0, 1], got {v}")
        if self.p + self.r == 0:
            raise ValueError("Gilbert-Elliott needs p + r > 0")

    @classmethod
    def from_rate(cls, loss: float, burst: float, rng: np.random.Generator) -> GilbertElliott:
        """Gilbert model (k=1, h=0) with mean loss ``loss`` and mean burst ``burst`` packets."""
        if not 0.0 < loss < 1.0:
            raise ValueError(f"loss rate must be in (0, 1), got {loss}")
        if burst < 1.0:
            raise ValueError(f"mean burst length must be at least 1 packet, got {burst}")
        p, r = gilbert_transitions(loss, burst)
        if p > 1.0:
            raise ValueError(f"loss {loss} with bursts of {burst} needs p = {p:.3f} > 1")
        return cls(p=p, r=r, rng=rng)

    @property
    def steady_state_loss(self) -> float:
        pg, pb = self.r / (self.p + self.r), self.p / (self.p + self.r)
        return (1 - self.k) * pg + (1 - self.h) * pb

    @property
    def mean_burst(self) -> float:
        return 1.0 / self.r if self.r > 0 else float("inf")

    def lost(self) -> bool:
        u = self.rng.random(2)
        # Move first, then draw the packet's fate in the new state.
        if self.bad:
            self.bad = not (u[0] < self.r)
        else:
            self.bad = bool(u[0] < self.p)
        survive = self.h if self.bad else self.k
        return bool(u[1] >= survive)


class Pattern:
    """A cyclic, explicit loss pattern (True = lost): fully deterministic."""

    def __init__(self, pattern: Sequence[bool]) -> None:
        if not pattern:
            raise ValueError("a loss pattern needs at least one entry")
        self._it = cycle(bool(x) for x in pattern)

    def lost(self) -> bool:
        return next(self._it)
