"""Real image bytes for tests: JPEGs and PNGs, whole, truncated or with lying headers."""

import base64
import io
import random

from PIL import Image


def make_jpeg(width: int = 640, height: int = 480, quality: int = 85, seed: int = 1) -> bytes:
    """Return a noisy JPEG of roughly realistic size."""
    rng = random.Random(seed)
    img = Image.new("RGB", (width, height), (rng.randrange(256), 120, 90))
    noise = Image.frombytes("L", (width // 4, height // 4), rng.randbytes((width // 4) * (height // 4)))
    img.paste(noise.resize((width, height)).convert("RGB"), (0, 0), noise.resize((width, height)))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality)
    return out.getvalue()


def make_png(width: int = 320, height: int = 240) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (width, height), (10, 200, 30, 255)).save(out, "PNG")
    return out.getvalue()


def huge_header_jpeg(width: int = 50_000, height: int = 50_000) -> bytes:
    """Return a small JPEG whose frame header claims width x height pixels."""
    data = bytearray(make_jpeg(64, 64))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 7] = height.to_bytes(2, "big")
    data[sof + 7:sof + 9] = width.to_bytes(2, "big")
    return bytes(data)


def data_uri(data: bytes, mime: str = "image/jpeg") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def noisy_jpeg(target_bytes: int, seed: int = 2) -> bytes:
    """Return a JPEG of pure noise at least target_bytes long (noise does not compress)."""
    rng = random.Random(seed)
    side = 256
    while True:
        img = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
        out = io.BytesIO()
        img.save(out, "JPEG", quality=95)
        if out.tell() >= target_bytes:
            return out.getvalue()
        side = int(side * 1.08)


def many_scans_jpeg(width: int, height: int, scans: int) -> bytes:
    """Return a progressive JPEG whose last scan is repeated until it has `scans` scans: little data,
    but every scan makes the decoder visit every block of the frame."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), (120, 130, 140)).save(out, "JPEG", progressive=True, quality=80)
    data = out.getvalue()
    last_scan = data.rindex(b"\xff\xda")
    eoi = data.rindex(b"\xff\xd9")
    return data[:eoi] + data[last_scan:eoi] * (scans - data.count(b"\xff\xda")) + data[eoi:]


def flat_png(width: int, height: int, mode: str = "RGBA") -> bytes:
    """Return a PNG of one colour: large in pixels, small in bytes."""
    out = io.BytesIO()
    Image.new(mode, (width, height), (1, 2, 3, 255)[: len(mode)]).save(out, "PNG", optimize=True)
    return out.getvalue()
