"""``python -m sim.sweep DIR``: hfstream against classic codecs over lossy channels.

Every (image, method, loss model, loss rate, seed) case runs at the same total byte
budget (``--bpp``, headers and FEC included). Results go to ``OUT/results.jsonl`` (one
line per case, with its full configuration and seed; an interrupted sweep resumes where
it stopped), ``OUT/summary.csv`` (means per method, loss model and rate) and plots of
quality and decodable rate against loss.

Methods: ``hfstream`` (hybrid, tier-0 FEC), ``hfstream-nofec``, ``hfstream-arq`` (no
parity: lost tier-0 packets are sent again, up to ``ARQ_ROUNDS`` sends within the budget,
as the WebRTC tier-0 channel or an acknowledging receiver does), ``continuous``, ``vq``,
and ``jpeg|webp|avif`` × ``none|fec|arq``. An undecodable picture is scored as a
mid-grey frame.

Cases run in a local process pool (``--workers``) or on Ray (``--executor ray``,
``--address`` for a cluster; without one Ray starts locally).
"""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

import hfstream.arguments as a
from sim import cli
from sim.results import plot_vs_loss, read_results, write_markdown

HF_METHODS = ("hfstream", "hfstream-nofec", "hfstream-arq", "continuous", "vq")
ARQ_ROUNDS = 4  # sends of a lost packet at most, as the classic ``arq`` rows
CLASSIC_METHODS = tuple(
    f"{c}-{p}" for c in ("jpeg", "webp", "avif") for p in ("none", "fec", "arq")
)
METHODS = HF_METHODS + CLASSIC_METHODS
CASE_TIMEOUT_S = 600
# The sweep codes still images: with the refinement a still-image encoder would use
# (``hfstream.codec.refinement.DEFAULT_REFINE_STEPS``, not imported here: the CLI loads
# no torch before it must).
REFINE_STEPS = 50


@dataclass(frozen=True)
class Case:
    image: str
    method: str
    loss_model: str  # "bernoulli" or "gilbert"
    loss_rate: float
    seed: int
    bpp: float = 0.05
    burst: float = 3.0  # mean loss burst (gilbert)
    mtu: int = 1200
    model: str | None = None  # model folder, None = shipped
    refine_steps: int = 0  # hfstream's encode-time refinement (``hfstream.codec.refinement``)

    @property
    def key(self) -> str:
        """What identifies a result: the case and, for the learned methods, the model's id,
        so that a sweep resumed after the model changed runs those cases again."""
        d = asdict(self)
        if self.method not in HF_METHODS or not self.refine_steps:
            del d["refine_steps"]  # keys of cases made before it existed stay valid
        if self.method in HF_METHODS:
            d["model_id"] = model_id_of_folder(self.model)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def model_id_of_folder(model: str | None) -> str:
    """The model's id as hex, read from its config each time (the folder may be re-exported
    while a sweep is resumed)."""
    from hfstream.codec.model_io import model_id_of_folder as read_id

    return f"{read_id(model):08x}"


_CODEC = None


def _codec(model: str | None):
    global _CODEC
    if _CODEC is None:
        import torch

        torch.set_num_threads(1)  # one case per worker process; workers use the cores
        from hfstream.codec.hybrid import HybridCodec

        _CODEC = HybridCodec.from_pretrained(model)
    return _CODEC


def make_loss(loss_model: str, loss_rate: float, seed: int, burst: float = 3.0, subject: str = ""):
    """The loss model of a case. ``seed`` and ``subject`` (the image's or clip's name) pick
    the realization: every method sees the same losses on a subject (a fair comparison),
    and different subjects see different ones."""
    from sim.loss import Bernoulli, GilbertElliott, NoLoss

    salt = int.from_bytes(hashlib.sha256(subject.encode()).digest()[:8], "big")
    rng = np.random.default_rng([seed, salt])
    if loss_rate == 0:
        return NoLoss()
    if loss_model == "bernoulli":
        return Bernoulli(loss_rate, rng)
    if loss_model == "gilbert":
        return GilbertElliott.from_rate(loss_rate, burst, rng)
    raise ValueError(f'Invalid loss model "{loss_model}", should be bernoulli or gilbert')


def run_case(case: Case) -> dict:
    from hfstream.codec.frames import to_uint8_image
    from hfstream.eval.metrics import all_metrics
    from sim.channel import classic_deliver

    ref = to_uint8_image(case.image)
    budget = int(case.bpp * ref.shape[0] * ref.shape[1] / 8)
    loss = make_loss(case.loss_model, case.loss_rate, case.seed, case.burst, Path(case.image).name)
    if case.method in HF_METHODS:
        d = _hfstream_case(case, ref, budget, loss)
    else:
        codec, protection = case.method.split("-")
        d = classic_deliver(ref, codec, protection, budget, loss, case.loss_rate, case.mtu)
    row = {
        **asdict(case),
        "key": case.key,
        "model_id": model_id_of_folder(case.model) if case.method in HF_METHODS else None,
        "budget": budget,
        "bytes_sent": d.bytes_sent,
        "packets": d.packets_sent,
        "decodable": d.decodable,
        "detail": d.detail,
    }
    row.update(all_metrics(ref, d.image))
    return row


