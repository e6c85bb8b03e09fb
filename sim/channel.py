"""One image through a lossy channel, packet by packet, in simulated time (no sockets).

Each method turns the image into packets within a byte budget (headers and FEC
included), the loss model decides which arrive, and the receiver-side decode gives the
picture. hfstream methods use the real packetizer, reassembler and progressive decoder;
the classic codecs are cut into MTU-sized packets with the same per-packet cost
(hfstream's header and authentication tag).
"""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image
from scipy.stats import binom

from hfstream.codec.encoded import EncodedImage
from hfstream.codec.frame_coding import packetize
from hfstream.codec.hybrid import HybridCodec
from hfstream.codec.joint_strings import Tier0Joiner
from hfstream.eval.classic import CODECS, fit_budget
from hfstream.protocol.packetizer import Packetizer, PacketizerConfig
from hfstream.protocol.wire import OVERHEAD, TAG_SIZE
from hfstream.stream.progressive import FrameDecodeState, build_encoded, reassemble
from sim.loss import LossModel

FALLBACK_GREY = 128  # an undecodable picture is scored as a mid-grey frame
FEC_RATIOS = (0.0, 0.25, 0.5, 1.0, 2.0)


@dataclass(frozen=True)
class Delivery:
    image: np.ndarray
    decodable: bool
    bytes_sent: int
    packets_sent: int
    packets_lost: int
    detail: str  # the setting the method chose (schedule, factor, FEC ratio...)


def _apply_loss(packets: list[bytes], loss: LossModel) -> list[bytes]:
    return [p for p in packets if not loss.lost()]


# ---------------------------------------------------------------- hfstream
def hfstream_packets(*args: Any, **kwargs: Any) -> tuple[list[bytes], str]:
    """``hfstream_tiered_packets``'s packets without their tiers."""
    tiered, detail = hfstream_tiered_packets(*args, **kwargs)
    return [d for _, d in tiered], detail


def hfstream_tiered_packets(
    codec: HybridCodec,
    ref: np.ndarray,
    budget: int,
    mode: str,
    fec: bool,
    loss: float = 0.0,
    burst: float | None = None,
    refine_steps: int = 0,
    rounds: int = 1,
) -> tuple[list[tuple[int, bytes]], str]:
    """The packets of ``ref`` within ``budget`` bytes, planned for the loss rate ``loss``
    in runs of ``burst`` packets on average (None: independent losses)
    (``hfstream.planning``: rungs, schedule and tier-0 parity; without ``fec`` no parity,
    ``mode`` ``continuous``: no indices). Tier 2 fills what the plan leaves. When not even
    every patch at rung 0 fits, tier 0 is sent over the budget (and the detail says so).
    ``vq``: every index, fixed-length, no tier 0. ``refine_steps``: the continuous
    latent's encode-time refinement (``hfstream.codec.refinement``). ``rounds`` above 1:
    the plan leaves room for resending lost tier-0 packets instead of parity
    (``arq_delivery`` sends them). Returns (tier, packet) pairs in sending order and a
    line on the plan (``hfstream_packets``: the packets alone)."""
    from dataclasses import replace

    from hfstream.codec.schedules import Schedule
    from hfstream.planning import PARITY_RATIOS, SCHEDULES, Channel, encode_within

    if mode == "vq":  # indices only, fixed-length, no tier 0: every position in tier 1
        full = codec.encode(ref, "1_1")
        p = Packetizer(codec.model_id, config=PacketizerConfig(parity_ratio=0.0))
        enc = replace(full, patches=tuple(replace(q, schedule=Schedule.ALL) for q in full.patches))
        fp = packetize(enc, p, frame_id=0, tiers=(1,), frame_budget=budget)
        return fp.in_priority_order(), "1_1 fixed"
    planned = encode_within(
        codec,
        ref,
        budget,
        channel=Channel(loss=loss, burst=burst, rounds=rounds),
        schedules=("0",) if mode == "continuous" else SCHEDULES,
        parity_ratios=PARITY_RATIOS if fec or rounds > 1 else (0.0,),
        refine_steps=refine_steps,
        joint_strings=True,  # as a sender's intra frames
    )
    plan = planned.plan
    fp = packetize(
        planned.encoded,
        Packetizer(codec.model_id, config=planned.packetizer, joiner=Tier0Joiner(codec)),
        frame_id=0,
        priors=planned.priors,
        tiers=(0, 1, 2) if mode == "hybrid" else (0, 1),
        frame_budget=budget,
        strict_budget=True,
    )
    tiered = fp.in_priority_order()
    rungs = "".join(str(r) for r in plan.rungs)
    detail = f"{plan.schedule} rungs {rungs} parity {plan.parity_ratio:g}"
    if plan.resend_bytes:
        detail += f" resends {plan.resend_bytes} B"
    if plan.tier0_patches:
        detail += f" ({plan.tier0_patches} patches per packet)"
    if plan.fallback_bytes:
        detail += f" fallback {plan.fallback_bytes} B"
        if plan.fallback_copies > 1:
            detail += f" in {plan.fallback_copies} copies"
    if sum(len(q) + TAG_SIZE for _, q in tiered) > budget:
        detail += " over budget"
    return tiered, detail


