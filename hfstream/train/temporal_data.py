"""Stage ``temporal-data``: code clips as a stream does, and keep what the temporal
synthesis learns from.

Each clip (``hfstream.train.motion_clips``: motion made from the training photos, and
windows of the real clips given with ``--clips``) is coded frame by frame: the first
frame intra (``encode_within``), every later one predicted (``encode_predicted``) from
the decoded picture of a frame one or two frames back, as acknowledgements a round trip
late allow. For each predicted frame that codes a patch, a shard keeps:

- ``image``: the frame;
- ``decoded``: what the decoder shows for it complete, without temporal synthesis;
- ``moved``: its reference picture moved by the frame's motion vectors;
- ``mask``: the pixels of the patches it coded (the only ones the synthesis changes).

The clips are coded at a random budget per frame (0.03 to 0.1 bpp), so every rung and
both the full size and ``FINE`` appear. The coded patches carry their motion, so
``moved`` is aligned with them. ``--decode-with-synthesis`` codes the clips with the
model's own temporal synthesis in the loop (references then are its pictures, as in a
stream); the shards still hold the picture before it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from tqdm import tqdm

from hfstream.codec.hybrid import HybridCodec
from hfstream.codec.temporal import moved_reference
from hfstream.codec.temporal_synthesis import TemporalConfig, TemporalSynthesis
from hfstream.geometry import PATCH
from hfstream.planning import encode_within
from hfstream.planning.temporal import encode_predicted
from hfstream.train.motion_clips import photo_clips, video_windows

SHARD_DIR = "temporal_data"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--clips", nargs="*", default=[], help="real clips to cut windows from")
    p.add_argument("--photo-clips", type=int, default=120, help="clips made from photos")
    p.add_argument("--clip-windows", type=int, default=30, help="windows per real clip")
    p.add_argument("--frames", type=int, default=6, help="frames per clip")
    p.add_argument("--size", type=int, nargs=2, default=(512, 512), metavar=("W", "H"))
    p.add_argument("--model", default=None, help="model folder (default: the shipped one)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--decode-with-synthesis", action="store_true")


def code_clip(
    codec: HybridCodec, frames: list[np.ndarray], *, rng: np.random.Generator
) -> list[dict[str, np.ndarray]]:
    """The samples of one clip (see the module doc)."""
    bpp = float(rng.uniform(0.03, 0.1))
    shown: list[np.ndarray] = []
    samples = []
    for t, image in enumerate(frames):
        budget = image.shape[0] * image.shape[1] * bpp / 8
        back = int(rng.integers(1, 3))
        if t == 0:
            enc = encode_within(codec, image, budget).encoded
            shown.append(codec.decode(enc))
            continue
        ref = max(0, t - back)
        enc = encode_predicted(codec, image, budget, reference=shown[ref], reference_id=ref).encoded
        if not enc.predicted:
            shown.append(codec.decode(enc))
            continue
        plain = codec.decode(enc, reference=shown[ref], synthesis=False)
        shown.append(codec.decode(enc, reference=shown[ref]))
        coded = np.array([p.continuous is not None for p in enc.patches]).reshape(enc.grid)
        if not coded.any():
            continue
        side = int(PATCH * enc.scale)
        mask = np.kron(coded, np.ones((side, side), np.uint8))[: image.shape[0], : image.shape[1]]
        samples.append(
            {
                "image": image,
                "decoded": plain,
                "moved": moved_reference(enc, shown[ref]),
                "mask": mask.astype(np.uint8),
            }
        )
    return samples


def run(args: argparse.Namespace) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    codec = HybridCodec.from_pretrained(args.model)
    if not args.decode_with_synthesis or codec.temporal is None:
        # An untrained synthesis shows the decoded picture unchanged, and its presence
        # makes the coded patches carry their motion, as they will for a trained one.
        codec.temporal = TemporalSynthesis(TemporalConfig()).eval()
    out = Path(args.out) / SHARD_DIR
    out.mkdir(parents=True, exist_ok=True)
    size = tuple(args.size)
    sources = [
        photo_clips(
            args.data, count=args.photo_clips, frames=args.frames, size=size, seed=args.seed
        )
    ]
    for k, clip in enumerate(args.clips):
        sources.append(
            video_windows(
                clip, count=args.clip_windows, frames=args.frames, size=size, seed=args.seed + k + 1
            )
        )
    total = args.photo_clips + args.clip_windows * len(args.clips)
    done = len(list(out.glob("*.npz")))
    with tqdm(total=total, desc="temporal-data", unit="clip") as bar:
        n = 0
        for source in sources:
            for frames in source:
                n += 1
                bar.update()
                if n <= done:
                    continue  # resumed: this clip's shard is written
                samples = code_clip(codec, frames, rng=np.random.default_rng([args.seed, n]))
                arrays = {f"{key}{i}": s[key] for i, s in enumerate(samples) for key in s}
                np.savez_compressed(out / f"{n:05d}.npz", **arrays)