_PACKETS: dict[tuple, tuple] = {}  # (image, method, budget) -> (packets, detail)
_PICTURES: dict[tuple, tuple] = {}  # (image, method, budget, fates) -> (picture, ok)
_CACHE_MAX = 256


def _hfstream_case(case: Case, ref: np.ndarray, budget: int, loss):
    """hfstream through the channel. What does not depend on the loss (the packets) and
    the picture of each arrival set are remembered across the cases of a worker: every
    seed at 0 % loss, and many at low loss, see the same packets arrive."""
    from hfstream.protocol.wire import TAG_SIZE
    from sim.channel import (
        Delivery,
        arq_delivery,
        hfstream_receive,
        hfstream_tiered_packets,
        tier0_blocks,
    )

    codec = _codec(case.model)
    mode = "hybrid" if case.method.startswith("hfstream") else case.method
    rounds = ARQ_ROUNDS if case.method == "hfstream-arq" else 1
    estimate, burst = warmup_loss(case)
    key = (case.image, case.method, budget, case.model, estimate, burst, case.refine_steps)
    if key not in _PACKETS:
        if len(_PACKETS) >= _CACHE_MAX:
            _PACKETS.clear()
        fec = case.method == "hfstream"
        _PACKETS[key] = hfstream_tiered_packets(
            codec, ref, budget, mode, fec, estimate, burst, case.refine_steps, rounds
        )
    tiered, detail = _PACKETS[key]
    if rounds > 1:
        blocks = tier0_blocks(tiered)
        arrived, sent_bytes, sent = arq_delivery(tiered, loss.lost, budget, rounds, blocks)
        sent_bytes -= TAG_SIZE * sent  # reported without tags, as the other hfstream rows
    else:
        arrived = [i for i in range(len(tiered)) if not loss.lost()]
        sent_bytes, sent = sum(len(p) for _, p in tiered), len(tiered)
    pkey = (*key, tuple(arrived))
    if pkey not in _PICTURES:
        if len(_PICTURES) >= _CACHE_MAX:
            _PICTURES.clear()
        packets = [tiered[i][1] for i in arrived]
        _PICTURES[pkey] = hfstream_receive(codec, packets, ref.shape, mode)
    img, ok = _PICTURES[pkey]
    detail += f" planned for {estimate:.0%} loss"
    if burst is not None:
        detail += f" in runs of {burst:g}"
    return Delivery(img, ok, sent_bytes, sent, sent - len(arrived), detail)


WARMUP_PACKETS = 100  # what the receiver's reports cover before the measured frame
LOSS_STEP = 0.05  # the sender plans for the reported loss rounded to this step
BURST_STEP = 0.5  # and for the mean run of losses rounded to this one


def warmup_loss(case: Case) -> tuple[float, float | None]:
    """The loss rate hfstream's sender plans for, and the mean run of consecutive losses:
    what its receiver sees over a warm-up of ``WARMUP_PACKETS`` packets on the same
    channel (another realization of the case's loss model), the rate rounded to
    ``LOSS_STEP`` and the run to ``BURST_STEP`` (None: no loss seen). The classic FEC rows
    are told the true rate."""
    if case.loss_rate == 0:
        return 0.0, None
    loss = make_loss(
        case.loss_model, case.loss_rate, case.seed, case.burst, Path(case.image).name + "/warm-up"
    )
    fates = [loss.lost() for _ in range(WARMUP_PACKETS)]
    lost = sum(fates)
    runs = sum(1 for i, f in enumerate(fates) if f and (i == 0 or not fates[i - 1]))
    rate = round(min(0.9, lost / WARMUP_PACKETS) / LOSS_STEP) * LOSS_STEP
    burst = round(lost / runs / BURST_STEP) * BURST_STEP if runs else None
    return rate, burst


def _ray_map(cases: list[Case], address: str | None):
    import ray

    ray.init(
        address=address, ignore_reinit_error=True, include_dashboard=False, log_to_driver=False
    )
    remote = ray.remote(run_case)
    pending = {remote.remote(c): c for c in cases}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1, timeout=CASE_TIMEOUT_S)
        if not done:
            raise TimeoutError(f"no Ray task finished in {CASE_TIMEOUT_S} s")
        for ref in done:
            pending.pop(ref)
            yield ray.get(ref)


def run_sweep(
    cases: list[Case],
    out: Path,
    executor: str = "process",
    workers: int = 2,
    address: str | None = None,
) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.jsonl"
    done = read_results(results)
    todo = [c for c in cases if c.key not in done]
    bar = tqdm(total=len(cases), initial=len(cases) - len(todo), desc="sweep")
    with results.open("a") as f:
        if executor == "ray":
            stream = _ray_map(todo, address)
        elif workers <= 1:
            stream = (run_case(c) for c in todo)
        else:
            pool = ProcessPoolExecutor(max_workers=workers)
            stream = (
                fut.result() for fut in as_completed([pool.submit(run_case, c) for c in todo])
            )
        for row in stream:
            f.write(json.dumps(row) + "\n")
            f.flush()
            done[row["key"]] = row
            bar.update(1)
    bar.close()
    rows = [done[c.key] for c in cases]
    write_summary(rows, out)
    return rows


