"""What decoding an image will cost, read from its headers before any pixel is decoded.

A JPEG's size in bytes says little about its decoding cost. A progressive JPEG is decoded scan by
scan, and each scan visits every block of its components however little data it carries: one small
scan repeated thousands of times in a 6000x6000 frame kept a store worker busy for a minute. Its
decoder also holds every coefficient of the frame in memory at once. A JPEG whose frame header
claims far more pixels than its data can hold is decoded into gray filler without complaint. A PNG
cannot be decoded at a reduced scale, so its whole frame is held in memory.

`check_cost` reads the structure (markers, frame, scans) and refuses, as `ImageRejected`, an image
that would cost more than a camera's frames do, or whose data is too short for its header (README
"Sending reads", `invalid_image`).
"""

import re
from dataclasses import dataclass

# Huffman-coded sequential and progressive JPEGs: what cameras write. Arithmetic coding, lossless and
# hierarchical JPEGs are refused (no camera writes them, and browsers do not show most of them).
SEQUENTIAL_SOF = (0xC0, 0xC1)
PROGRESSIVE_SOF = 0xC2
OTHER_SOF = (0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF)
SOS, EOI = 0xDA, 0xD9
STANDALONE = {0x01, 0xD8, *range(0xD0, 0xD8)}  # markers without a length field

# Encoders write 1 scan (sequential) or about 10 (libjpeg's progressive script, 6 for gray).
MAX_SCANS = 32
# Blocks the decoder visits, summed over the scans: about 35 ns each on the development machine, so
# this bounds a JPEG's decoding to about half a second. A 40-megapixel 4:2:0 progressive JPEG with
# the usual 10 scans is about 5.6 million.
MAX_BLOCK_VISITS = 16_000_000
# A progressive decoder keeps 128 bytes of coefficients per block of the frame: 96 MB is a
# 12-megapixel frame without chroma subsampling (or CMYK), 30 megapixels with 4:2:0.
MAX_COEFFICIENT_BYTES = 96 * 1024 * 1024
MAX_SEGMENTS = 512
# A PNG is decoded whole: about 4 bytes per pixel, twice over while its thumbnail is made.
PNG_MAX_PIXELS = 12_000_000



class ImageRejected(ValueError):
    """The bytes a camera sent are not an image we keep."""


_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7]")  # 0xFF00 is a stuffed byte, 0xFFD0-D7 a restart


@dataclass(frozen=True)
class Component:
    id: int
    h: int
    v: int


@dataclass(frozen=True)
class Scan:
    components: tuple[int, ...]
    spectral_start: int
    approximation_high: int
    data_bytes: int


@dataclass(frozen=True)
class JpegLayout:
    width: int
    height: int
    progressive: bool
    components: tuple[Component, ...]
    scans: tuple[Scan, ...]

    def blocks(self, component_ids: tuple[int, ...]) -> int:
        """Blocks a scan of these components codes (one component: its own blocks; more: whole MCUs)."""
        hmax = max(c.h for c in self.components)
        vmax = max(c.v for c in self.components)
        chosen = [c for c in self.components if c.id in component_ids]
        if len(chosen) == 1:
            c = chosen[0]
            return _ceil(_ceil(self.width * c.h, hmax), 8) * _ceil(_ceil(self.height * c.v, vmax), 8)
        mcus = _ceil(self.width, 8 * hmax) * _ceil(self.height, 8 * vmax)
        return mcus * sum(c.h * c.v for c in chosen)

    def frame_blocks(self) -> int:
        return sum(self.blocks((c.id,)) for c in self.components)


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def check_cost(data: bytes, image_format: str, width: int, height: int) -> None:
    """Refuse an image whose decoding would cost more than a camera's frame, or that is shorter than
    its header says; `width` and `height` are what its header claims."""
    if image_format == "PNG":
        if width * height > PNG_MAX_PIXELS:
            raise ImageRejected(f"a PNG of {width}x{height} is over the limit of {PNG_MAX_PIXELS} pixels "
                                "for PNG (send a JPEG)")
    elif image_format == "JPEG":
        check_jpeg(jpeg_layout(data))


def check_jpeg(layout: JpegLayout) -> None:
    """Refuse a JPEG that would cost too much to decode or whose data is too short for its frame."""
    visits = sum(layout.blocks(scan.components) for scan in layout.scans) + layout.frame_blocks()
    if visits > MAX_BLOCK_VISITS:
        raise ImageRejected(f"the JPEG's {len(layout.scans)} scans of {layout.width}x{layout.height} cost "
                            "too much to decode")
    if layout.progressive and layout.frame_blocks() * 128 > MAX_COEFFICIENT_BYTES:
        raise ImageRejected(f"a progressive JPEG of {layout.width}x{layout.height} needs too much memory "
                            "to decode (send a sequential JPEG)")
    for scan in layout.scans:
        if scan.data_bytes * 8 < _least_bits(layout, scan):
            raise ImageRejected(f"the JPEG's data is too short for its {layout.width}x{layout.height} "
                                "frame (corrupt or truncated)")


