"""The python blocks of the README and of docs/ run as written, with the shipped model.

Each block runs in a folder holding what the README assumes: ``photo.png`` (a one-patch
image) and ``my-model/`` (a copy of the shipped model, as ``export --model-dir`` writes).
"""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

import hfstream
from hfstream.codec.model_io import DEFAULT_MODEL_DIR

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _blocks() -> list:
    return [
        pytest.param(code, id=f"{page.name}:{i}")
        for page in PAGES
        for i, code in enumerate(BLOCK.findall(page.read_text()))
    ]


def test_the_readme_has_its_examples():
    assert BLOCK.findall((ROOT / "README.md").read_text()), "the README shows streaming"
    assert len(BLOCK.findall((ROOT / "docs" / "usage.md").read_text())) >= 2


def test_the_readme_starts_with_the_two_commands():
    first_block = re.search(r"^```\w*\n(.*?)^```", (ROOT / "README.md").read_text(), re.S | re.M)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands == ["make demo", "make test"]


@pytest.mark.parametrize("code", _blocks())
def test_python_block_runs(code, tmp_path, monkeypatch, small_image, capsys):
    Image.fromarray(small_image[:200, :240]).save(tmp_path / "photo.png")  # one patch
    shutil.copytree(DEFAULT_MODEL_DIR, tmp_path / "my-model")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "<block>", "exec"), {"__name__": "__main__"})
    assert capsys.readouterr().out.strip(), "every example shows its result"


@pytest.mark.parametrize(
    "name",
    [
        "SenderConfig",
        "ReceiverConfig",
        "FixedCoding",
        "PlannedCoding",
        "PacketizerConfig",
        "FrameUpdate",
        "FrameSent",
    ],
)
def test_the_api_reference_explains_every_field(name):
    # pdoc (``make docs``) shows a field's docstring, never a comment beside it.
    pdoc_doc = pytest.importorskip("pdoc.doc")
    cls = getattr(hfstream, name)
    page = pdoc_doc.Class(cls.__module__, cls.__qualname__, cls, (cls.__module__, name))
    assert page.docstring
    undocumented = [f.name for f in dataclasses.fields(cls) if not page.members[f.name].docstring]
    assert not undocumented, f"{name} fields without a docstring: {undocumented}"
