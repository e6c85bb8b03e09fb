"""``python -m hfstream.eval.speed``: how long the codec takes per step on this machine.

For one 768x512 frame (the bundled photo, or ``--image``) at schedule 1_4, on each thread
count asked for, prints the best of ``--repeats`` runs of every step a receiver goes
through on the hybrid path (continuous latents and thumbnail, index priors, the fill,
then the learned up-sampler and the index refiner, or for a model without a refiner the
correction branch and the VQ decoder), of a whole hybrid receive
(``container.read`` + ``decode(mode="hybrid")`` of the ``.hfs`` bytes), of a receive in
the default ``auto`` mode (``container.read_to_decode`` + ``decode``), of an encode
and of an encode planned within 0.05 bpp at 10 % loss
(``hfstream.planning.encode_within``, what a rate-controlled sender runs).

Then it times Pillow decoding the same frame as AVIF and WebP at about the same byte
size (each downscaled as ``hfstream.eval.classic`` finds best, and upscaled back to full
size, which is what a viewer shows) and prints hfstream's receive time over theirs.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from hfstream.codec.continuous import from_blocks
from hfstream.codec.correction import certainty_planes
from hfstream.codec.encoded import MISSING
from hfstream.codec.frames import to_uint8_image
from hfstream.codec.hybrid import HybridCodec
from hfstream.codec.refined_picture import refined_picture
from hfstream.codec.refinement import DEFAULT_REFINE_STEPS
from hfstream.codec.tiling import from_tiles
from hfstream.eval.classic import encode_at, fit_budget
from hfstream.files import container
from hfstream.media.samples import bundled_image
from hfstream.planning import Channel, encode_within

SCHEDULE = "1_4"
SIZE = (768, 512)
# The hybrid path's steps: with an index refiner, or with the correction and VQ decoders.
REFINER_STEPS = ("continuous", "index priors", "prior fill", "up-sampler", "refiner")
DECODER_STEPS = ("continuous", "index priors", "predictor fill", "correction", "vq decoder")
PLANNED_BPP, PLANNED_LOSS = 0.05, 0.1


def best_ms(fn: Callable[[], object], repeats: int) -> float:
    """The fastest of ``repeats`` runs after one warm-up, in ms (the least disturbed one)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000.0 * min(times)


def frame(image: np.ndarray | None) -> np.ndarray:
    """The image scaled to cover 768x512 (if smaller) and centre-cropped to it."""
    img = bundled_image() if image is None else image
    w, h = SIZE
    scale = max(w / img.shape[1], h / img.shape[0])
    if scale > 1:
        size = (round(img.shape[1] * scale + 0.5), round(img.shape[0] * scale + 0.5))
        img = np.asarray(Image.fromarray(img).resize(size, Image.Resampling.BICUBIC))
    top, left = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
    return np.ascontiguousarray(img[top : top + h, left : left + w])


def hybrid_steps(codec: HybridCodec) -> tuple[str, ...]:
    return REFINER_STEPS if codec.refiner is not None else DECODER_STEPS