Block = tuple[list[int], list[int]]  # a tier-0 erasure-code block: data, parity positions


def tier0_blocks(tiered: list[tuple[int, bytes]]) -> list[Block]:
    """The erasure-code blocks of a frame's packets, as positions in ``tiered``: each
    block's tier-0 data packets and parity packets (a data packet no parity covers is a
    block of its own, and so is each fallback packet, its copies as its parity)."""
    from hfstream.protocol.wire import PacketType, parse_header, parse_parity

    data: list[int] = []
    fallback: list[int] = []
    parity: dict[tuple[int, int], list[int]] = {}
    for i, (_, packet) in enumerate(tiered):
        header, payload = parse_header(packet)
        if header.type == PacketType.TIER0:
            data.append(i)
        elif header.type == PacketType.FALLBACK:
            fallback.append(i)
        elif header.type == PacketType.PARITY:
            entry = parse_parity(payload)
            parity.setdefault((entry.first, entry.k), []).append(i)
    covered: set[int] = set()
    blocks: list[Block] = []
    for (first, k), shares in sorted(parity.items()):
        members = data[first : first + k]
        covered.update(members)
        blocks.append((members, shares))
    blocks += [([i], []) for i in data if i not in covered]
    # Copies of a fallback packet: any one will do, the first is resent.
    copies: dict[bytes, list[int]] = {}
    for i in fallback:
        copies.setdefault(parse_header(tiered[i][1])[1], []).append(i)
    return blocks + [([first], rest) for first, *rest in copies.values()]


@dataclass(frozen=True)
class ArqOutcome:
    arrived: list[int]  #: positions of the packets that arrived
    bytes_sent: int  #: with tags
    packets_sent: int
    #: resend rounds after which tier 0 was whole or could be rebuilt (0: none needed;
    #: ``rounds``: it never was)
    rounds_needed: int


def arq_delivery(
    tiered: list[tuple[int, bytes]],
    lost: Callable[[], bool],
    budget: int,
    rounds: int,
    blocks: list[Block] | None = None,
) -> tuple[list[int], int, int]:
    """``arq_outcome`` as (positions of the packets that arrived, bytes sent, packets
    sent)."""
    out = arq_outcome(tiered, lost, budget, rounds, blocks)
    return out.arrived, out.bytes_sent, out.packets_sent


