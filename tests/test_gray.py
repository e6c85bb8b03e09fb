"""Gray in, gray out: the learned decoder does not keep three equal channels (they came
back up to 31 levels apart), so a gray source is marked (``EncodedImage.gray``, the
``.hfs`` file's gray bit, the packets' ``FLAG_GRAY``) and shown in gray."""

import asyncio

import numpy as np
import pytest
from PIL import Image

from hfstream.apps.cli import main
from hfstream.files import container
from hfstream.stream.receiver import Receiver, ReceiverConfig
from hfstream.stream.sender import Sender, SenderConfig
from hfstream.transports.memory import memory_pair


@pytest.fixture(scope="module")
def gray_image(small_image) -> np.ndarray:
    luma = np.round(small_image @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
    return np.repeat(luma[..., None], 3, axis=2)


def spread(picture: np.ndarray) -> int:
    """The largest difference between a pixel's channels."""
    return int((picture.max(axis=2).astype(int) - picture.min(axis=2)).max())


def test_a_gray_image_decodes_to_three_equal_channels(codec, gray_image, small_image):
    enc = codec.encode(gray_image, "1_4")
    assert enc.gray and not codec.encode(small_image, "1_4").gray
    for mode in ("continuous", "auto"):
        assert spread(codec.decode(enc, mode=mode)) == 0
        assert spread(codec.decode(enc.without_indices(), mode=mode)) == 0


def test_the_file_keeps_the_gray_mark_and_older_versions_still_read(codec, gray_image, small_image):
    enc = codec.encode(gray_image, "1_4")
    blob = container.write(enc, codec)
    assert blob[4] == 4 and container.read_header(blob).gray
    assert container.read(blob, codec).gray and container.read_to_decode(blob, codec).gray
    with pytest.raises(ValueError, match="version 3 cannot mark an image as gray"):
        container.write(enc, codec, version=3)
    colour = container.write(codec.encode(small_image, "1_4"), codec)
    assert not container.read_header(colour).gray
    old = container.write(container.read(colour, codec), codec, version=3)
    assert old[4] == 3 and not container.read(old, codec).gray


def test_encode_and_decode_a_gray_png(tmp_path, gray_image, monkeypatch, codec):
    from hfstream.codec.hybrid import HybridCodec

    monkeypatch.setattr(HybridCodec, "from_pretrained", classmethod(lambda cls, p=None: codec))
    Image.fromarray(gray_image[..., 0]).save(tmp_path / "g.png")  # an "L" image
    assert main(["encode", str(tmp_path / "g.png"), str(tmp_path / "g.hfs")]) == 0
    assert main(["decode", str(tmp_path / "g.hfs"), str(tmp_path / "out.png")]) == 0
    assert spread(np.asarray(Image.open(tmp_path / "out.png").convert("RGB"))) == 0


def test_a_gray_frame_streams_gray(codec, gray_image):
    async def run():
        tx, rx = memory_pair()
        sender = Sender(tx, codec, SenderConfig(rate_bytes_per_s=5e6))
        async with Receiver(rx, codec, ReceiverConfig(feedback_interval_s=None)) as receiver:
            await sender.send_image(gray_image)
            await sender.flush()
            await tx.close()
            updates = [u async for u in receiver]
        await sender.close()
        return updates

    updates = asyncio.run(run())
    assert updates and all(spread(u.image) == 0 for u in updates)
