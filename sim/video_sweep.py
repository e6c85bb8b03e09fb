"""``python -m sim.video_sweep``: a video clip over lossy links, VP8 and H.264 against hfstream.

Every method gets the same bytes for the clip (``--bpp`` per frame, 50-byte packet
headers included) and the same loss model, rate and seed. Per case it records the mean
and worst-10 % frame PSNR / MS-SSIM / HaarPSI and the frames with nothing new to show
(frozen, or grey before the first picture). Results: ``OUT/results.jsonl`` (resumable),
``OUT/summary.csv`` and ``OUT/video_quality_vs_loss.png``.

The clip is a video file (``--video``, through PyAV) or, by default, a camera pan across
one photo (``--image``; the bundled photo when neither is given).
"""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

import hfstream.arguments as a
from sim import cli
from sim.results import plot_vs_loss, read_results, write_markdown
from sim.sweep import model_id_of_folder

# hfstream: every frame intra; hfstream-temporal: predicted frames against acknowledged
# references (``sim.temporal_video``).
METHODS = ("hfstream", "hfstream-temporal", "vp8", "h264")


@dataclass(frozen=True)
class VideoCase:
    source: str
    method: str
    loss_model: str
    loss_rate: float
    seed: int
    frames: int
    height: int
    width: int
    fps: int
    gop: int
    bpp: float
    burst: float = 3.0
    mtu: int = 1200

    @property
    def key(self) -> str:
        """The case and, for hfstream, the shipped model's id (a resumed sweep reruns
        hfstream's cases after the model changed)."""
        d = asdict(self)
        if self.method.startswith("hfstream"):
            d["model_id"] = model_id_of_folder(None)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def load_clip(video: str | None, image: str | None, frames: int, height: int, width: int):
    from hfstream.codec.frames import to_uint8_image
    from hfstream.media.video import read_frames
    from sim.video_channel import pan_clip

    if video:
        clip = list(read_frames(video, frames))
        if not clip:
            raise SystemExit(f"{video} has no frames")
        h, w = clip[0].shape[:2]
        return [f[: h - h % 2, : w - w % 2] for f in clip], video
    if image is None:
        from hfstream.media.samples import bundled_image

        arr, name = bundled_image(), "bundled photo"
    else:
        arr, name = to_uint8_image(image), image
    return pan_clip(arr, frames, height, width), f"pan over {name}"


def worst_share(values: list[float], share: float = 0.1) -> float:
    """Mean of the lowest ``share`` of the values (at least one)."""
    k = max(1, int(round(share * len(values))))
    return float(np.mean(sorted(values)[:k]))


def score(frames, delivery) -> dict:
    from hfstream.eval.metrics import all_metrics

    per = [all_metrics(ref, shown) for ref, shown in zip(frames, delivery.shown, strict=True)]
    row = {}
    for m in ("psnr", "ms_ssim", "haarpsi"):
        vals = [p[m] for p in per]
        row[m] = float(np.mean(vals))
        row[f"{m}_worst10"] = worst_share(vals)
    row["frozen"] = int(sum(not f for f in delivery.fresh))
    row["frame_psnr"] = [round(p["psnr"], 3) for p in per]
    return row


class ClipRunner:
    """Runs cases on one clip, keeping what does not depend on the loss: the video
    codecs' coded clips, hfstream's packets and its decoded pictures per arrival set."""

    def __init__(self, frames, fps: int, gop: int, bpp: float, mtu: int) -> None:
        self.frames, self.fps, self.gop, self.mtu = frames, fps, gop, mtu
        h, w = frames[0].shape[:2]
        self.budget = int(bpp * h * w / 8)  # bytes per frame
        self._coded: dict[str, tuple[list[bytes], int]] = {}
        # hfstream's packets per loss rate: its sender plans for the loss its receiver
        # reports, which over a clip converges to the channel's rate.
        self._hf_packets: dict[float, tuple[list[list[bytes]], str]] = {}
        self._decoded: dict = {}
        self._codec = None

    def _hybrid(self):
        if self._codec is None:
            from hfstream.codec.hybrid import HybridCodec

            self._codec = HybridCodec.from_pretrained()
        return self._codec

    def run(self, case: VideoCase) -> dict:
        from sim.sweep import make_loss
        from sim.video_channel import (
            fit_bitrate,
            hfstream_clip_deliver,
            hfstream_clip_packets,
            video_deliver,
        )

        loss = make_loss(case.loss_model, case.loss_rate, case.seed, case.burst, case.source)
        if case.method == "hfstream-temporal":
            from sim.temporal_video import hfstream_temporal_deliver

            d = hfstream_temporal_deliver(
                self._hybrid(),
                self.frames,
                self.budget,
                loss,
                expected_loss=case.loss_rate,
                fps=case.fps,
            )
        elif case.method == "hfstream":
            if case.loss_rate not in self._hf_packets:
                self._hf_packets[case.loss_rate] = hfstream_clip_packets(
                    self._hybrid(), self.frames, self.budget, loss=case.loss_rate
                )
            packets, detail = self._hf_packets[case.loss_rate]
            d = hfstream_clip_deliver(
                self._hybrid(), self.frames, packets, loss, self._decoded, detail=detail
            )
        else:
            if case.method not in self._coded:
                self._coded[case.method] = fit_bitrate(
                    self.frames,
                    case.method,
                    self.budget * len(self.frames),
                    self.fps,
                    self.gop,
                    self.mtu,
                )
            coded, rate = self._coded[case.method]
            d = video_deliver(
                self.frames, case.method, self.budget, loss, self.fps, self.gop, self.mtu, coded
            )
            d = type(d)(**{**d.__dict__, "detail": f"{rate / 1000:.1f} kbit/s, gop {self.gop}"})
        row = {
            **asdict(case),
            "key": case.key,
            "budget_bytes": self.budget * len(self.frames),
            "bytes_sent": d.bytes_sent,
            "packets": d.packets_sent,
            "packets_lost": d.packets_lost,
            "detail": d.detail,
        }
        row.update(score(self.frames, d))
        return row


