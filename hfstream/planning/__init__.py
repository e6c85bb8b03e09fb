"""Spending one frame's byte budget: each patch's rung, the schedule and tier-0 parity.

``encode_within(codec, image, budget, channel=Channel(loss=0.1))`` encodes a frame so
that its tiers 0 and 1, tier-0 parity (or the room kept for resends), its fallback and
every packet header fit ``budget`` bytes, choosing what to spend them on for the channel
the receiver reports (``Channel``: loss rate, mean run of losses, resend rounds):

- **Rungs** of the continuous stream (``hfstream.codec.allocation``: the most error
  removed per bit, after the quality floor).
- **Schedule**: how many indices travel in tier 1. The model records how many dB each
  schedule adds over the continuous stream (``index_gain_db`` in its config, else
  ``DEFAULT_INDEX_GAIN_DB``), and the planner counts that gain only for the share of
  indices that arrives.
- **Parity** of tier 0, how many patches share a tier-0 packet, and with resends the room
  kept for them. A patch whose tier-0 packet is lost and cannot be rebuilt costs the
  error of showing it from its neighbours' latents (``RungTable.lost``), or of mid-grey
  (``RungTable.blank``) when none of its neighbours arrived either.
- **Fallback** (under loss): the frame coded again at a quarter of its size, in one or two
  copies; where it arrives, a lost patch costs the fallback's error instead.

Every combination is scored on fixed loss patterns (``loss_patterns``); for each, the
rungs are fitted to what is left, and the best expected PSNR wins. Where the frame's tier
0 does not fit the budget at full size, it is coded at 1/2 or 1/4 of its size, tier 0
alone. What is left of the budget goes to tier 2 when it is sent.

Modules: ``channel`` (the channel and its loss patterns), ``costs`` (bytes on the wire),
``outcomes`` (a plan's expected error), ``search`` (``plan_frame``, the numpy core, which
tests drive with made-up rung tables), ``encode`` (``encode_within``, with the codec),
``gains`` (the schedules' gains, measured at export).
"""

from hfstream.planning.channel import NO_LOSS, Channel, gilbert_transitions, loss_patterns
from hfstream.planning.costs import schedule_tier1_bytes, tier0_cost, tier0_cost_at, tier1_floor
from hfstream.planning.encode import PlannedFrame, encode_within, fallback_option
from hfstream.planning.gains import DEFAULT_INDEX_GAIN_DB, SCHEDULES
from hfstream.planning.outcomes import FallbackOption, PatchErrors, frame_outcomes
from hfstream.planning.search import (
    PARITY_RATIOS,
    FramePlan,
    choose_scale,
    plan_frame,
)

__all__ = [
    "DEFAULT_INDEX_GAIN_DB",
    "NO_LOSS",
    "PARITY_RATIOS",
    "SCHEDULES",
    "Channel",
    "FallbackOption",
    "FramePlan",
    "PatchErrors",
    "PlannedFrame",
    "choose_scale",
    "encode_within",
    "fallback_option",
    "frame_outcomes",
    "gilbert_transitions",
    "loss_patterns",
    "plan_frame",
    "schedule_tier1_bytes",
    "tier0_cost",
    "tier0_cost_at",
    "tier1_floor",
]
