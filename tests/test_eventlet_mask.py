"""The eventlet WebSocket unmasking stays on the fast path (it once held the daemon at ~96 reads/s)."""

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from lprserver.ingest.eventlet_mask import apply_mask

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


def test_the_daemon_in_eventlet_mode_uses_the_fast_mask():
    # Import the real entry point in a fresh interpreter (it monkey-patches), then
    # check what eventlet's WebSocket server will call, and that it is fast.
    probe = (
        "import time, websocket_server\n"
        "from eventlet.websocket import RFC6455WebSocket as ws\n"
        "from lprserver.ingest import eventlet_mask\n"
        "assert ws._apply_mask is eventlet_mask.apply_mask, ws._apply_mask\n"
        "data = bytes(4 << 20); start = time.perf_counter()\n"
        "ws._apply_mask(data, (1, 2, 3, 4))\n"
        "print(round(time.perf_counter() - start, 4))\n"
    )
    env = {**os.environ, "ASYNC_MODE": "eventlet", "PYTHONWARNINGS": "ignore"}
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    seconds = float(out.stdout.strip().splitlines()[-1])
    print(f"unmasking 4 MB took {seconds:.4f} s")
    # The byte-by-byte path takes seconds for 4 MB; the fast one a few milliseconds.
    assert seconds < 0.5
