"""hfstream's video path over a lossy channel, frame by frame with acknowledgements.

The sender codes each frame (``hfstream.planning.temporal``) against the newest frame
it may trust, or one just before it that shows its own frame much better
(``hfstream.stream.references.choose_reference``), or on its own (intra) while it has
none. A frame is trusted when the receiver acknowledged it as decoded exactly, or, with
``in_flight``, while its acknowledgement is not yet due and its own reference is trusted
(``trusted``): each frame then codes one frame's motion, as VP8's and H.264's do. An
acknowledgement reaches the sender ``ack_delay_frames`` frames after the frame it
acknowledges: one frame to send it, and the round trip ``rtt_ms`` rounded up to whole
frames. A frame is exact when every packet the sender announced arrived or was rebuilt by
the erasure code, and its reference was exact; only then is it acknowledged. A frame
predicted from one the receiver does not hold exactly is shown from the picture it has
(wrong where its reference was), so a loss never spreads past the frames in flight.
With ``resends``, lost tier-0 packets are
sent again a round trip later (``sim.channel.arq_outcome``), as WebRTC's NACK does for
VP8 and H.264: the frame is then shown and acknowledged that much later. Resends may
overrun the frame's budget by a credit that the frames after it repay
(``FrameBudgets.resend_credit``). Every packet goes through the real packetizer and reassembler.

With ``temporal=False`` every frame is intra: hfstream's stream as it was before
predicted frames.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from hfstream.codec.frame_coding import packetize
from hfstream.codec.hybrid import HybridCodec
from hfstream.codec.joint_strings import Tier0Joiner
from hfstream.geometry import SCALES
from hfstream.planning import PARITY_RATIOS, Channel, encode_within
from hfstream.planning.encode import PlannedFrame
from hfstream.planning.frame_budgets import KEY_SHARE, FrameBudgets
from hfstream.planning.gains import SCHEDULES
from hfstream.planning.temporal import LIVE_INTRA_SCHEDULES, LIVE_SCALES, REUSE, encode_predicted
from hfstream.protocol.packetizer import Packetizer, PacketizerConfig
from hfstream.stream.progressive import FrameDecodeState, build_encoded, reassemble
from hfstream.stream.references import IN_FLIGHT_MAX_LOSS, choose_reference, shown_error
from sim.channel import FALLBACK_GREY, arq_outcome, tier0_blocks
from sim.loss import LossModel
from sim.video_channel import ClipDelivery

HELD = 16  # pictures each end keeps for references


def ack_delay_frames(rtt_ms: float, fps: float) -> int:
    """Frames between a frame and the first one that may be predicted from it."""
    return 1 + math.ceil(rtt_ms * fps / 1000)


@dataclass
class _Sent:
    planned: PlannedFrame
    tiered: list[tuple[int, bytes]]  # (tier, packet) in sending order
    picture: np.ndarray  # what the receiver shows when every packet arrives

    @property
    def packets(self) -> list[bytes]:
        return [p for _, p in self.tiered]


def hfstream_temporal_deliver(
    codec: HybridCodec,
    frames: Sequence[np.ndarray],
    budget_per_frame: int,
    loss: LossModel,
    *,
    expected_loss: float = 0.0,
    fps: float = 10,
    rtt_ms: float = 100,
    resends: int = 0,
    fec: bool = True,
    temporal: bool = True,
    key_share: float = KEY_SHARE,
    fast: bool = False,
    in_flight: bool = True,
    progress: Callable[[], None] | None = None,
) -> ClipDelivery:
    """The clip through ``loss``, planned for ``expected_loss``; see the module doc.
    Each frame's budget comes from a rate of ``budget_per_frame`` bytes a frame
    (``FrameBudgets``): an intra frame may spend ``key_share`` frames' budgets, which
    the frames after it pay back, and a frame gets what the frames before it left
    unspent (at most one frame's budget more), so room kept for resends that were not
    needed is not lost to the clip. ``fast``: frames planned as a live sender plans them
    (``encode_predicted(fast=True)`` at ``LIVE_SCALES``; intra frames there too, tier 0
    alone). ``resends``: rounds in which the
    lost tier-0 packets are sent again, one round trip apart (what the frame's latency
    budget allows; the planner leaves room for them instead of, or beside, parity).
    ``in_flight``: a frame may be predicted from one not yet acknowledged while no frame
    of its chain back to an acknowledged one is known lost (``trusted``), where
    ``expected_loss`` is below ``IN_FLIGHT_MAX_LOSS``; else only from acknowledged
    frames."""
    delay = ack_delay_frames(rtt_ms, fps)
    channel = Channel(loss=expected_loss, rounds=1 + resends)
    ratios = PARITY_RATIOS if fec else (0.0,)
    held_by_sender: dict[int, np.ndarray] = {}
    held_by_receiver: dict[int, np.ndarray] = {}
    acked_from: dict[int, int] = {}  # frame -> the first frame that may predict from it
    reference_of: dict[int, int | None] = {}  # frame -> its reference (None: intra)
    # Frames after a frame's sending by which its acknowledgement, resends included, is due.
    due = delay + math.ceil(resends * rtt_ms * fps / 1000)
    exact: set[int] = set()  # frames the receiver shows exactly as the sender does
    last = np.full(frames[0].shape, FALLBACK_GREY, np.uint8)
    shown, fresh = [], []
    delays: list[float | None] = []
    sent = lost = total = 0
    kinds: Counter[str] = Counter()
    budgets = FrameBudgets(key_share if temporal else 1.0)
    mtu = PacketizerConfig().mtu
    scales = LIVE_SCALES if fast else SCALES  # a live sender's frames
    sent_errors: dict[int, float] = {}  # frame -> what it shows whole, against itself
    for i, image in enumerate(frames):
        if in_flight and expected_loss < IN_FLIGHT_MAX_LOSS:
            usable = [j for j in held_by_sender if trusted(j, i, acked_from, reference_of, due)]
        else:
            usable = [j for j, t in acked_from.items() if t <= i and j in held_by_sender]
        reference = None
        if temporal and usable:
            reference = choose_reference({j: sent_errors[j] for j in usable})
        left = len(frames) - i  # the clip ends: what it borrows, it repays in time
        budget = int(budgets.budget(budget_per_frame, intra=reference is None, frames_left=left))
        credit = int(budgets.resend_credit(budget_per_frame, frames_left=left)) if resends else 0
        # The plan counts the credit as room for resends where a frame fits one packet.
        counted = budgets.planned_credit(budget_per_frame, mtu=mtu, frames_left=left)
        planned_for = replace(channel, resend_credit=int(counted)) if resends else channel
        if reference is None:
            planned = encode_within(
                codec,
                image,
                budget,
                channel=planned_for,
                parity_ratios=ratios,
                # A live sender's intra frames: tier 0 alone, at its predicted frames' scales.
                scales=scales,
                schedules=LIVE_INTRA_SCHEDULES if fast else SCHEDULES,
                joint_strings=not fast,  # as a live sender's
            )
        else:
            planned = encode_predicted(
                codec,
                image,
                budget,
                reference=held_by_sender[reference],
                reference_id=reference,
                channel=planned_for,
                parity_ratios=ratios,
                fast=fast,
                scales=scales,
            )
        kinds[_kind(planned)] += 1
        reference_of[i] = reference
        out = _send(codec, planned, i, budget, held_by_sender.get(reference))
        _keep(held_by_sender, i, out.picture)
        sent_errors[i] = shown_error(image, out.picture)
        tiered = out.tiered
        got = arq_outcome(
            tiered, loss.lost, budget, 1 + resends, tier0_blocks(tiered), resend_credit=credit
        )
        budgets.spent(budget_per_frame, got.bytes_sent)
        sent += got.packets_sent
        lost += got.packets_sent - len(got.arrived)
        total += got.bytes_sent
        arrived = [tiered[k][1] for k in got.arrived]
        picture, complete = _receive(codec, arrived, out, held_by_receiver, exact, last)
        waited = min(got.rounds_needed, resends)  # resend rounds before it was shown
        if picture is not None:
            _keep(held_by_receiver, i, picture)
        if complete:
            exact.add(i)
            acked_from[i] = i + delay + math.ceil(waited * rtt_ms * fps / 1000)
        if picture is not None:
            last = picture
        shown.append(last)
        fresh.append(picture is not None)
        delays.append(rtt_ms / 2 + waited * rtt_ms if picture is not None else None)
        if progress is not None:
            progress()
    detail = ("temporal; " if temporal else "intra; ") + ", ".join(
        f"{k} x{n}" for k, n in kinds.most_common()
    )
    return ClipDelivery(shown, fresh, total, sent, lost, detail, delays)


def trusted(
    frame: int,
    now: int,
    acked_from: dict[int, int],
    reference_of: dict[int, int | None],
    due: int,
) -> bool:
    """Whether frame ``now`` may be predicted from ``frame``: it is acknowledged, or its
    acknowledgement is not yet due (``due`` frames after it) and its own reference is
    trusted. A lost frame then spoils only the frames sent before its loss is known."""
    while True:
        if acked_from.get(frame, now + 1) <= now:
            return True
        if now >= frame + due:
            return False  # its acknowledgement is overdue: lost
        reference = reference_of[frame]
        if reference is None:
            return True  # an intra frame in flight
        frame = reference


def _kind(planned: PlannedFrame) -> str:
    enc = planned.encoded
    scale = "FINE" if enc.scale < 1 else f"1/{enc.scale}"
    if not enc.predicted:
        return f"intra {scale}"
    reused = sum(r == REUSE for r in planned.plan.rungs)
    kind = "P residual" if enc.residual else "P"
    return f"{kind} {scale} reuse {round(100 * reused / len(planned.plan.rungs), -1):.0f}%"


def _send(
    codec: HybridCodec,
    planned: PlannedFrame,
    frame_id: int,
    budget: int,
    reference: np.ndarray | None,
) -> _Sent:
    fp = packetize(
        planned.encoded,
        Packetizer(codec.model_id, config=planned.packetizer, joiner=Tier0Joiner(codec)),
        frame_id=frame_id,
        priors=planned.priors,
        frame_budget=budget,
        strict_budget=True,
    )
    tiered = fp.in_priority_order()
    picture = _decode(codec, [p for _, p in tiered], reference)
    assert picture is not None
    return _Sent(planned, tiered, picture[0])


def _decode(
    codec: HybridCodec, packets: list[bytes], reference: np.ndarray | None
) -> tuple[np.ndarray, bool] | None:
    """What a receiver shows from ``packets`` (None: nothing) and whether the frame was
    complete."""
    state = reassemble(codec, packets)
    if state is None:
        return None
    enc = build_encoded(codec, state, FrameDecodeState())
    return codec.decode(enc, reference=reference), state.complete


def _receive(
    codec: HybridCodec,
    arrived: list[bytes],
    sent: _Sent,
    held: dict[int, np.ndarray],
    exact: set[int],
    last: np.ndarray,
) -> tuple[np.ndarray | None, bool]:
    """(the picture shown, None where nothing arrived; whether it is the sender's picture:
    every packet arrived and its reference was shown exactly). A frame predicted from one
    shown inexactly, or not at all (then from the last picture shown), is shown from what
    the receiver has: wrong only where its reference was."""
    reference = sent.planned.encoded.reference
    reference_exact = reference is None or reference in exact
    if len(arrived) == len(sent.packets) and reference_exact:
        return sent.picture, True
    picture = None if reference is None else held.get(reference, last)
    got = _decode(codec, arrived, picture)
    if got is None:
        return None, False
    shown, complete = got
    return shown, complete and reference_exact


def _keep(held: dict[int, np.ndarray], frame_id: int, picture: np.ndarray) -> None:
    held[frame_id] = picture
    for old in sorted(held)[:-HELD]:
        del held[old]
