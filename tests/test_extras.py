"""The optional dependencies: without them the core still loads and codes, and what needs
one says which extra to install."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hfstream.extras import MissingExtra, require

WITHOUT_EXTRAS = """
import sys
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("aiortc", "av", "piq", "ray", "matplotlib"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Refuse())
import numpy as np
import hfstream.apps.cli, hfstream.apps.stream, hfstream.stream.sender, hfstream.stream.receiver
import hfstream.planning, hfstream.files.container, hfstream.transports.udp
from hfstream.codec.hybrid import HybridCodec
from hfstream.extras import MissingExtra
from hfstream.media.video import read_frames
codec = HybridCodec.from_pretrained()
image = np.full((64, 96, 3), 100, np.uint8)
assert codec.decode(codec.encode(image)).shape == image.shape
messages = []
try:
    next(read_frames("clip.mp4"))
except MissingExtra as e:
    messages.append(str(e))
try:
    import hfstream.transports.rtc
except MissingExtra as e:
    messages.append(str(e))
print("\\n".join(messages))
"""


def test_the_core_codes_without_the_extras_and_names_the_missing_one() -> None:
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_EXTRAS], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines == [
        "reading video needs av, which is not installed: pip install 'hfstream[video]'",
        "WebRTC data channels needs aiortc, which is not installed: pip install 'hfstream[rtc]'",
    ]


def test_require_returns_an_installed_module_and_passes_other_errors_through() -> None:
    assert require("json", purpose="testing").dumps([1]) == "[1]"
    with pytest.raises(MissingExtra, match=r"hfstream\[all\]"):
        require("no_such_module_here", purpose="testing")
