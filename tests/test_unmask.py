"""WebSocket unmasking stays on the fast path in both async modes (eventlet's own once held the daemon at
~96 reads/s; wsproto's took 0.27 ms of the daemon's thread per 53 KB read)."""

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from wsproto.frame_protocol import XorMaskerSimple

from lprserver.ingest.unmask import _wsproto_process, apply_mask

ROOT = Path(__file__).resolve().parents[1]


def slow_reference(data, mask, length=None, offset=0):
    # eventlet's own byte-by-byte version, as the reference for correctness.
    if length is None:
        length = len(data)
    return b"".join(bytes((data[i] ^ mask[(offset + i) % 4],)) for i in range(length))


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 1000, 4099])
@pytest.mark.parametrize("offset", [0, 1, 2, 3, 7])
def test_fast_mask_equals_eventlets(size, offset):
    rng = random.Random(size * 31 + offset)
    data = rng.randbytes(size + 3)
    mask = tuple(rng.randrange(256) for _ in range(4))
    assert apply_mask(data, mask, size, offset) == slow_reference(data, mask, size, offset)
    assert apply_mask(data[:size], mask, offset=offset) == slow_reference(data[:size], mask, offset=offset)


@pytest.mark.parametrize("pieces", [[0], [1], [5, 3, 0, 7], [65536, 1, 2, 3, 65533], [4, 4, 4]])
def test_fast_wsproto_unmasking_equals_wsprotos_piece_by_piece(pieces):
    # A frame arrives in pieces; the key's position carries over from each piece to the next.
    rng = random.Random(sum(pieces))
    key = rng.randbytes(4)
    theirs, ours = XorMaskerSimple(key), XorMaskerSimple(key)
    original = XorMaskerSimple.process
    for size in pieces:
        piece = bytearray(rng.randbytes(size))
        assert _wsproto_process(ours, bytearray(piece)) == original(theirs, piece)


@pytest.mark.parametrize("mode, check", [
    ("eventlet", "from eventlet.websocket import RFC6455WebSocket as ws\n"
                 "assert ws._apply_mask is unmask.apply_mask, ws._apply_mask\n"
                 "unmasked = lambda data: ws._apply_mask(data, (1, 2, 3, 4))\n"),
    ("gevent", "from wsproto.frame_protocol import XorMaskerSimple\n"
               "assert XorMaskerSimple.process is unmask._wsproto_process\n"
               "unmasked = XorMaskerSimple(b'\\x01\\x02\\x03\\x04').process\n"),
])
def test_the_daemon_unmasks_fast_in_each_async_mode(mode, check):
    # Import the real entry point in a fresh interpreter (it monkey-patches), then
    # check what the WebSocket servers will call, and that it is fast.
    probe = (
        "import time, websocket_server\n"
        "from lprserver.ingest import unmask\n"
        f"{check}"
        "data = bytearray(4 << 20); start = time.perf_counter()\n"
        "assert unmasked(data)[:8] == bytes([1, 2, 3, 4] * 2)\n"
        "print(round(time.perf_counter() - start, 4))\n"
    )
    env = {**os.environ, "ASYNC_MODE": mode, "PYTHONWARNINGS": "ignore"}
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    seconds = float(out.stdout.strip().splitlines()[-1])
    print(f"unmasking 4 MB took {seconds:.4f} s")
    # eventlet's byte-by-byte path takes seconds for 4 MB; the C one about a millisecond. (The `is`
    # checks above are what tells wsproto's own 20 ms apart.)
    assert seconds < 0.5
