"""hfstream at a byte budget (the frame planner, clean channel) against JPEG/WebP/AVIF.

For each budget in bpp, ``hfstream.planning.encode_within`` chooses the rungs and the
schedule; the row's bytes are what goes on the wire (tiers 0 and 1 with every packet's
header and tag; tier 2 is not sent) and its picture is the receiver's decode of them.
The classic codecs get a file of as many bytes (no packet headers: in their favour).
"""

from __future__ import annotations

import numpy as np

from hfstream.codec.frame_coding import packetize
from hfstream.codec.hybrid import HybridCodec
from hfstream.codec.joint_strings import Tier0Joiner
from hfstream.eval.classic import CODECS, fit_budget
from hfstream.eval.metrics import all_metrics
from hfstream.planning import PlannedFrame, encode_within
from hfstream.protocol.packetizer import Packetizer, PacketizerConfig
from hfstream.protocol.wire import TAG_SIZE

# The low end, where a stream lives, and up to 0.3 bpp, where stills ask for more detail.
BUDGETS_BPP = (0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.1, 0.2, 0.3)


def at_budget(
    codec: HybridCodec, ref: np.ndarray, bpp: float, refine_steps: int = 0
) -> tuple[PlannedFrame, int, np.ndarray]:
    """(the plan, bytes on the wire, the receiver's picture) of ``ref`` at ``bpp`` on a
    clean channel: tiers 0 and 1, no parity, no tier 2."""
    budget = bpp * ref.shape[0] * ref.shape[1] / 8
    config = PacketizerConfig(parity_ratio=0.0, send_withheld=False)
    planned = encode_within(
        codec,
        ref,
        budget,
        config=config,
        parity_ratios=(0.0,),
        refine_steps=refine_steps,
        joint_strings=True,
    )
    packets = packetize(
        planned.encoded,
        Packetizer(codec.model_id, config=planned.packetizer, joiner=Tier0Joiner(codec)),
        frame_id=0,
        priors=planned.priors,
        tiers=(0, 1),
    )
    sent = sum(len(p) + TAG_SIZE for _, p in packets.in_priority_order())
    return planned, sent, codec.decode(planned.encoded.kept_only(), mode="auto")


def budget_rows(
    codec: HybridCodec,
    ref: np.ndarray,
    budgets_bpp: tuple[float, ...] = BUDGETS_BPP,
    *,
    classic: bool = True,
    refine_steps: int = 0,
    vmaf: bool = False,
) -> list[dict]:
    """hfstream at each budget (``at_budget``) and, with ``classic``, each classic codec at
    the bytes hfstream sent; ``vmaf``: VMAF beside the other metrics."""
    pixels = ref.shape[0] * ref.shape[1]
    rows = []
    for bpp in budgets_bpp:
        budget = bpp * pixels / 8
        planned, sent, img = at_budget(codec, ref, bpp, refine_steps)
        plan = planned.plan
        rows.append(
            {
                "method": f"hfstream {bpp:g} bpp",
                "bytes": sent,
                "bpp": 8 * sent / pixels,
                "budget_use": sent / budget,
                "schedule": plan.schedule,
                "mean_rung": float(np.mean(plan.rungs)),
                **all_metrics(ref, img, vmaf=vmaf),
            }
        )
        if classic:
            for name in CODECS:
                res = fit_budget(ref, name, sent)
                # No file that small: the row says so in every column, as rd's rows do.
                row: dict = {
                    "method": f"{name} {bpp:g} bpp",
                    "bytes": None,
                    "bpp": None,
                    "psnr": None,
                    "ms_ssim": None,
                    "haarpsi": None,
                }
                if res is not None:
                    row.update(
                        bytes=res.bytes,
                        bpp=8 * res.bytes / pixels,
                        **all_metrics(ref, res.image, vmaf=vmaf),
                    )
                rows.append(row)
    return rows