def summarize(rows: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["method"], r["loss_model"], r["loss_rate"])].append(r)
    out = []
    for (method, model, rate), rs in sorted(groups.items()):
        out.append(
            {
                "method": method,
                "loss_model": model,
                "loss_rate": rate,
                "cases": len(rs),
                "psnr": float(np.mean([r["psnr"] for r in rs])),
                "ms_ssim": float(np.mean([r["ms_ssim"] for r in rs])),
                "haarpsi": float(np.mean([r["haarpsi"] for r in rs])),
                "decodable": float(np.mean([r["decodable"] for r in rs])),
                "bpp_sent": float(
                    np.mean([8 * r["bytes_sent"] / (r["budget"] * 8 / r["bpp"]) for r in rs])
                ),
            }
        )
    return out


def read_summary(path: Path) -> list[dict]:
    """An earlier ``summary.csv``, numbers as numbers."""
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    numeric = ("loss_rate", "psnr", "ms_ssim", "haarpsi", "decodable", "bpp_sent")
    for r in rows:
        r.update({k: float(r[k]) for k in numeric}, cases=int(r["cases"]))
    return rows


def write_summary(rows: list[dict], out: Path, kept: list[dict] | None = None) -> None:
    """Summary CSV, markdown and plots of ``rows``, with ``kept`` (earlier summary rows of
    methods this run did not run) beside them."""
    summary = summarize(rows)
    ran = {s["method"] for s in summary}
    summary += [k for k in kept or [] if k["method"] not in ran]
    summary.sort(key=lambda s: (s["method"], s["loss_model"], s["loss_rate"]))
    if not summary:
        return
    with (out / "summary.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(summary[0]))
        w.writeheader()
        w.writerows(summary)
    write_markdown(
        summary,
        [
            ("psnr", "PSNR (dB)", "{:.2f}"),
            ("ms_ssim", "MS-SSIM", "{:.4f}"),
            ("haarpsi", "HaarPSI", "{:.4f}"),
            ("decodable", "Decodable pictures", "{:.0%}"),
        ],
        out / "summary.md",
    )
    for model in sorted({s["loss_model"] for s in summary}):
        plot_vs_loss(
            [s for s in summary if s["loss_model"] == model],
            ("psnr", "ms_ssim", "haarpsi", "decodable"),
            METHODS,
            out / f"quality_vs_loss_{model}.png",
            dashed=CLASSIC_METHODS,
        )


def main(argv: list[str] | None = None) -> int:
    p = cli.parser("python -m sim.sweep", __doc__)
    p.add_argument("folder", help="images to send")
    p.add_argument("--out", default="out/sweep", help="results, summary and plots")
    cli.add_case_arguments(p, METHODS)
    p.add_argument(
        "--bpp", type=a.positive_float, default=0.05, help="budget per picture, bits per pixel"
    )
    p.add_argument("--limit", type=a.positive_int, default=None, help="only the first N images")
    p.add_argument("--model", default=None, help="model folder (default: the shipped model)")
    p.add_argument(
        "--executor", choices=["process", "ray"], default="process", help="where cases run"
    )
    p.add_argument("--address", default=None, help="Ray cluster address")
    p.add_argument("--workers", type=a.positive_int, default=2, help="worker processes")
    p.add_argument(
        "--refine-steps",
        type=a.non_negative_int,
        default=REFINE_STEPS,
        help="hfstream's encode-time refinement of the continuous latent (0: none)",
    )
    p.add_argument(
        "--keep-from",
        default=None,
        metavar="CSV",
        help="an earlier summary.csv whose rows of methods not run here join the summary "
        "(the classic rows do not depend on hfstream's model)",
    )
    args = p.parse_args(argv)
    images = [str(f) for f in cli.image_files(p, args.folder, args.limit)]
    cases = [
        Case(
            img,
            m,
            lm,
            rate,
            seed,
            args.bpp,
            args.burst,
            model=args.model,
            refine_steps=args.refine_steps,
        )
        for img in images
        for m in args.methods
        for lm in args.loss_models
        for rate in args.rates
        for seed in range(args.first_seed, args.first_seed + args.seeds)
        if not (rate == 0 and lm != args.loss_models[0])  # 0 % loss is the same for every model
    ]
    rows = run_sweep(cases, Path(args.out), args.executor, args.workers, args.address)
    if args.keep_from:
        write_summary(rows, Path(args.out), read_summary(Path(args.keep_from)))
    for s in summarize(rows):
        print(
            f"{s['method']:16s} {s['loss_model']:9s} {100 * s['loss_rate']:4.0f}%  "
            f"PSNR {s['psnr']:6.2f}  MS-SSIM {s['ms_ssim']:.4f}  HaarPSI {s['haarpsi']:.4f}  "
            f"decodable {s['decodable']:.0%}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
