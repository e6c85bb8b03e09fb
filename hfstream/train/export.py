"""Stage ``export``: gather the trained stages into a shipped model folder.

Also fits what ships beside the weights: the complexity normalisers and schedule
thresholds (on training crops, ``--data``) and the K-means reductions of the codebook.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy.cluster.vq import kmeans2
from tqdm import tqdm

from hfstream.codec.complexity import fit_complexity, patch_features
from hfstream.codec.correction import CorrectionDecoder
from hfstream.codec.hybrid import HybridCodec
from hfstream.codec.model_io import DEFAULT_MODEL_DIR, save_model
from hfstream.codec.predictor import MaskedTokenPredictor, PredictorConfig
from hfstream.codec.refiner import IndexRefiner, RefinerConfig
from hfstream.codec.upsampler import LearnedUpsampler, UpsamplerConfig
from hfstream.media.images import list_images, spread
from hfstream.planning.gains import index_gain_db
from hfstream.train.common import Checkpoint
from hfstream.train.data import PhotoCrops
from hfstream.train.frozen import load_continuous, load_tokenizer

REDUCTIONS = (512, 256, 128, 64)
# Thresholds are fitted so that, on training patches, the simplest 51.4 % get 1_9 and the
# busiest 10 % get 1_2: on average 0.514*36 + 0.386*64 + 0.1*128 = 56 kept indices, 12.5 %
# fewer than uniform 1_4 (64).
SHARE_NINTH = 0.514
SHARE_HALF = 0.10


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-dir", default=str(DEFAULT_MODEL_DIR), help="where to write the model")
    p.add_argument("--name", default="hybridflow-default")
    p.add_argument("--version", type=int, default=1)
    p.add_argument("--complexity-samples", type=int, default=2000)
    p.add_argument(
        "--low-rungs",
        type=float,
        nargs="+",
        default=[],
        metavar="F",
        help="add rungs under the lowest, its gains scaled by each F (ascending, in (0, 1))",
    )
    p.add_argument("--gain-photos", type=int, default=8, help="photos to measure index_gain_db on")


def half_state(module: torch.nn.Module, prefix: str) -> dict[str, torch.Tensor]:
    """Parameters as float16 (halves the package), buffers (CDF tables...) as they are."""
    params = {n for n, _ in module.named_parameters()}
    return {
        f"{prefix}.{k}": (v.half() if k in params and v.is_floating_point() else v)
        for k, v in module.state_dict().items()
    }


@torch.no_grad()
def round_to_half(module: torch.nn.Module) -> None:
    """Make the in-memory weights exactly what float16 storage will give back."""
    for p in module.parameters():
        p.copy_(p.half().float())


def reduce_codebook(codebook: torch.Tensor, k: int, seed: int) -> dict[str, torch.Tensor]:
    """K-means on the unit code vectors: groups, unit centroids, nearest full word to each."""
    data = codebook.double().numpy()
    centroids, groups = kmeans2(data, k, minit="++", seed=seed, iter=50)
    # kmeans2 can leave a cluster empty: give it the word farthest from its centroid.
    for j in range(k):
        if not (groups == j).any():
            d = ((data - centroids[groups]) ** 2).sum(1)
            far = int(d.argmax())
            groups[far] = j
            centroids[j] = data[far]
    cent = F.normalize(torch.from_numpy(centroids).float(), dim=1)
    reps = (cent @ codebook.T).argmax(dim=1)
    return {"groups": torch.from_numpy(groups).long(), "centroids": cent, "representatives": reps}


def run(args: argparse.Namespace) -> None:
    out = Path(args.out)
    tokenizer = load_tokenizer(out)
    continuous = load_continuous(out)
    if args.low_rungs:
        continuous = continuous.extended_below(args.low_rungs)
        continuous.eval()
    pstate = Checkpoint(out / "predictor.ckpt").load()
    predictor = MaskedTokenPredictor(PredictorConfig(**pstate["args"]["config"]))
    predictor.load_state_dict(pstate["states"]["model"])
    cstates = Checkpoint(out / "correction.ckpt").load()["states"]
    if "vq_decoder" in cstates:  # fine-tuned frame-wide beside the correction decoder
        tokenizer.decoder.load_state_dict(cstates["vq_decoder"])
    correction = CorrectionDecoder(tokenizer.decoder, continuous.config.m)
    correction.load_state_dict(cstates["model"])
    upsampler = None
    ustate = Checkpoint(out / "upsampler.ckpt")
    if ustate.exists():  # the learned up-sampler, and the synthesis tuned with it
        u = ustate.load()
        upsampler = LearnedUpsampler(UpsamplerConfig(**u["args"]["config"]))
        upsampler.load_state_dict(u["states"]["model"])
        continuous.g_s.load_state_dict(u["states"]["synthesis"])
    refiner = None
    rstate = Checkpoint(out / "refiner.ckpt")
    if rstate.exists():  # what the indices add to the continuous picture
        r = rstate.load()
        refiner = IndexRefiner(RefinerConfig(**r["args"]["config"]))
        refiner.load_state_dict(r["states"]["model"])

    if not args.data:
        raise SystemExit("export needs --data DIR to fit the complexity thresholds")
    crops = PhotoCrops(args.data, 256, seed=args.seed + 99)
    feats = np.stack(
        [
            patch_features(crops.sample())
            for _ in tqdm(range(args.complexity_samples), desc="complexity")
        ]
    )
    complexity = fit_complexity(feats, SHARE_NINTH, SHARE_HALF)

    extras = {"upsampler": upsampler, "refiner": refiner}
    modules = [tokenizer, continuous, predictor, correction]
    for module in [*modules, *(m for m in extras.values() if m is not None)]:
        round_to_half(module)
    # The entropy coder's tables must come from the weights the receiver will load.
    continuous.update(force=True)
    tensors = {}
    tensors.update(half_state(tokenizer, "tokenizer"))
    tensors.update(half_state(continuous, "continuous"))
    tensors.update(half_state(predictor, "predictor"))
    tensors.update(half_state(correction, "correction"))
    for name, module in extras.items():
        if module is not None:
            tensors.update(half_state(module, name))
    codebook = tokenizer.codebook.normalized().detach()
    for k in REDUCTIONS:
        for name, t in reduce_codebook(codebook, k, args.seed).items():
            tensors[f"reduction.{k}.{name}"] = t
    tok_cfg = asdict(tokenizer.config)
    config = {
        "name": args.name,
        "version": args.version,
        "patch": 256,
        "tokenizer": {k: list(v) if isinstance(v, tuple) else v for k, v in tok_cfg.items()},
        "continuous": asdict(continuous.config),
        "predictor": asdict(predictor.config),
        "complexity": complexity.to_dict(),
        "codebook_reductions": list(REDUCTIONS),
    }
    for name, module in extras.items():
        if module is not None:
            config[name] = asdict(module.config)
    model_id = save_model(Path(args.model_dir), config, tensors)
    # What each schedule adds, measured on the model as shipped, for the frame planner.
    codec = HybridCodec.from_pretrained(args.model_dir)
    photos = spread(list_images(args.data), args.gain_photos)
    config["index_gain_db"] = index_gain_db(codec, photos)
    model_id = save_model(Path(args.model_dir), config, tensors)
    size = sum(p.stat().st_size for p in Path(args.model_dir).iterdir())
    print(f"wrote {args.model_dir}: model id {model_id:08x}, {size / 1e6:.1f} MB")
