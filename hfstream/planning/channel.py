"""The channel a frame is planned for, and the loss patterns the planner scores plans on.

``Channel`` is what the receiver reports (the loss rate and the mean run of losses) and
what the sender may do about it (resend lost tier-0 packets). ``loss_patterns`` turns it
into fixed patterns of lost packets, so that a plan is a function of its inputs alone.
Bursts follow the Gilbert chain of ``gilbert_transitions``, the same one that
``sim.loss.GilbertElliott.from_rate`` runs packet by packet.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class Channel:
    """The path a frame's packets take, as the plan assumes it."""

    #: the share of packets lost, in [0, 1)
    loss: float = 0.0
    #: the mean run of consecutive losses, in packets (None: independent losses)
    burst: float | None = None
    #: sends of a lost tier-0 packet: above 1, it is sent again in up to ``rounds - 1``
    #: more rounds (acknowledgements, or the WebRTC tier-0 channel's retransmissions)
    rounds: int = 1
    #: bytes a frame's resends may spend beyond its budget, repaid by the frames after it
    #: (``FrameBudgets.resend_credit``); 0: resends only from the room the plan leaves
    resend_credit: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.loss < 1:
            raise ValueError(f"Invalid loss rate {self.loss}, should be in [0, 1)")
        if self.burst is not None and not self.burst >= 1:
            raise ValueError(f"Invalid burst {self.burst} packets, should be at least 1")
        if self.rounds < 1:
            raise ValueError(f"Invalid rounds {self.rounds}, should be at least 1")
        if not self.resend_credit >= 0:
            raise ValueError(f"Invalid resend credit {self.resend_credit}, should be at least 0")

    @property
    def resending(self) -> bool:
        """Whether lost tier-0 packets are sent again (there is loss and more than one
        round): the plan then keeps room for resends instead of parity."""
        return self.rounds > 1 and self.loss > 0


NO_LOSS = Channel()


def gilbert_transitions(loss: float, burst: float) -> tuple[float, float]:
    r"""(p, r) of the two-state Gilbert chain whose packets are all lost in the bad state
    B and all kept in the good state G, with mean loss ``loss`` and mean run of losses
    ``burst`` packets::

                 p
           +-----------+
           |           v
         [ G ]       [ B ]
           ^           |
           +-----------+
                 r

    A visit to B lasts 1 / r packets on average, and B's steady-state share
    p / (p + r) is the loss rate: r = 1 / burst, p = loss * r / (1 - loss)."""
    r = 1.0 / burst
    return loss * r / (1.0 - loss), r


# Loss patterns the planner scores each plan on: fixed, so a plan is a function of its
# inputs alone. 256 patterns keep the expected PSNR within about 0.1 dB.
PATTERNS = 256
PATTERN_PACKETS = 1024  # packets per pattern; a frame's tier 0 and parity are far fewer
_UNIFORM = np.random.default_rng(20261123).random((PATTERNS, PATTERN_PACKETS))


@lru_cache(maxsize=64)
def loss_patterns(loss: float, burst: float | None = None) -> np.ndarray:
    """(PATTERNS, PATTERN_PACKETS) bool, True where a packet is lost, in sending order:
    independent losses at rate ``loss``, or with ``burst`` (mean run of consecutive
    losses, in packets) a Gilbert chain of that rate and mean run
    (``gilbert_transitions``). Runs of 1 / (1 - loss) packets are what independent loss
    gives; shorter ones count as that."""
    if burst is None or burst <= 1.0 / (1.0 - loss) + 1e-9:
        return loss > _UNIFORM
    enter_bad, leave_bad = gilbert_transitions(loss, burst)
    draws = np.random.default_rng(20261124).random((PATTERNS, PATTERN_PACKETS))
    out = np.empty((PATTERNS, PATTERN_PACKETS), bool)
    bad = _UNIFORM[:, 0] < loss  # the chain's stationary share of bad packets
    for j in range(PATTERN_PACKETS):
        out[:, j] = bad
        bad = np.where(bad, draws[:, j] >= leave_bad, draws[:, j] < enter_bad)
    return out