def arq_outcome(
    tiered: list[tuple[int, bytes]],
    lost: Callable[[], bool],
    budget: int,
    rounds: int,
    blocks: list[Block] | None = None,
    *,
    resend_credit: int = 0,
) -> ArqOutcome:
    """Send tiers 0 and 1 once, then, round after round (up to ``rounds`` sends of a
    packet in all), the lost tier-0 data packets of each erasure-code block that what
    arrived cannot rebuild, then tier 2, while the bytes sent (with tags) stay within
    ``budget`` (the resends within ``budget`` + ``resend_credit``): what a sender does
    whose receiver acknowledges tier 0, or the WebRTC tier-0 channel's retransmissions.
    ``lost()``: the channel, one draw per packet sent, in sending order. ``blocks``:
    ``tier0_blocks`` (None: every tier-0 packet on its own)."""
    if blocks is None:
        blocks = [([i], []) for i, (tier, _) in enumerate(tiered) if tier == 0]
    arrived: set[int] = set()
    sent_bytes = sent = 0

    def send(i: int, planned: bool = False, credit: int = 0) -> bool:
        """Send packet i unless it would overrun the budget and ``credit`` (``planned``:
        the packetizer fitted it already, or it is tier 0 that must go out even over the
        budget)."""
        nonlocal sent_bytes, sent
        size = len(tiered[i][1]) + TAG_SIZE
        if not planned and sent_bytes + size > budget + credit:
            return False
        sent_bytes += size
        sent += 1
        if not lost():
            arrived.add(i)
        return True

    for i, (tier, _) in enumerate(tiered):
        if tier < 2:
            send(i, planned=True)

    def missing() -> list[int]:
        return [
            i
            for members, shares in blocks
            if len(arrived.intersection(members + shares)) < len(members)
            for i in members
            if i not in arrived
        ]

    needed = 0
    for resend in range(1, rounds):
        lacking = missing()
        if not lacking:
            break
        needed = resend
        if not all(send(i, credit=resend_credit) for i in lacking):
            break
    if missing():
        needed = rounds
    for i, (tier, _) in enumerate(tiered):
        if tier == 2 and not send(i):
            break
    return ArqOutcome(sorted(arrived), sent_bytes, sent, needed)


def reassembled(codec: HybridCodec, packets: list[bytes]) -> EncodedImage | None:
    """The frame that ``packets`` (all of one frame) give a receiver, None when none
    opens it."""
    state = reassemble(codec, packets)
    return None if state is None else build_encoded(codec, state, FrameDecodeState())


def hfstream_receive(
    codec: HybridCodec, arrived: list[bytes], shape: tuple[int, ...], mode: str
) -> tuple[np.ndarray, bool]:
    """What the receiver shows from the packets that arrived, and whether any of it was
    decodable (mid-grey when nothing was)."""
    enc = reassembled(codec, arrived)
    if enc is None:
        return np.full(shape, FALLBACK_GREY, np.uint8), False
    decode_mode = "vq" if mode == "vq" else ("continuous" if mode == "continuous" else "auto")
    fill = "nearest" if mode == "vq" else "auto"  # what the receiver's decode uses
    img = codec.decode(enc, mode=decode_mode, fill=fill)
    ok = enc.fallback is not None or any(
        p.continuous is not None or p.known.any() for p in enc.patches
    )
    return img, ok


def hfstream_deliver(
    codec: HybridCodec,
    ref: np.ndarray,
    budget: int,
    mode: str,
    fec: bool,
    loss: LossModel,
    expected_loss: float = 0.0,
) -> Delivery:
    packets, detail = hfstream_packets(codec, ref, budget, mode, fec, expected_loss)
    arrived = _apply_loss(packets, loss)
    img, ok = hfstream_receive(codec, arrived, ref.shape, mode)
    return Delivery(
        img,
        ok,
        sum(len(q) + TAG_SIZE for q in packets),
        len(packets),
        len(packets) - len(arrived),
        detail,
    )


# ---------------------------------------------------------------- classic codecs
def mtu_chunks(data: bytes, mtu: int) -> list[bytes]:
    size = mtu - OVERHEAD
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


def _decode_classic(data: bytes, shape: tuple[int, ...]) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB").resize((shape[1], shape[0]), Image.Resampling.BICUBIC))