SUMMARY_FIELDS = ("psnr", "psnr_worst10", "ms_ssim", "haarpsi", "frozen", "bytes_sent")


def summarize(rows: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["method"], r["loss_model"], r["loss_rate"])].append(r)
    return [
        {
            "method": method,
            "loss_model": model,
            "loss_rate": rate,
            "cases": len(rs),
            **{f: float(np.mean([r[f] for r in rs])) for f in SUMMARY_FIELDS},
        }
        for (method, model, rate), rs in sorted(groups.items())
    ]


def write_outputs(rows: list[dict], out: Path) -> list[dict]:
    summary = summarize(rows)
    if not summary:
        return summary
    with (out / "summary.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(summary[0]))
        w.writeheader()
        w.writerows(summary)
    plot_vs_loss(
        summary, ("psnr", "psnr_worst10", "frozen"), METHODS, out / "video_quality_vs_loss.png"
    )
    write_markdown(
        summary,
        [
            ("psnr", "Mean frame PSNR (dB)", "{:.2f}"),
            ("psnr_worst10", "Worst-10 % frame PSNR (dB)", "{:.2f}"),
            ("ms_ssim", "Mean MS-SSIM", "{:.4f}"),
            ("haarpsi", "Mean HaarPSI", "{:.4f}"),
            ("frozen", "Frames with nothing new (frozen or grey), mean per clip", "{:.1f}"),
        ],
        out / "summary.md",
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    p = cli.parser("python -m sim.video_sweep", __doc__)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--video", help="a video file (first --frames frames)")
    src.add_argument("--image", help="a photo to pan across (default: the bundled photo)")
    p.add_argument("--out", default="out/video_sweep", help="results, summary and plot")
    cli.add_case_arguments(p, METHODS)
    p.add_argument("--frames", type=a.positive_int, default=30, help="frames of the clip")
    p.add_argument("--size", default="256x512", help="HxW of the pan clip")
    p.add_argument("--fps", type=a.positive_int, default=10, help="frame rate of the clip")
    p.add_argument("--gop", type=a.positive_int, default=30, help="frames between key frames")
    p.add_argument(
        "--bpp", type=a.positive_float, default=0.05, help="budget per frame, bits per pixel"
    )
    args = p.parse_args(argv)
    try:
        height, width = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        p.error(f'--size must be HxW, e.g. 256x512, got "{args.size}"')
    if not (2 <= height <= 4096 and 2 <= width <= 4096) or height % 2 or width % 2:
        p.error(f"--size {args.size}: each side must be even and in 2..4096")
    for path in (args.video, args.image):
        if path is not None and not Path(path).is_file():
            p.error(f"no file {path}")
    frames, source = load_clip(args.video, args.image, args.frames, height, width)
    h, w = frames[0].shape[:2]
    cases = [
        VideoCase(
            source, m, lm, rate, seed, len(frames), h, w, args.fps, args.gop, args.bpp, args.burst
        )
        for m in args.methods
        for lm in args.loss_models
        for rate in args.rates
        for seed in range(args.seeds)
        if not (rate == 0 and lm != args.loss_models[0])
    ]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.jsonl"
    done = read_results(results)
    runner = ClipRunner(frames, args.fps, args.gop, args.bpp, 1200)
    todo = [c for c in cases if c.key not in done]
    with results.open("a") as f:
        bar = tqdm(todo, desc="video sweep", initial=len(cases) - len(todo), total=len(cases))
        for case in bar:
            row = runner.run(case)
            f.write(json.dumps(row) + "\n")
            f.flush()
            done[case.key] = row
    summary = write_outputs([done[c.key] for c in cases], out)
    for s in summary:
        print(
            f"{s['method']:9s} {s['loss_model']:9s} {100 * s['loss_rate']:4.0f}%  "
            f"PSNR {s['psnr']:6.2f}  worst-10% {s['psnr_worst10']:6.2f}  "
            f"MS-SSIM {s['ms_ssim']:.4f}  HaarPSI {s['haarpsi']:.4f}  frozen {s['frozen']:.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
