"""A graphics set made in code: gradients, flat shapes, thin lines, text and a UI-like
layout, the pictures that photos do not have (wallpapers, screenshots, diagrams).

``python -m hfstream.media.graphics OUT`` writes them as PNG files, so that any tool that
takes a folder of images measures them: ``python -m hfstream.eval OUT``. The pictures are
the same on every run (seeded), and need nothing outside the package.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

Painter = Callable[[int, int, np.random.Generator], Image.Image]


def _gradient(height: int, width: int, rng: np.random.Generator) -> Image.Image:
    """A wallpaper: a diagonal two-colour gradient with a soft radial glow."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    t = (xx / width + yy / height) / 2
    a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    img = a[None, None] * (1 - t[..., None]) + b[None, None] * t[..., None]
    glow = np.exp(
        -(((xx - 0.7 * width) / (0.3 * width)) ** 2 + ((yy - 0.3 * height) / (0.3 * height)) ** 2)
    )
    img = img + 60 * glow[..., None]
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def _shapes(height: int, width: int, rng: np.random.Generator) -> Image.Image:
    """Flat shapes with hard edges on a flat background."""
    img = Image.new("RGB", (width, height), tuple(int(v) for v in rng.integers(180, 256, 3)))
    draw = ImageDraw.Draw(img)
    for _ in range(14):
        x0, y0 = int(rng.integers(0, width - 60)), int(rng.integers(0, height - 60))
        x1, y1 = x0 + int(rng.integers(30, 220)), y0 + int(rng.integers(30, 160))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        else:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
    return img


def _diagram(height: int, width: int, rng: np.random.Generator) -> Image.Image:
    """A diagram: thin lines, boxes with labels and a plotted curve on white."""
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    for x in range(40, width, 40):
        draw.line((x, 0, x, height), fill=(225, 225, 225), width=1)
    for y in range(40, height, 40):
        draw.line((0, y, width, y), fill=(225, 225, 225), width=1)
    xs = np.linspace(40, width - 40, 200)
    ys = height / 2 + (height / 4) * np.sin(xs / 50 + rng.random() * 6)
    draw.line(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=(200, 30, 30), width=2)
    for i in range(4):
        x, y = 60 + i * (width - 120) // 4, 40 + (i % 2) * (height - 140)
        draw.rectangle((x, y, x + 120, y + 50), outline="black", width=2)
        draw.text((x + 10, y + 18), f"stage {i + 1}", fill="black", font=font)
        if i:
            draw.line((x - 60, y + 25, x, y + 25), fill="black", width=1)
    return img


def _text(height: int, width: int, rng: np.random.Generator) -> Image.Image:
    """A page of small text in a few colours."""
    img = Image.new("RGB", (width, height), (250, 250, 245))
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    words = [
        "stream",
        "frame",
        "patch",
        "latent",
        "index",
        "packet",
        "parity",
        "tier",
        "rung",
        "loss",
        "picture",
    ]
    for row, y in enumerate(range(12, height - 12, 14)):
        line = " ".join(words[int(i)] for i in rng.integers(0, len(words), 12))
        colour = (20, 20, 20) if row % 7 else (30, 60, 160)
        draw.text((12, y), line, fill=colour, font=font)
    return img


def _screen(height: int, width: int, rng: np.random.Generator) -> Image.Image:
    """A UI-like layout: title bar, side panel, buttons, a list and an icon grid."""
    img = Image.new("RGB", (width, height), (236, 239, 244))
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    draw.rectangle((0, 0, width, 32), fill=(45, 55, 72))
    draw.text((12, 10), "hfstream - settings", fill="white", font=font)
    draw.rectangle((0, 32, 160, height), fill=(226, 232, 240))
    for i, name in enumerate(("General", "Network", "Codec", "Display", "About")):
        y = 48 + 30 * i
        if i == 2:
            draw.rectangle((6, y - 6, 154, y + 18), fill=(66, 153, 225))
        draw.text((18, y), name, fill="white" if i == 2 else (45, 55, 72), font=font)
    for i in range(6):
        y = 56 + 34 * i
        draw.rectangle((184, y, width - 24, y + 26), fill="white", outline=(203, 213, 224))
        draw.text(
            (196, y + 8),
            f"option {i + 1}: value {int(rng.integers(0, 100))}",
            fill=(45, 55, 72),
            font=font,
        )
    for i in range(8):
        x, y = 184 + (i % 4) * 70, height - 140 + (i // 4) * 64
        colour = tuple(int(v) for v in rng.integers(40, 220, 3))
        draw.rounded_rectangle((x, y, x + 48, y + 48), radius=10, fill=colour)
    draw.rounded_rectangle(
        (width - 150, height - 50, width - 24, height - 20), radius=6, fill=(72, 187, 120)
    )
    draw.text((width - 120, height - 40), "Apply", fill="white", font=font)
    return img


PAINTERS: dict[str, Painter] = {
    "gradient": _gradient,
    "shapes": _shapes,
    "diagram": _diagram,
    "text": _text,
    "screen": _screen,
}


def graphics_set(
    height: int = 512, width: int = 768, *, seed: int = 0
) -> list[tuple[str, np.ndarray]]:
    """(name, H x W x 3 uint8) of every picture of the set, the same for the same seed
    (laid out for about 768 x 512; much smaller sizes are refused by the layout)."""
    rng = np.random.default_rng(seed)
    return [
        (name, np.asarray(paint(height, width, rng).convert("RGB")))
        for name, paint in PAINTERS.items()
    ]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0].startswith("-"):
        print("usage: python -m hfstream.media.graphics OUT_FOLDER", file=sys.stderr)
        return 2
    out = Path(args[0])
    out.mkdir(parents=True, exist_ok=True)
    for name, image in graphics_set():
        Image.fromarray(image).save(out / f"{name}.png")
    print(f"wrote {len(PAINTERS)} pictures to {out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