def fec_ratio_for(k: int, p: float, target: float = 0.95) -> float:
    """Smallest ratio in ``FEC_RATIOS`` whose block of k + ceil(k r) survives loss ``p``
    with probability >= target (Bernoulli), else the largest: the sender knows the rate."""
    for r in FEC_RATIOS:
        m = math.ceil(k * r)
        if binom.cdf(m, k + m, p) >= target:
            return r
    return FEC_RATIOS[-1]


def classic_deliver(
    ref: np.ndarray,
    codec: str,
    protection: str,
    budget: int,
    loss: LossModel,
    expected_loss: float,
    mtu: int = 1200,
    rounds: int = 4,
) -> Delivery:
    """``protection``: ``none``, ``fec`` (Reed-Solomon sized for the expected loss) or
    ``arq`` (lost packets resent for up to ``rounds`` round trips, within the budget)."""
    assert codec in CODECS and protection in ("none", "fec", "arq"), (codec, protection)
    per_packet = mtu - OVERHEAD
    if protection == "fec":
        # Shrink the source until source + parity (and headers) fit the budget.
        ratio, source = 0.0, budget
        for _ in range(8):
            k = max(1, math.ceil(source / per_packet))
            ratio = fec_ratio_for(k, expected_loss)
            packets_total = k + math.ceil(k * ratio)
            if packets_total * mtu <= budget or source < 200:
                break
            source = int(budget / (1 + ratio)) - OVERHEAD * math.ceil(k * (1 + ratio))
    elif protection == "arq":
        source = int(budget * (1 - expected_loss)) - OVERHEAD * math.ceil(budget / mtu)
    else:
        source = budget - OVERHEAD * math.ceil(budget / per_packet)
    fit, data = classic_file(ref, codec, max(source, 1))
    grey = np.full_like(ref, FALLBACK_GREY)
    if fit is None:
        return Delivery(grey, False, 0, 0, 0, "does not fit")
    chunks = mtu_chunks(data, mtu)
    k = len(chunks)
    mean_packet = len(data) / k + OVERHEAD
    detail = f"x{fit.factor} q{fit.quality}"
    if protection == "none":
        sent = k
        ok = sum(loss.lost() for _ in range(k)) == 0
    elif protection == "fec":
        # Reed-Solomon is MDS: any k of the k + m packets rebuild the file.
        m = math.ceil(k * fec_ratio_for(k, expected_loss))
        sent = k + m
        ok = sum(not loss.lost() for _ in range(sent)) >= k
        detail += f" rs({k},{k + m})"
    else:
        missing, sent = k, 0
        for _ in range(rounds):
            if not missing or (sent + missing) * mean_packet > budget:
                break
            sent += missing
            missing = sum(loss.lost() for _ in range(missing))
        ok = missing == 0
        detail += f" arq x{sent / k:.2f}"
    img = _decode_classic(data, ref.shape) if ok else grey
    return Delivery(img, ok, round(sent * mean_packet), sent, 0, detail)


_FILES: dict[tuple, tuple] = {}
_FILES_MAX = 512


def classic_file(ref: np.ndarray, codec: str, source: int) -> tuple:
    """(fit, file bytes) of the best classic file within ``source`` bytes, remembered:
    a sweep asks for the same image, codec and size once per loss rate and seed."""
    key = (hashlib.blake2b(ref.tobytes(), digest_size=16).digest(), ref.shape, codec, source)
    if key not in _FILES:
        if len(_FILES) >= _FILES_MAX:
            _FILES.clear()
        fit = fit_budget(ref, codec, source)
        _FILES[key] = (fit, None if fit is None else _encode_again(ref, fit))
    return _FILES[key]


def _encode_again(ref: np.ndarray, fit) -> bytes:
    """The bytes of the classic file ``fit_budget`` chose (it returns only the picture)."""
    from hfstream.eval.classic import encode_pillow

    h, w = ref.shape[:2]
    small = Image.fromarray(ref).resize(
        (max(1, round(w / fit.factor)), max(1, round(h / fit.factor))), Image.Resampling.LANCZOS
    )
    return encode_pillow(small, CODECS[fit.codec], fit.quality)
