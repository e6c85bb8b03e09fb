"""``python -m sim.index_reuse --video CLIP``: what the VQ indices would add to predicted
frames, coded against the reference's (indices across time).

The clip is coded as a stream codes it on a clean channel: an intra frame (tier 0 at
``--intra-rung``, ``FINE``), then each frame predicted from the picture shown for the frame
before, ``--bpp`` a frame of tier 0, the shipped planner (a predicted frame sends no
indices). For each predicted frame, on the patches of the shown picture, it measures:

- **reuse**: the share of the frame's indices (the nearest words of the full codebook)
  equal to those of its reference moved by the frame's motion, which a receiver can
  compute for itself, and to those of the picture it shows;
- **cost**: the bytes of all the frame's indices sent on their own (``log2 K`` bits
  each), and coded against the moved reference's: a same-or-changed flag per index at
  the clip's entropy of that flag, the changed ones at ``log2 K`` bits. This is what an
  ideal coder with that one context would spend; a coder with the index prior as well
  would spend less on the changed ones;
- **gain**: the PSNR the index refiner adds to the shown picture given every index of the
  frame (what the indices bought), and given the moved reference's indices alone (a map
  filled from the previous frame, free);
- **the same bytes as strings**: the frame planned with its budget plus the conditional
  cost of its indices, and the PSNR that adds.

Prints a row per frame and the means.
"""

from __future__ import annotations

import math
import sys

import numpy as np

import hfstream.arguments as a
from sim import cli


