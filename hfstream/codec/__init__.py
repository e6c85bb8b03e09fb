"""The dual-stream codec: continuous latent + VQ indices, and the pieces behind it."""

from hfstream.codec.encoded import MISSING, EncodedImage, EncodedPatch
from hfstream.codec.hybrid import HybridCodec
from hfstream.codec.schedules import Schedule

__all__ = ["MISSING", "EncodedImage", "EncodedPatch", "HybridCodec", "Schedule"]
