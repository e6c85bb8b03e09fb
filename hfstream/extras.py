"""Optional dependencies: the extra that brings each, and one clear error when one is
missing.

A user who streams over UDP needs neither aiortc nor PyAV; ``pip install hfstream``
leaves them out and ``pip install 'hfstream[rtc,video]'`` brings them. The modules that
need one import it through ``require`` at the point of use, so the rest of the package
loads without it and the error names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

#: top-level module -> the extra of ``pyproject.toml`` that installs it
EXTRAS = {
    "aiortc": "rtc",
    "av": "video",
    "piq": "eval",
    "matplotlib": "eval",
    "imageio_ffmpeg": "eval",
    "ray": "sim",
}


class MissingExtra(ModuleNotFoundError):
    """An optional dependency is not installed; the message says which extra brings it."""


def require(module: str, *, purpose: str) -> ModuleType:
    """Import ``module`` (an optional dependency), or raise ``MissingExtra`` naming the
    extra to install for ``purpose`` (a few words: "reading video")."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        top = module.split(".")[0]
        if e.name is None or e.name.split(".")[0] != top:
            raise  # the module is there; something it imports is not
        extra = EXTRAS.get(top, "all")
        raise MissingExtra(
            f"{purpose} needs {top}, which is not installed: pip install 'hfstream[{extra}]'",
            name=top,
        ) from None
