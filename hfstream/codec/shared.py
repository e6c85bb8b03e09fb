"""One loaded model per folder per process.

Loading takes seconds (reading and hashing the weights, building the networks), and a
process that both sends and receives (the demo, the benches, a test of ``send`` against
``recv`` in two threads) needs the same model twice. ``shared_codec`` loads a folder once
and hands every later caller the same ``HybridCodec``: inference only reads the weights,
so the sender's encode thread and the receiver's decode thread can share it.
"""

from __future__ import annotations

import threading
from pathlib import Path

from hfstream.codec.hybrid import HybridCodec
from hfstream.codec.model_io import CONFIG_NAME, DEFAULT_MODEL_DIR, WEIGHTS_NAME

_lock = threading.Lock()
_loaded: dict[tuple[Path, int, int], HybridCodec] = {}


def _key(folder: Path) -> tuple[Path, int, int]:
    """The folder and its files' modification times: a model rewritten in place (by a
    training run) is loaded afresh, never served stale."""
    stamps = []
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        try:
            stamps.append((folder / name).stat().st_mtime_ns)
        except OSError:
            stamps.append(-1)  # let the loader say what is missing
    return folder, stamps[0], stamps[1]


def shared_codec(path: str | Path | None = None) -> HybridCodec:
    """``HybridCodec.from_pretrained(path)``, loaded at most once per folder per process."""
    key = _key(Path(path or DEFAULT_MODEL_DIR).resolve())
    with _lock:  # two threads asking at once wait for one load
        codec = _loaded.get(key)
        if codec is None:
            for old in [k for k in _loaded if k[0] == key[0]]:
                del _loaded[old]  # the folder's earlier model, now rewritten
            codec = _loaded[key] = HybridCodec.from_pretrained(key[0])
        return codec


def clear() -> None:
    """Forget every loaded model (their memory goes once no caller holds them)."""
    with _lock:
        _loaded.clear()
