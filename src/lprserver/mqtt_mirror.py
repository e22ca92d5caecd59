"""Reads and cameras' state on MQTT (SPEC §11 "Channels"), rules or not.

With MQTT_URL set, every stored read (its `new_record` live event, with `record_id` beside its `id`) goes to
`<prefix>/reads/<camera_id>`, and each camera's state, retained, to `<prefix>/cameras/<camera_id>/state`:
`{"camera_id", "online", "health", "last_seen", "offline_alert_id"}`, each `camera_status` event merged
into the last state known of that camera, so a message about its health still says whether it is
online (and a read moves the `last_seen` of the camera's next state). A camera id is one topic
level, percent-encoded where it is not A-Z a-z 0-9 _ . - ~ (so `/`, `+`, `#` and `%` never reach a
topic as themselves).

MQTT reads are best effort: they are published after the read's commit, from the process that stored
it, without waiting for the broker (channels/mqtt.py queues them; while the broker is away a bounded
number wait, the rest are dropped), and ingest never waits for or fails because of the broker. Alerts
are not mirrored here: they go through the durable outbox, the rules and the `mqtt` channel
(alert_sender.py), which retries until the broker acknowledges.
"""

import logging
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from .channels import mqtt

log = logging.getLogger("lprserver.mqtt")

Notify = Callable[[str, dict], None]
STATE_FIELDS = ("online", "health", "last_seen", "offline_alert_id")
MAX_CAMERAS = 100_000  # states remembered; past that the memory starts over from the next events


def topic_level(text: str) -> str:
    """`text` as one topic level: unchanged when it is a valid camera id, else percent-encoded (an
    empty text as %00, since an empty level would vanish into its neighbours' `/`)."""
    return quote(text, safe="") if text else "%00"


class Mirror:
    """A notify that passes each live event on and publishes reads and cameras' state on MQTT.

    `lookup(camera_id)` gives a camera's stored state when this process has not seen it yet (the web
    app, whose cameras' presence the daemon keeps); without it, a camera not heard from since this
    process started is offline, as the daemon marks them all at start."""

    def __init__(self, notify: Notify | None, url: str, prefix: str,
                 lookup: Callable[[str], dict | None] | None = None):
        self.notify, self.url, self.prefix, self.lookup = notify, url, prefix, lookup
        self.states: dict[str, dict[str, Any]] = {}

    def __call__(self, event: str, data: dict) -> None:
        if self.notify is not None:
            self.notify(event, data)
        try:
            self.mirror(event, data)
        except Exception:  # best effort: never the caller's problem
            log.exception("event=mqtt_mirror_failed live_event=%s", event)

    def mirror(self, event: str, data: dict) -> None:
        camera_id = data.get("camera_id") if isinstance(data, Mapping) else None
        if not isinstance(camera_id, str):
            return
        if event == "new_record":
            # SPEC §11 names the read's `record_id`; the live event calls it `id`: both are there.
            mqtt.publish(self.url, f"{self.prefix}/reads/{topic_level(camera_id)}",
                         {**data, "record_id": data.get("id")})
            if camera_id in self.states and data.get("received_at"):  # for the camera's next state
                self.states[camera_id]["last_seen"] = data["received_at"]
        elif event == "camera_status":
            mqtt.publish(self.url, f"{self.prefix}/cameras/{topic_level(camera_id)}/state",
                         self.state(camera_id, data), retain=True)

    def state(self, camera_id: str, change: Mapping[str, Any]) -> dict[str, Any]:
        """The camera's state after this `camera_status` event, remembered for the next one."""
        known = self.states.get(camera_id)
        if known is None:
            known = (self.lookup(camera_id) if self.lookup else None) or {"online": False}
            if len(self.states) >= MAX_CAMERAS:
                self.states.clear()
        state = {"camera_id": camera_id, **{key: known.get(key) for key in STATE_FIELDS}}
        state.update({key: change[key] for key in STATE_FIELDS if key in change})
        self.states[camera_id] = state
        return state

    def publish_cameras(self, cameras: list[Any]) -> None:
        """Publish the state of each of these cameras (models.Camera) as stored: the daemon does so at
        start, when it has marked them all offline, so no state retained by its previous run says a
        camera that never came back is online."""
        for camera in cameras:
            self.states.pop(camera.id, None)
            self.mirror("camera_status", {"camera_id": camera.id, **stored_state(camera)})


def stored_state(camera: Any) -> dict[str, Any]:
    """A camera's state as its row keeps it."""
    return {"online": bool(camera.online), "health": camera.health_status,
            "last_seen": camera.last_seen.isoformat() if camera.last_seen else None,
            "offline_alert_id": camera.offline_alert_id}


def lookup_camera(camera_id: str) -> dict | None:
    """A camera's stored state, read in the current app context's session (the web app's HTTP door)."""
    from .extensions import db
    from .models import Camera

    camera = db.session.get(Camera, camera_id)
    return stored_state(camera) if camera is not None else None


def wrap_notify(notify: Notify | None, config: Mapping[str, Any],
                lookup: Callable[[str], dict | None] | None = None) -> Notify | None:
    """`notify`, mirrored on MQTT when MQTT_URL is set (`notify` may be None: then only mirrored);
    without MQTT_URL, `notify` unchanged."""
    url = config.get("MQTT_URL") or ""
    if not url:
        return notify
    return Mirror(notify, url, config.get("MQTT_TOPIC_PREFIX") or "lprserver", lookup)


def publish_cameras(app: Any, notify: Any) -> None:
    """At the daemon's start: publish every camera's state when `notify` is a Mirror."""
    if not isinstance(notify, Mirror):
        return
    from sqlalchemy import select

    from .extensions import db
    from .models import Camera

    with app.app_context():
        try:
            notify.publish_cameras(list(db.session.scalars(select(Camera).order_by(Camera.id))))
        finally:
            db.session.remove()
