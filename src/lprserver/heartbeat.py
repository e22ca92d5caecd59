"""The daemon's heartbeat: a small file it rewrites every few seconds, read by the web app's /health."""

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("lprserver.heartbeat")


def write_heartbeat(path: str | os.PathLike, state: dict) -> None:
    """Replace the heartbeat file atomically with the current time and `state`."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"time": time.time(), "pid": os.getpid(), **state}))
    os.replace(tmp, target)


def read_heartbeat(path: str | os.PathLike) -> dict | None:
    """Return the last heartbeat with its age in seconds, or None when there is none."""
    try:
        data = json.loads(Path(path).read_text())
        return {**data, "age": max(0.0, time.time() - float(data["time"]))}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def start_heartbeat(path: str, interval: float, state: Callable[[], dict]) -> threading.Thread:
    """Write the heartbeat every `interval` seconds in a (green, once patched) daemon thread."""
    def beat():
        failing = False
        while True:
            try:
                write_heartbeat(path, state())
                failing = False
            except OSError as exc:
                if not failing:
                    log.warning("event=heartbeat_failed path=%s error=%r", path, str(exc))
                failing = True
            time.sleep(interval)

    thread = threading.Thread(target=beat, name="heartbeat", daemon=True)
    thread.start()
    return thread
