"""Unmasking of the cameras' WebSocket frames in C, for both of the daemon's async servers.

Every frame a client sends is masked (RFC 6455 §5.3): XOR-ed with a 4-byte key that the server
must undo before it can read a byte. Both servers' libraries do it in Python. eventlet goes one byte
at a time: that held the daemon at about 96 reads/s, with 93% of its CPU there. wsproto (under
simple-websocket, the gevent server) uses four strided translate() calls: 0.27 ms of the daemon's
one thread per 53 KB read, measured on the 2-core development machine, where websockets' C speedup
takes 3 us. `install` points both at it.
"""

from websockets.frames import apply_mask as _c_apply_mask  # C, with a pure-Python fallback


def apply_mask(data, mask, length=None, offset=0) -> bytes:
    """Unmask `length` bytes of `data` with a 4-byte mask rotated by `offset` (eventlet's signature)."""
    if length is None:
        length = len(data)
    if length == 0:
        return b""
    key = bytes(mask[(offset + i) % 4] for i in range(4))
    return _c_apply_mask(memoryview(data)[:length], key)


def install(async_mode: str) -> None:
    """Make the daemon's WebSocket servers unmask in C: wsproto's always (the raw WebSocket door uses
    it in both modes), eventlet's when `async_mode` is "eventlet"."""
    from wsproto import frame_protocol

    frame_protocol.XorMaskerSimple.process = _wsproto_process
    if async_mode == "eventlet":
        from eventlet.websocket import RFC6455WebSocket

        RFC6455WebSocket._apply_mask = staticmethod(apply_mask)


def _wsproto_process(self, data) -> bytes:
    """wsproto's XorMaskerSimple.process: unmask the next piece of a frame, carrying the key's position
    over to the piece after it."""
    if not data:
        return b""
    key = self._masking_key
    rotation = len(data) % 4
    self._masking_key = key[rotation:] + key[:rotation]
    return _c_apply_mask(data, key)
