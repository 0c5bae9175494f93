"""Image reading and writing at the RGB-float boundary of the batch contract.

Everything a user can throw at us (gray, palette, RGBA, 16-bit, EXIF-rotated, truncated files,
decompression bombs) becomes a 3×H×W float tensor in [0, 1] or a one-line ``ImageLoadError``.
Writes are atomic so an interrupted run never leaves a half-written image behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from restorezoo.errors import ImageLoadError, InvalidImageError
from restorezoo.files import atomic_writer

if TYPE_CHECKING:
    from torch import Tensor

# torch is imported inside the functions that make or take tensors: reading and checking images
# (``restorezoo data check``) runs without it, in well under the 2.5 s that importing torch takes.

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
MAX_PIXELS = 200_000_000
"""Refuse images above 200 MP (a 14k × 14k photo): decoding alone would need > 2 GB."""


def is_image_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def list_images(folder: str | Path) -> list[Path]:
    """Image files of a folder (not recursive), sorted by name for reproducible order."""
    folder = Path(folder)
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p))


def _array_to_float(array: np.ndarray) -> np.ndarray:
    """Scale an integer or float image array to float32 in [0, 1] by its dtype's range."""
    if array.dtype == np.bool_:
        return array.astype(np.float32)
    if np.issubdtype(array.dtype, np.integer):
        return array.astype(np.float32) / float(np.iinfo(array.dtype).max)
    array = array.astype(np.float32)
    return np.clip(array, 0.0, 1.0)


def _to_rgb(array: np.ndarray) -> np.ndarray:
    """H×W, H×W×1, H×W×2 (gray+alpha), H×W×3, H×W×4 → H×W×3; alpha is dropped, as BasicSR does."""
    if array.ndim == 2:
        return np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3:
        raise ValueError(f"unsupported image array of shape {array.shape}")
    channels = array.shape[2]
    if channels in (1, 2):
        return np.repeat(array[..., :1], 3, axis=2)
    if channels >= 3:
        return array[..., :3]
    raise ValueError(f"unsupported channel count {channels}")


def _is_high_bit_depth(path: Path, image: Image.Image) -> bool:
    """Whether a PNG/TIFF holds more than 8 bits per sample (read from its header, no decoding)."""
    suffix = path.suffix.lower()
    if image.format == "PNG" or suffix == ".png":
        with path.open("rb") as handle:
            header = handle.read(26)
        return len(header) == 26 and header[12:16] == b"IHDR" and header[24] == 16
    if image.format == "TIFF" or suffix in (".tif", ".tiff"):
        bits = getattr(image, "tag_v2", {}).get(258, (8,))
        return max(bits if isinstance(bits, tuple) else (bits,)) > 8
    return False


def _read_high_bit_depth(path: Path) -> np.ndarray | None:
    """16-bit colour PNG/TIFF: Pillow would truncate to 8 bits, so decode them with OpenCV/tifffile."""
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            array = tifffile.imread(path)
        else:
            import cv2

            array = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
            if array is not None and array.ndim == 3:  # OpenCV decodes BGR(A)
                array = array[..., [2, 1, 0, 3][: array.shape[2]]]
    except Exception:
        return None
    return array if array is not None and array.dtype in (np.uint16, np.int32, np.float32, np.float64) else None


def load_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> Tensor:
    """Read any common image file as a 3×H×W float32 RGB tensor in [0, 1]."""
    import torch

    array = read_image_array(path, max_pixels)
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


def read_image_array(path: str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read any common image file as an H×W×3 float32 RGB array in [0, 1] (``load_image`` without torch)."""
    path = Path(path)
    if not path.is_file():
        raise ImageLoadError(f"image not found: {path}")
    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise ImageLoadError(
                    f"{path}: {width}×{height} is over the {max_pixels / 1e6:.0f} MP limit; downscale it first"
                )
            high_bit_depth = _is_high_bit_depth(path, image)  # before exif_transpose, which drops the tags
            image = ImageOps.exif_transpose(image)
            mode = image.mode
            if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
                array = np.asarray(image, dtype=np.uint16)
            elif mode == "I":
                array = np.asarray(image, dtype=np.int32).clip(0, 65535).astype(np.uint16)
            elif mode == "F":
                array = np.asarray(image, dtype=np.float32)
            else:
                high = _read_high_bit_depth(path) if high_bit_depth else None
                if high is not None and high.ndim == 3:
                    array = high
                else:
                    if mode == "P":
                        image = image.convert("RGBA")
                    if image.mode not in ("RGB", "RGBA", "L", "LA"):
                        image = image.convert("RGB")
                    array = np.asarray(image)
    except ImageLoadError:
        raise
    except Image.DecompressionBombError as error:  # Pillow refuses before we see the size
        raise ImageLoadError(
            f"{path}: over the {max_pixels / 1e6:.0f} MP limit ({error}); downscale it first"
        ) from error
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ImageLoadError(f"cannot read image {path}: {error}") from error
    array = np.asarray(array)
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():  # before clipping hides inf
        raise ImageLoadError(f"{path} contains NaN or infinite pixel values")
    return _to_rgb(_array_to_float(array))


def check_image_tensor(image: Tensor, what: str = "image") -> Tensor:
    """Refuse, in one line, a tensor no model can restore: not (B×)3×H×W float, empty, or NaN/inf.

    Models would otherwise turn one NaN pixel into a NaN image (convolutions spread it) without a word.
    """
    import torch

    if not isinstance(image, torch.Tensor):
        raise InvalidImageError(f"{what} must be a torch.Tensor, got {type(image).__name__}")
    if image.ndim not in (3, 4) or image.shape[-3] != 3:
        raise InvalidImageError(f"{what} must be 3×H×W or B×3×H×W RGB, got shape {tuple(image.shape)}")
    if image.numel() == 0:
        raise InvalidImageError(f"{what} is empty (shape {tuple(image.shape)})")
    if not image.is_floating_point():
        raise InvalidImageError(f"{what} must be float in [0, 1], got {image.dtype} (divide uint8 by 255)")
    bad = int((~torch.isfinite(image)).sum())
    if bad:
        raise InvalidImageError(f"{what} holds {bad} NaN/inf values; replace them (torch.nan_to_num) first")
    return image


def tensor_to_uint8(image: Tensor) -> np.ndarray:
    """3×H×W float in [0, 1] → H×W×3 uint8, rounding as BasicSR's ``tensor2img`` does."""
    if image.ndim == 4:
        if image.shape[0] != 1:
            raise ValueError("tensor_to_uint8 takes one image; index the batch first")
        image = image[0]
    array = image.detach().float().clamp(0, 1).mul(255).round().byte().cpu().numpy()
    return array.transpose(1, 2, 0)


def save_image(image: Tensor, path: str | Path) -> Path:
    """Write a 3×H×W [0, 1] tensor as an 8-bit image, atomically (temp file + rename)."""
    path = Path(path)
    pil = Image.fromarray(tensor_to_uint8(image))
    suffix = path.suffix.lower() or ".png"
    fmt = Image.registered_extensions().get(suffix)
    if fmt is None:
        raise ImageLoadError(f"unknown image format for output {path}")
    with atomic_writer(path, suffix=suffix) as handle:
        pil.save(handle, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return path
