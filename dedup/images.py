"""Image fingerprints on decoded pixels: an exact pixel hash and a 64-bit perceptual hash (pHash).

Both are computed from pixels, never from file bytes, so a DICOM and a PNG of the same pixels, or
one DICOM in several transfer syntaxes, meet. DICOM is decoded with pydicom (its pylibjpeg
plugins cover JPEG, JPEG-LS, JPEG 2000 and RLE); everything else with Pillow.
"""

from __future__ import annotations

import hashlib
import io

import numpy as np
from PIL import Image
from scipy.fft import dctn

_HASH_SIDE = 32
_LOW_FREQ = 8


def is_dicom(data: bytes) -> bool:
    return len(data) >= 132 and data[128:132] == b"DICM"


def decode_pixels(data: bytes) -> np.ndarray:
    """Pixels as stored (first frame of a multi-frame image); raises on undecodable input."""
    if is_dicom(data):
        import pydicom

        dataset = pydicom.dcmread(io.BytesIO(data))
        pixels = dataset.pixel_array
        frames = int(getattr(dataset, "NumberOfFrames", 1) or 1)
        return pixels[0] if frames > 1 else pixels
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        if image.mode in ("P", "PA", "LA", "RGBA", "CMYK", "YCbCr", "1"):
            image = image.convert("RGB")
        return np.asarray(image)


def pixel_hash(pixels: np.ndarray) -> str:
    """Exact identity of decoded pixels: shape, dtype and values."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{pixels.shape}|{pixels.dtype.str}".encode())
    digest.update(np.ascontiguousarray(pixels).tobytes())
    return digest.hexdigest()


def bytes_hash(data: bytes) -> str:
    """Identity of undecodable image bytes: only byte-identical copies match."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _grey_unit(pixels: np.ndarray) -> np.ndarray:
    """Luminance rescaled to [0, 1], so bit depth and window differences between twins vanish."""
    grey = pixels.astype(np.float64)
    if grey.ndim == 3:
        grey = grey[..., :3] @ np.array([0.299, 0.587, 0.114])[: grey.shape[-1]]
    lo, hi = float(grey.min()), float(grey.max())
    return (grey - lo) / (hi - lo) if hi > lo else np.zeros_like(grey)


def phash(pixels: np.ndarray) -> int:
    """pHash: signs of the 8x8 lowest DCT frequencies of a 32x32 thumbnail against their median."""
    grey = Image.fromarray((_grey_unit(pixels) * 255.0).astype(np.float32), mode="F")
    thumb = np.asarray(grey.resize((_HASH_SIDE, _HASH_SIDE), Image.Resampling.LANCZOS), dtype=np.float64)
    # Whole grey levels, then coefficients rounded: flat or striped images have many zero
    # coefficients, and float noise would otherwise decide their bits at random.
    low = np.round(dctn(np.round(thumb), norm="ortho")[:_LOW_FREQ, :_LOW_FREQ].ravel(), 3)
    bits = low > np.median(low)
    return int(np.packbits(bits).view(">u8")[0])


def fingerprint(data: bytes) -> tuple[str, int]:
    """(exact pixel hash, pHash) of an encoded image."""
    pixels = decode_pixels(data)
    return pixel_hash(pixels), phash(pixels)
