"""``python -m sim.video_sweep``: video clips over lossy links, VP8 and H.264 against hfstream.

Every method gets the same bytes for the clip (``--bpp`` per frame, 56-byte packet
headers included) and the same loss model, rate and seed. ``vp8`` and ``h264`` send each
packet once and never ask for a key frame (``sim.video_channel``); ``vp8-webrtc`` and
``h264-webrtc`` recover as WebRTC does, with NACK and resends within ``--latency-ms`` of
capture and a key frame on request (PLI) after a frame missed it, over a ``--rtt-ms``
round trip (``sim.webrtc_video``). ``hfstream`` codes every frame on its own;
``hfstream-temporal`` predicts frames from the frame before while no loss is known in
its chain, else from the newest frame acknowledged (``sim.temporal_video``). Per case it
records the mean and worst-10 % frame PSNR / MS-SSIM / HaarPSI / VMAF, the frames with
nothing new to show (frozen, or grey before the first picture) and the mean and
95th-percentile capture-to-display delay of the fresh frames. Results:
``OUT/results.jsonl`` (resumable), ``OUT/summary.csv``, ``OUT/summary.md`` and
``OUT/video_quality_vs_loss.png``. A case gives the same numbers on every run at the
same ``--threads`` (torch's; 1 by default): the loss pattern is seeded, and a different
thread count rounds hfstream's floats differently, which can flip a choice of its planner
and change every frame after it.

The clips are video files (``--video``, repeatable, through PyAV) or, by default, a camera
pan across one photo (``--image``; the bundled photo when neither is given).
"""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

import hfstream.arguments as a
from sim import cli
from sim.results import plot_vs_loss, read_results, write_markdown
from sim.sweep import model_id_of_folder

if TYPE_CHECKING:
    from sim.loss import LossModel
    from sim.video_channel import ClipDelivery
    from sim.webrtc_video import ForcedKeyEncoder, WebRtcDelivery

# hfstream: every frame intra; hfstream-temporal: predicted frames against acknowledged
# or in-flight references (``sim.temporal_video``); hfstream-live: the same, planned as a
# live sender plans them when its frames at ``FINE`` would not keep up with the clock, as
# on a 2-core CPU (``encode_predicted(fast=True)`` at ``LIVE_SCALES``), only when asked.
METHODS = (
    "hfstream",
    "hfstream-temporal",
    "hfstream-live",
    "vp8",
    "h264",
    "vp8-webrtc",
    "h264-webrtc",
)
DEFAULT_METHODS = tuple(m for m in METHODS if m != "hfstream-live")
WEBRTC = "-webrtc"  # the suffix of the methods that recover as WebRTC does


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
    rtt_ms: float = 100.0
    latency_ms: float = 200.0

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


def score(frames, delivery, delays: list[float | None]) -> dict:
    """Quality per frame and over the clip, frozen frames, and the delays of fresh frames."""
    from hfstream.eval.metrics import all_metrics
    from hfstream.eval.vmaf import vmaf

    per = [all_metrics(ref, shown) for ref, shown in zip(frames, delivery.shown, strict=True)]
    for p, v in zip(per, vmaf(frames, delivery.shown).frames, strict=True):
        p["vmaf"] = v
    row = {}
    for m in ("psnr", "ms_ssim", "haarpsi", "vmaf"):
        vals = [p[m] for p in per]
        row[m] = float(np.mean(vals))
        row[f"{m}_worst10"] = worst_share(vals)
    row["frozen"] = int(sum(not f for f in delivery.fresh))
    shown = [d for d in delays if d is not None]
    row["delay_ms"] = float(np.mean(shown)) if shown else None
    row["delay_p95_ms"] = float(np.percentile(shown, 95)) if shown else None
    row["frame_psnr"] = [round(p["psnr"], 3) for p in per]
    row["frame_vmaf"] = [round(p["vmaf"], 3) for p in per]
    row["frame_delay_ms"] = delays
    return row