def main(argv: list[str] | None = None) -> int:
    p = cli.parser("python -m sim.index_reuse", __doc__)
    p.add_argument("--video", required=True, help="a video file")
    p.add_argument("--frames", type=a.positive_int, default=12, help="frames of the clip read")
    p.add_argument("--bpp", type=a.positive_float, default=0.05, help="tier 0 of a frame")
    p.add_argument("--intra-rung", type=int, default=5, help="rung of the intra frame")
    p.add_argument("--model", help="model folder (default: the shipped model)")
    args = p.parse_args(argv)
    import torch

    from hfstream.codec.codebooks import tokenize
    from hfstream.codec.correction import certainty_planes
    from hfstream.codec.frames import split_patches, to_tensor, to_uint8
    from hfstream.codec.hybrid import HybridCodec
    from hfstream.codec.motion import motion_picture
    from hfstream.codec.rates import Fixed
    from hfstream.codec.refined_picture import refined_picture
    from hfstream.codec.tiling import from_tiles
    from hfstream.codec.tiling import patch_grid as tiled
    from hfstream.eval.metrics import psnr
    from hfstream.geometry import FINE, GRID, patch_grid
    from hfstream.media.video import read_frames
    from hfstream.planning.temporal import encode_predicted

    codec = HybridCodec.from_pretrained(args.model)
    if codec.refiner is None:
        p.error("the model has no index refiner")
    frames = list(read_frames(args.video, args.frames))
    height, width = frames[0].shape[:2]
    rows, cols = patch_grid(height, width)
    budget = args.bpp * height * width / 8
    bits = math.log2(codec.tokenizer.config.codebook_size)

    def words(picture: np.ndarray) -> torch.Tensor:
        return tokenize(codec.tokenizer, split_patches(picture), None)  # (P, 16, 16)

    @torch.inference_mode()
    def vq_picture(indices: torch.Tensor) -> np.ndarray:
        """The VQ decoder's picture of ``indices`` alone: what the index maps hold."""
        codes = from_tiles(codec.tokenizer.codebook.embed(indices), rows, cols)
        with tiled(rows, cols):
            out = codec.tokenizer.decoder(codes, None)
        return to_uint8(out.clamp(0, 1))[0][:height, :width]

    @torch.inference_mode()
    def refined(shown: np.ndarray, indices: torch.Tensor) -> np.ndarray:
        """``shown`` through the index refiner with ``indices`` as if every one arrived."""
        n = indices.shape[0]
        codes = codec.tokenizer.codebook.embed(indices)
        known = torch.ones(n, GRID * GRID, dtype=torch.bool)
        certainty = certainty_planes(known, torch.ones(n, GRID * GRID))
        padded = np.pad(
            shown, ((0, rows * 256 - height), (0, cols * 256 - width), (0, 0)), mode="edge"
        )
        out = refined_picture(
            codec.refiner,
            codec.tokenizer,
            to_tensor(padded[None]),
            codes=from_tiles(codes, rows, cols),
            certainty=from_tiles(certainty, rows, cols),
            grid=(rows, cols),
        )
        return to_uint8(out.clamp(0, 1))[0][:height, :width]

    intra = codec.encode_tier0(frames[0], rate=Fixed(args.intra_rung), scale=FINE)
    reference = codec.decode(intra)
    references = {}  # frame -> the picture it was predicted from
    flags_same, flags_all = 0, 0
    rows_out = []
    print("frame | tier 0 B | shown dB | same as moved ref | same as shown | +all indices dB"
          " | +ref indices dB")  # fmt: skip
    for t in range(1, len(frames)):
        image = frames[t]
        references[t] = reference
        planned = encode_predicted(codec, image, budget, reference=reference, reference_id=t - 1)
        enc = planned.encoded
        shown = codec.decode(enc, reference=reference)
        vectors = np.array([q.motion for q in enc.patches], int)
        moved = motion_picture(reference, vectors, enc.grid, enc.scale)
        truth, from_ref, from_shown = words(image), words(moved), words(shown)
        same = (truth == from_ref).float()
        flags_same += int(same.sum())
        flags_all += same.numel()
        base = psnr(image, shown)
        row = {
            "t": t,
            "bytes": planned.plan.bytes,
            "shown": base,
            "reuse_ref": float(same.mean()),
            "reuse_shown": float((truth == from_shown).float().mean()),
            "all": psnr(image, refined(shown, truth)) - base,
            "ref": psnr(image, refined(shown, from_ref)) - base,
            "vq": psnr(image, vq_picture(truth)),
            "changed": int((1 - same).sum()),
            "count": same.numel(),
        }
        rows_out.append(row)
        print(
            f"{t} | {row['bytes']:.0f} | {base:.2f} | {row['reuse_ref']:.3f} | "
            f"{row['reuse_shown']:.3f} | {row['all']:+.2f} | {row['ref']:+.2f}",
            flush=True,
        )
        reference = shown
    share = flags_same / flags_all
    flag_bits = (
        0.0
        if share in (0.0, 1.0)
        else -(share * math.log2(share) + (1 - share) * math.log2(1 - share))
    )
    print(f"\nindices per frame {rows_out[0]['count']}, {bits:.0f} bits each on their own")
    more = []  # the same bytes as tier 0, each frame against its own reference
    for row in rows_out:
        t, reference = row["t"], references[row["t"]]
        cost = (row["count"] * flag_bits + row["changed"] * bits) / 8
        row["alone"] = row["count"] * bits / 8
        row["conditional"] = cost
        bigger = encode_predicted(
            codec, frames[t], budget + cost, reference=reference, reference_id=t - 1
        )
        shown = codec.decode(bigger.encoded, reference=reference)
        more.append(psnr(frames[t], shown) - row["shown"])

    def mean(key: str) -> float:
        return float(np.mean([r[key] for r in rows_out]))

    print(f"same-as-moved-reference flag: {share:.3f} of indices, {flag_bits:.3f} bits each")
    print(f"mean over {len(rows_out)} predicted frames:")
    print(f"- tier 0: {mean('bytes'):.0f} B, {mean('shown'):.2f} dB")
    print(f"- indices equal to the moved reference's: {mean('reuse_ref'):.3f}")
    print(f"- indices equal to the shown picture's: {mean('reuse_shown'):.3f}")
    print(f"- all indices: {mean('alone'):.0f} B on their own,")
    print(f"  {mean('conditional'):.0f} B against the moved reference's")
    print(f"- the refiner with every index: {mean('all'):+.2f} dB,")
    print(f"  with the moved reference's alone: {mean('ref'):+.2f} dB")
    print(f"- the VQ decoder's picture of every index alone: {mean('vq'):.2f} dB")
    print(f"- the conditional bytes spent as tier 0 instead: {float(np.mean(more)):+.2f} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
