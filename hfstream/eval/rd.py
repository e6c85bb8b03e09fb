"""Rate and quality of every hfstream decode mode on one image."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from hfstream.codec.encoded import EncodedImage
from hfstream.codec.hybrid import HybridCodec
from hfstream.codec.index_coding import bits_per_index, encode_with_prior
from hfstream.codec.schedules import Schedule, kept_positions
from hfstream.eval.budget import BUDGETS_BPP, budget_rows
from hfstream.eval.classic import CODECS, fit_budget
from hfstream.eval.metrics import all_metrics

FILE_HEADER = 21  # bytes of the .hfs header
PATCH_HEADER = 5  # schedule + two string lengths
BLOB_HEADER = 2  # length of one index blob
SCHEDULES = (Schedule.HALF, Schedule.QUARTER, Schedule.NINTH, Schedule.SIXTEENTH)


def with_schedule(enc: EncodedImage, schedules: list[Schedule]) -> EncodedImage:
    return replace(
        enc,
        patches=tuple(replace(p, schedule=s) for p, s in zip(enc.patches, schedules, strict=True)),
    )


class IndexBytes:
    """Size of each patch's kept indices under fixed-length and learned-prior coding."""

    def __init__(self, codec: HybridCodec, enc: EncodedImage) -> None:
        self.enc = enc
        self.probs = codec.index_probabilities(codec.latents(list(enc.patches)), enc.codebook_size)
        self.bits = bits_per_index(enc.codebook_size)

    def fixed(self, positions: list[np.ndarray]) -> int:
        return sum((len(p) * self.bits + 7) // 8 for p in positions)

    def prior(self, positions: list[np.ndarray]) -> int:
        total = 0
        for i, (patch, pos) in enumerate(zip(self.enc.patches, positions, strict=True)):
            total += len(encode_with_prior(patch.indices[pos], self.probs[i, pos]))
        return total


def evaluate_image(
    codec: HybridCodec,
    ref: np.ndarray,
    *,
    iterative_steps: int = 8,
    classic: bool = True,
    refine_steps: int = 0,
    vmaf: bool = False,
    budgets_bpp: tuple[float, ...] = BUDGETS_BPP,
) -> list[dict]:
    """One row per method: bytes (as in an .hfs file, or the classic file), bpp, metrics.
    ``refine_steps``: the encoder's refinement of the continuous latent. ``vmaf``: each
    picture's VMAF too (``hfstream.eval.vmaf``: an FFmpeg run per picture).
    ``budgets_bpp``: the budgets of the planner's rows (``eval.budget``)."""
    rows: list[dict] = []
    pixels = ref.shape[0] * ref.shape[1]
    t0 = time.perf_counter()
    full = codec.encode(ref, schedule="1_1", refine_steps=refine_steps)
    encode_s = time.perf_counter() - t0
    n = len(full.patches)
    base = FILE_HEADER + n * PATCH_HEADER
    tier0 = full.continuous_bytes
    ib = IndexBytes(codec, full)
    all_pos = [np.arange(256)] * n

    def add(method: str, nbytes: int, img: np.ndarray, **extra: object) -> None:
        rows.append(
            {
                "method": method,
                "bytes": nbytes,
                "bpp": 8 * nbytes / pixels,
                **all_metrics(ref, img, vmaf=vmaf),
                **extra,
            }
        )

    add("continuous", base + tier0, codec.decode(full.without_indices(), mode="continuous"))
    add(
        "preview (tier 0, predicted indices)",
        base + tier0,
        codec.decode(full.without_indices(), mode="hybrid"),
    )
    add(
        "vq (all indices)",
        base + n * BLOB_HEADER + ib.fixed(all_pos),
        codec.decode(full, mode="vq"),
    )
    add(
        "hybrid (all indices)",
        base + tier0 + n * BLOB_HEADER + ib.prior(all_pos),
        codec.decode(full, mode="hybrid"),
    )
    t0 = time.perf_counter()
    for sched in SCHEDULES:
        enc = with_schedule(full, [sched] * n).kept_only()
        pos = [kept_positions(sched)] * n
        size = base + tier0 + n * BLOB_HEADER + ib.prior(pos)
        size_fixed = base + tier0 + n * BLOB_HEADER + ib.fixed(pos)
        t1 = time.perf_counter()
        img = codec.decode(enc, mode="hybrid")
        if sched == Schedule.QUARTER:
            decode_s = time.perf_counter() - t1
        add(
            f"hybrid {sched.label}",
            size,
            img,
            bytes_fixed=size_fixed,
            index_bits_prior=8 * ib.prior(pos) / (len(pos[0]) * n),
        )
        if sched in (Schedule.QUARTER, Schedule.NINTH):
            add(
                f"hybrid {sched.label} nearest fill",
                size,
                codec.decode(enc, mode="hybrid", fill="nearest"),
            )
            add(
                f"hybrid {sched.label} soft fill",
                size,
                codec.decode(enc, mode="hybrid", fill="soft"),
            )
            add(
                f"hybrid {sched.label} iterative {iterative_steps}",
                size,
                codec.decode(enc, mode="hybrid", steps=iterative_steps),
            )
            add(f"vq {sched.label} predictor fill", size, codec.decode(enc, mode="vq"))
            add(
                f"vq {sched.label} nearest fill", size, codec.decode(enc, mode="vq", fill="nearest")
            )
            add(f"vq {sched.label} soft fill", size, codec.decode(enc, mode="vq", fill="soft"))
    # Complexity-aware schedule.
    auto = [codec.complexity.schedule_for(codec.complexity.score(p)) for p in _patches_of(ref)]
    enc = with_schedule(full, auto).kept_only()
    pos = [kept_positions(s) for s in auto]
    add(
        "hybrid auto",
        base + tier0 + n * BLOB_HEADER + ib.prior(pos),
        codec.decode(enc, mode="hybrid"),
        kept_share=float(np.mean([len(p) for p in pos]) / 256),
    )
    # Reduced codebooks at 1_4.
    for k in sorted(codec.reductions, reverse=True):
        # Only the indices depend on the codebook: the continuous strings are ``full``'s.
        coded = codec.encode(ref, schedule="1_1", codebook_size=k)
        coded = replace(
            coded,
            patches=tuple(
                replace(p, continuous=f.continuous, rung=f.rung)
                for p, f in zip(coded.patches, full.patches, strict=True)
            ),
        )
        red = with_schedule(coded, [Schedule.QUARTER] * n)
        rb = IndexBytes(codec, red)
        pos = [kept_positions(Schedule.QUARTER)] * n
        add(
            f"hybrid 1_4 codebook {k}",
            base + tier0 + n * BLOB_HEADER + rb.prior(pos),
            codec.decode(red.kept_only(), mode="hybrid"),
            bytes_fixed=base + tier0 + n * BLOB_HEADER + rb.fixed(pos),
        )
    # Classic codecs at the byte budget of hybrid 1_4.
    budget = next(r["bytes"] for r in rows if r["method"] == "hybrid 1_4")
    if classic:
        for name in CODECS:
            res = fit_budget(ref, name, budget)
            if res is None:
                rows.append(
                    {
                        "method": name,
                        "bytes": None,
                        "bpp": None,
                        "psnr": None,
                        "ms_ssim": None,
                        "haarpsi": None,
                    }
                )
            else:
                add(name, res.bytes, res.image, factor=res.factor, quality=res.quality)
    rows += budget_rows(
        codec, ref, budgets_bpp, classic=classic, refine_steps=refine_steps, vmaf=vmaf
    )
    for r in rows:
        r["encode_s"] = encode_s
        r["decode_1_4_s"] = decode_s
        r["patches"] = n
    return rows


def _patches_of(ref: np.ndarray) -> np.ndarray:
    from hfstream.codec.frames import split_patches

    return split_patches(ref)