class ClipRunner:
    """Runs cases on one clip, keeping what does not depend on the loss: the video
    codecs' coded clips (and, for the WebRTC methods, every frame coded after each key
    frame a run forced), hfstream's packets and its decoded pictures per arrival set."""

    def __init__(
        self, frames, fps: int, gop: int, bpp: float, mtu: int, model: str | None = None
    ) -> None:
        self.frames, self.fps, self.gop, self.mtu = frames, fps, gop, mtu
        self.model = model  # hfstream's model folder (None: the shipped one)
        h, w = frames[0].shape[:2]
        self.budget = int(bpp * h * w / 8)  # bytes per frame
        self._coded: dict[tuple[str, int], tuple[list[bytes], int]] = {}
        self._encoders: dict[tuple[str, int], ForcedKeyEncoder] = {}  # by codec and bitrate
        # hfstream's packets per loss rate: its sender plans for the loss its receiver
        # reports, which over a clip converges to the channel's rate.
        self._hf_packets: dict[float, tuple[list[list[bytes]], str]] = {}
        self._decoded: dict = {}
        self._codec = None

    def _hybrid(self):
        if self._codec is None:
            from hfstream.codec.hybrid import HybridCodec

            self._codec = HybridCodec.from_pretrained(self.model)
        return self._codec

    def run(self, case: VideoCase) -> dict:
        from sim.webrtc_video import WebRtcDelivery

        d = self.deliver(case)
        if isinstance(d, WebRtcDelivery) or d.delay_ms is not None:
            delays = d.delay_ms
        else:
            # Sent once, a fresh frame is shown one way after capture. For hfstream the
            # time to send the frame's bytes is not modelled either: rtt/2 for every one.
            delays = [case.rtt_ms / 2 if f else None for f in d.fresh]
        row = {
            **asdict(case),
            "key": case.key,
            "budget_bytes": self.budget * len(self.frames),
            "bytes_sent": d.bytes_sent,
            "packets": d.packets_sent,
            "packets_lost": d.packets_lost,
            "detail": d.detail,
        }
        row.update(score(self.frames, d, delays))
        return row

    def deliver(self, case: VideoCase) -> ClipDelivery | WebRtcDelivery:
        """What the receiver shows of the clip in ``case``, frame by frame."""
        from sim.sweep import make_loss
        from sim.video_channel import (
            hfstream_clip_deliver,
            hfstream_clip_packets,
            video_deliver,
        )

        loss = make_loss(case.loss_model, case.loss_rate, case.seed, case.burst, case.source)
        if case.method in ("hfstream-temporal", "hfstream-live"):
            from hfstream.planning.frame_budgets import KEY_SHARE, LIVE_KEY_SHARE
            from sim.temporal_video import hfstream_temporal_deliver
            from sim.webrtc_video import resend_rounds

            d = hfstream_temporal_deliver(
                self._hybrid(),
                self.frames,
                self.budget,
                loss,
                expected_loss=case.loss_rate,
                fps=case.fps,
                rtt_ms=case.rtt_ms,
                resends=resend_rounds(case.rtt_ms, case.latency_ms),
                fast=case.method == "hfstream-live",
                # A live receiver decodes only the newest frame: acknowledged references;
                # a live sender's key frames borrow less.
                in_flight=case.method != "hfstream-live",
                key_share=LIVE_KEY_SHARE if case.method == "hfstream-live" else KEY_SHARE,
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
        elif case.method.endswith(WEBRTC):
            d = self._webrtc(case, loss)
        else:
            coded, rate = self._fit(case.method, self.budget * len(self.frames))
            d = video_deliver(
                self.frames, case.method, self.budget, loss, self.fps, self.gop, self.mtu, coded
            )
            d = type(d)(**{**d.__dict__, "detail": f"{rate / 1000:.1f} kbit/s, gop {self.gop}"})
        return d

    def _fit(self, codec: str, budget: int) -> tuple[list[bytes], int]:
        """The clip coded at the highest bitrate that fits ``budget`` bytes, and that rate."""
        from sim.video_channel import fit_bitrate

        if (codec, budget) not in self._coded:
            self._coded[(codec, budget)] = fit_bitrate(
                self.frames, codec, budget, self.fps, self.gop, self.mtu
            )
        return self._coded[(codec, budget)]

    def _webrtc(self, case: VideoCase, loss: LossModel) -> WebRtcDelivery:
        """Fitted to the budget over 1 + the loss rate, room for the resends (as a
        congestion controller backs off under loss); the bytes reported are those sent."""
        from sim.webrtc_video import ForcedKeyEncoder, webrtc_deliver

        codec = case.method.removesuffix(WEBRTC)
        _, rate = self._fit(codec, int(self.budget * len(self.frames) / (1 + case.loss_rate)))
        if (codec, rate) not in self._encoders:
            self._encoders[(codec, rate)] = ForcedKeyEncoder(
                self.frames, codec, bitrate=rate, fps=self.fps, gop=self.gop
            )
        d = webrtc_deliver(
            self._encoders[(codec, rate)],
            loss,
            mtu=self.mtu,
            rtt_ms=case.rtt_ms,
            latency_ms=case.latency_ms,
        )
        detail = f"{rate / 1000:.1f} kbit/s, gop {self.gop}, {d.detail}"
        return type(d)(**{**d.__dict__, "detail": detail})


SUMMARY_FIELDS = (
    "psnr",
    "psnr_worst10",
    "ms_ssim",
    "haarpsi",
    "vmaf",
    "vmaf_worst10",
    "frozen",
    "delay_ms",
    "delay_p95_ms",
    "bytes_sent",
)


def mean_of_known(values: list[float | None]) -> float:
    """The mean of the values that are not None (a case with no fresh frame has no
    delay), NaN when none is."""
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else float("nan")


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
            **{f: mean_of_known([r[f] for r in rs]) for f in SUMMARY_FIELDS},
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
        summary,
        ("psnr", "vmaf", "frozen", "delay_ms"),
        METHODS,
        out / "video_quality_vs_loss.png",
        dashed=("vp8", "h264"),
    )
    write_markdown(
        summary,
        [
            ("psnr", "Mean frame PSNR (dB)", "{:.2f}"),
            ("psnr_worst10", "Worst-10 % frame PSNR (dB)", "{:.2f}"),
            ("ms_ssim", "Mean MS-SSIM", "{:.4f}"),
            ("haarpsi", "Mean HaarPSI", "{:.4f}"),
            ("vmaf", "Mean frame VMAF", "{:.2f}"),
            ("vmaf_worst10", "Worst-10 % frame VMAF", "{:.2f}"),
            ("frozen", "Frames with nothing new (frozen or grey), mean per clip", "{:.1f}"),
            ("delay_ms", "Mean capture-to-display delay of fresh frames (ms)", "{:.0f}"),
            ("delay_p95_ms", "95th-percentile capture-to-display delay (ms)", "{:.0f}"),
        ],
        out / "summary.md",
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    p = cli.parser("python -m sim.video_sweep", __doc__)
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--video", action="append", help="a video file (first --frames frames); repeatable"
    )
    src.add_argument("--image", help="a photo to pan across (default: the bundled photo)")
    p.add_argument("--out", default="out/video_sweep", help="results, summary and plot")
    cli.add_case_arguments(p, METHODS, default_methods=DEFAULT_METHODS)
    p.add_argument("--frames", type=a.positive_int, default=30, help="frames of the clip")
    p.add_argument("--size", default="256x512", help="HxW of the pan clip")
    p.add_argument("--fps", type=a.positive_int, default=10, help="frame rate of the clip")
    p.add_argument("--gop", type=a.positive_int, default=30, help="frames between key frames")
    p.add_argument(
        "--bpp", type=a.positive_float, default=0.05, help="budget per frame, bits per pixel"
    )
    p.add_argument(
        "--rtt-ms", type=a.positive_float, default=100.0, help="round trip (WebRTC methods)"
    )
    p.add_argument(
        "--latency-ms",
        type=a.positive_float,
        default=200.0,
        help="capture to display budget within which lost packets are resent (WebRTC methods)",
    )
    p.add_argument("--model", help="hfstream's model folder (default: the shipped model)")
    p.add_argument(
        "--threads",
        type=a.positive_int,
        default=1,
        help="torch threads (default 1): a case repeats bit for bit at the same count, "
        "and the float rounding of another count can flip one of the planner's choices",
    )
    args = p.parse_args(argv)
    try:
        height, width = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        p.error(f'--size must be HxW, e.g. 256x512, got "{args.size}"')
    if not (2 <= height <= 4096 and 2 <= width <= 4096) or height % 2 or width % 2:
        p.error(f"--size {args.size}: each side must be even and in 2..4096")
    if args.latency_ms < args.rtt_ms / 2:
        p.error(f"--latency-ms {args.latency_ms:g} is under the one-way delay, --rtt-ms / 2")
    for path in [*(args.video or []), args.image]:
        if path is not None and not Path(path).is_file():
            p.error(f"no file {path}")
    import torch

    torch.set_num_threads(args.threads)
    clips: dict[str, list[np.ndarray]] = {}  # by source
    for video in args.video or [None]:
        frames, source = load_clip(video, args.image, args.frames, height, width)
        clips[source] = frames
    settings = {  # the same for every case of the sweep
        "fps": args.fps,
        "gop": args.gop,
        "bpp": args.bpp,
        "burst": args.burst,
        "rtt_ms": args.rtt_ms,
        "latency_ms": args.latency_ms,
    }
    cases = [
        VideoCase(source, m, lm, rate, seed, len(frames), *frames[0].shape[:2], **settings)
        for source, frames in clips.items()
        for m in args.methods
        for lm in args.loss_models
        for rate in args.rates
        for seed in range(args.first_seed, args.first_seed + args.seeds)
        if not (rate == 0 and lm != args.loss_models[0])
    ]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.jsonl"
    done = read_results(results)
    runners = {
        s: ClipRunner(frames, args.fps, args.gop, args.bpp, 1200, args.model)
        for s, frames in clips.items()
    }
    todo = [c for c in cases if c.key not in done]
    with results.open("a") as f:
        bar = tqdm(todo, desc="video sweep", initial=len(cases) - len(todo), total=len(cases))
        for case in bar:
            row = runners[case.source].run(case)
            f.write(json.dumps(row) + "\n")
            f.flush()
            done[case.key] = row
    summary = write_outputs([done[c.key] for c in cases], out)
    for s in summary:
        print(
            f"{s['method']:11s} {s['loss_model']:9s} {100 * s['loss_rate']:4.0f}%  "
            f"PSNR {s['psnr']:6.2f}  worst-10% {s['psnr_worst10']:6.2f}  "
            f"MS-SSIM {s['ms_ssim']:.4f}  HaarPSI {s['haarpsi']:.4f}  "
            f"VMAF {s['vmaf']:6.2f}  worst-10% {s['vmaf_worst10']:6.2f}  "
            f"frozen {s['frozen']:4.1f}  "
            f"delay {s['delay_ms']:4.0f} ms (p95 {s['delay_p95_ms']:4.0f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