def codec_steps(codec: HybridCodec, image: np.ndarray, repeats: int) -> dict[str, float]:
    """ms of each step, of a whole receive and of an encode, on the current thread count."""
    # ŷc decoded on another thread count may differ in its last bits (see
    # tests/test_prior_exact.py), and the sender's priors must match the receiver's.
    codec.clear_caches()
    enc = codec.encode(image, SCHEDULE)
    data = container.write(enc, codec)
    kept = container.read(data, codec)
    patches = list(kept.patches)
    words = np.stack([p.indices for p in patches])
    known = torch.from_numpy(words != MISSING)
    full = torch.from_numpy(np.where(words != MISSING, words, 0))
    out: dict[str, float] = {}

    def fresh(fn: Callable[[], object]) -> Callable[[], object]:
        def run() -> object:
            codec.clear_caches()  # every timed run starts from the bytes, as a receiver does
            return fn()

        return run

    with torch.inference_mode():
        y_hat = codec.latents(patches)
        low = codec.continuous.synthesize(y_hat)
        filled, conf = codec.predictor.fill_with_confidence(full, known, y_hat)
        q = codec.tokenizer.codebook.embed(filled.reshape(-1, 16, 16))
        cert = certainty_planes(known, conf)
        out["continuous"] = best_ms(
            fresh(lambda: codec.continuous.synthesize(codec.latents(patches))), repeats
        )
        out["index priors"] = best_ms(
            lambda: codec.index_probabilities(y_hat, kept.codebook_size), repeats
        )
        out["predictor fill"] = best_ms(
            lambda: codec.predictor.fill_with_confidence(full, known, y_hat), repeats
        )
        # What a receiver's fill costs once the priors ran (their pass, kept): a lookup.
        codec.index_probabilities(y_hat, kept.codebook_size)
        out["prior fill"] = best_ms(lambda: codec.prior_fill(y_hat), repeats)
        rows, cols = kept.grid
        y_frame = from_blocks(y_hat, rows, cols)
        low_frame = codec.continuous.synthesize(y_frame)
        out["up-sampler"] = best_ms(lambda: codec.continuous_picture(low_frame, y_frame), repeats)
        if codec.refiner is not None:
            refiner = codec.refiner
            picture = codec.continuous_picture(low_frame, y_frame)
            q_frame, cert_frame = from_tiles(q, rows, cols), from_tiles(cert, rows, cols)
            out["refiner"] = best_ms(
                lambda: refined_picture(
                    refiner,
                    codec.tokenizer,
                    picture,
                    codes=q_frame,
                    certainty=cert_frame,
                    grid=(rows, cols),
                ),
                repeats,
            )
        else:
            feats = codec.correction(y_hat, low, q, cert)
            out["correction"] = best_ms(lambda: codec.correction(y_hat, low, q, cert), repeats)
            out["vq decoder"] = best_ms(lambda: codec.tokenizer.decoder(q, feats), repeats)
    out["sum of steps"] = sum(out[s] for s in hybrid_steps(codec))
    out["receive hybrid (read + decode)"] = best_ms(
        fresh(lambda: codec.decode(container.read(data, codec), mode="hybrid")), repeats
    )
    out["receive (read + decode)"] = best_ms(
        fresh(lambda: codec.decode(container.read_to_decode(data, codec))), repeats
    )
    out["encode"] = best_ms(lambda: codec.encode(image, SCHEDULE), repeats)
    # The still-image encode: the latent refined for the default steps (seconds: once).
    out[f"encode refined ({DEFAULT_REFINE_STEPS} steps)"] = best_ms(
        lambda: codec.encode(image, SCHEDULE, refine_steps=DEFAULT_REFINE_STEPS), 1
    )
    budget = PLANNED_BPP * image.shape[0] * image.shape[1] / 8
    out["planned encode"] = best_ms(
        lambda: encode_within(codec, image, budget, channel=Channel(loss=PLANNED_LOSS)), repeats
    )
    out["bytes"] = float(len(data))
    return out


def classic_decode_ms(image: np.ndarray, budget: int, repeats: int) -> dict[str, tuple]:
    """{codec: (ms to decode and upscale, bytes, factor)} for AVIF and WebP at ``budget``."""
    out = {}
    h, w = image.shape[:2]
    for name in ("avif", "webp"):
        res = fit_budget(image, name, budget)
        if res is None:
            continue
        data = encode_at(image, name, res.factor, res.quality)

        def dec(data: bytes = data) -> np.ndarray:
            with Image.open(io.BytesIO(data)) as im:
                small = im.convert("RGB")
            return np.asarray(small.resize((w, h), Image.Resampling.BICUBIC))

        out[name] = (best_ms(dec, repeats), len(data), res.factor)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hfstream.eval.speed", description=__doc__)
    ap.add_argument("--image", type=Path, help="a photo (cropped to 768x512); default bundled")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--model", type=Path, help="a model folder; default the shipped model")
    args = ap.parse_args(argv)
    image = frame(to_uint8_image(args.image) if args.image else None)
    codec = HybridCodec.from_pretrained(args.model)
    rows = {}
    for n in args.threads:
        torch.set_num_threads(n)
        rows[n] = codec_steps(codec, image, args.repeats)
    torch.set_num_threads(max(args.threads))
    budget = int(rows[max(args.threads)]["bytes"])
    classic = classic_decode_ms(image, budget, args.repeats)

    heads = [f"{n} thread{'s' if n > 1 else ''}" for n in args.threads]
    print(f"768x512 frame, schedule {SCHEDULE}, {budget} bytes; ms, best of {args.repeats}")
    print(f"| step | {' | '.join(heads)} |")
    print(f"|---|{'---:|' * len(heads)}")
    keys = (
        *hybrid_steps(codec),
        "sum of steps",
        "receive hybrid (read + decode)",
        "receive (read + decode)",
        "encode",
    )
    if "up-sampler" not in keys:
        keys = ("up-sampler", *keys)
    if "prior fill" in keys:  # the fill with the known indices' context, for reference
        keys = (*keys, "predictor fill")
    refined = f"encode refined ({DEFAULT_REFINE_STEPS} steps)"
    for key in (*keys, refined, "planned encode"):
        print(f"| {key} | {' | '.join(f'{rows[n][key]:.0f}' for n in args.threads)} |")
    top = max(args.threads)
    receive = rows[top]["receive (read + decode)"]
    for name, (ms, size, factor) in classic.items():
        print(
            f"{name}: {size} bytes (1/{factor} scale), decode + upscale {ms:.1f} ms on "
            f"{top} thread(s); hfstream receive / {name} = {receive / ms:.0f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
