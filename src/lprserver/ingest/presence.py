"""Which camera connections are open, from where, and which cameras each one spoke for.

A camera is online while at least one open connection has spoken for it. One connection may speak
for several cameras (a relay, the seed's checkpoint sender sends for every checkpoint): when it
closes, every camera it spoke for that no other connection speaks for goes offline.
"""

import logging
from collections import Counter
from collections.abc import Callable

log = logging.getLogger("lprserver.ingest")


class Presence:
    """Open connections and the cameras they speak for; `mark(camera_ids, online)` saves the state."""

    def __init__(self, mark: Callable[[list[str], bool], None]):
        self.mark = mark
        self.address: dict[str, str] = {}  # open connection -> the client's address
        self.cameras: dict[str, set[str]] = {}  # open connection -> cameras it spoke for
        self.speakers: Counter[str] = Counter()  # camera -> open connections that spoke for it

    def opened(self, conn: str, address: str, door: str) -> None:
        self.address[conn] = address
        self.cameras[conn] = set()
        log.info("event=connected door=%s address=%s conn=%s", door, address, conn)

    def is_open(self, conn: str) -> bool:
        return conn in self.cameras

    def connected_cameras(self) -> int:
        return len(self.speakers)

    def seen(self, conn: str, camera_id: str, marked: bool = False) -> bool:
        """Note that `conn` spoke for `camera_id`; True when that made the camera online (saved already
        when `marked`)."""
        spoken = self.cameras.get(conn)
        if spoken is None:
            # The connection closed while its message was being stored.
            if not self.speakers[camera_id]:
                self.speakers.pop(camera_id, None)
                self.mark([camera_id], False)
            return False
        if camera_id in spoken:
            return False
        spoken.add(camera_id)
        self.speakers[camera_id] += 1
        if not marked:
            self.mark([camera_id], True)
        return True

    def closed(self, conn: str) -> None:
        spoken = self.cameras.pop(conn, set())
        address = self.address.pop(conn, "-")
        gone = []
        for camera_id in spoken:
            self.speakers[camera_id] -= 1
            if self.speakers[camera_id] <= 0:
                del self.speakers[camera_id]
                gone.append(camera_id)
        log.info("event=disconnected address=%s conn=%s cameras=%s", address, conn,
                 ",".join(sorted(spoken)[:10]) or "-")
        if gone:
            self.mark(sorted(gone), False)