def _least_bits(layout: JpegLayout, scan: Scan) -> int:
    """The fewest bits Huffman coding can spend on a scan: a sequential block codes its DC value and at
    least one AC code (1 bit each at best); a progressive DC scan at least a bit per block; an AC scan
    may cover thousands of empty blocks with one code."""
    blocks = layout.blocks(scan.components)
    if not layout.progressive:
        return 2 * blocks
    return blocks if scan.spectral_start == 0 else 0


def jpeg_layout(data: bytes) -> JpegLayout:
    """Read a JPEG's frame and scans from its markers, without decoding; raise ImageRejected when the
    structure is broken or of a kind cameras do not write."""
    if data[:2] != b"\xff\xd8":
        raise ImageRejected("not a JPEG (no start-of-image marker)")
    frame: tuple[int, int, bool, tuple[Component, ...]] | None = None
    scans: list[Scan] = []
    pos, segments = 2, 0
    while True:
        marker, pos = _marker_at(data, pos)
        if marker is None or marker == EOI:
            break
        segments += 1
        if segments > MAX_SEGMENTS:
            raise ImageRejected(f"the JPEG has more than {MAX_SEGMENTS} segments")
        if marker in STANDALONE:
            continue
        if pos + 2 > len(data):
            raise ImageRejected("the JPEG is truncated inside a segment header")
        length = int.from_bytes(data[pos:pos + 2], "big")
        body, end = data[pos + 2:pos + length], pos + length
        if length < 2 or end > len(data):
            raise ImageRejected("the JPEG is truncated inside a segment")
        if marker in (*SEQUENTIAL_SOF, PROGRESSIVE_SOF):
            if frame is not None:
                raise ImageRejected("the JPEG has more than one frame header")
            frame = _frame(body, marker == PROGRESSIVE_SOF)
        elif marker in OTHER_SOF:
            raise ImageRejected("arithmetic-coded, lossless and hierarchical JPEGs are not accepted")
        elif marker == SOS:
            if frame is None:
                raise ImageRejected("the JPEG has a scan before its frame header")
            found = _NEXT_MARKER.search(data, end)
            next_marker = found.start() if found else len(data)
            scans.append(_scan(body, frame[3], next_marker - end))
            if len(scans) > MAX_SCANS:
                raise ImageRejected(f"the JPEG has more than {MAX_SCANS} scans (cameras write 1 to 10)")
            end = next_marker
        pos = end
    if frame is None or not scans:
        raise ImageRejected("the JPEG has no frame or no scan")
    width, height, progressive, components = frame
    return JpegLayout(width, height, progressive, components, tuple(scans))


def _marker_at(data: bytes, pos: int) -> tuple[int | None, int]:
    """Return the marker at `pos` (after any 0xFF fill bytes) and where its segment starts."""
    if pos >= len(data):
        return None, pos
    if data[pos] != 0xFF:
        raise ImageRejected("the JPEG's markers are broken")
    while pos < len(data) and data[pos] == 0xFF:
        pos += 1
    if pos >= len(data):
        return None, pos
    return data[pos], pos + 1


def _frame(body: bytes, progressive: bool) -> tuple[int, int, bool, tuple[Component, ...]]:
    if len(body) < 6:
        raise ImageRejected("the JPEG's frame header is truncated")
    height, width, count = int.from_bytes(body[1:3], "big"), int.from_bytes(body[3:5], "big"), body[5]
    if not width or not height or not 1 <= count <= 4 or len(body) < 6 + 3 * count:
        raise ImageRejected("the JPEG's frame header is invalid")
    components = tuple(Component(body[6 + 3 * i], body[7 + 3 * i] >> 4, body[7 + 3 * i] & 15)
                       for i in range(count))
    if any(not 1 <= c.h <= 4 or not 1 <= c.v <= 4 for c in components):
        raise ImageRejected("the JPEG's sampling factors are invalid")
    return width, height, progressive, components


def _scan(body: bytes, components: tuple[Component, ...], data_bytes: int) -> Scan:
    count = body[0] if body else 0
    if not 1 <= count <= 4 or len(body) < 4 + 2 * count:
        raise ImageRejected("the JPEG's scan header is invalid")
    ids = tuple(body[1 + 2 * i] for i in range(count))
    if not set(ids) <= {c.id for c in components}:
        raise ImageRejected("the JPEG's scan names a component its frame does not have")
    start, approximation = body[1 + 2 * count], body[3 + 2 * count] >> 4
    return Scan(ids, start, approximation, data_bytes)
