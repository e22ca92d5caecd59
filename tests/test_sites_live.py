"""Sites (SPEC §15) on the live channel: a user limited to site A gets only A's events, once; an unlimited
admin gets every camera's, once; /live/missed and the statistics follow the same sites."""

import json
import time

import requests

from lprserver.extensions import db
from lprserver.live import relay_key, sign
from lprserver.models import Camera, Record, User, utcnow

from .test_ingest import close_client
from .test_live import Inbox, browser_socket
from .webserver import web_session


def _post(webapp, base_env, events):
    body = json.dumps({"events": events}).encode()
    stamp = str(time.time())
    answer = requests.post(f"{webapp.url}/internal/live", data=body, timeout=10, headers={
        "Content-Type": "application/json", "X-LPR-Timestamp": stamp,
        "X-LPR-Signature": sign(relay_key(base_env["SECRET_KEY"]), stamp, body)})
    assert answer.status_code == 204


def test_a_limited_viewer_gets_only_their_sites_events(webapp, base_env, app, users):
    db.session.add_all([Camera(id="SL-A", name="A gate", site="A"), Camera(id="SL-B", name="B gate", site="B"),
                        Camera(id="SL-N", name="no site")])
    viewer = db.session.scalar(db.select(User).filter_by(username="viewer"))
    viewer.sites = ["A"]
    now = utcnow()
    for n, camera in enumerate(("SL-A", "SL-B", "SL-N")):
        db.session.add(Record(camera_id=camera, event_id=f"sl{n}", plate_number=f"กข{n}",
                              plate_normalized=f"กข{n}", captured_at=now, received_at=now))
    db.session.commit()
    limited, admin = web_session(webapp, "viewer"), web_session(webapp, "admin")
    sockets = [browser_socket(webapp, limited), browser_socket(webapp, admin)]
    inboxes = [Inbox(s, "new_record", "camera_status") for s in sockets]
    try:
        _post(webapp, base_env, [{"event": "new_record", "data": {"id": 900 + n, "camera_id": c}}
                                 for n, c in enumerate(("SL-A", "SL-B", "SL-N"))]
              + [{"event": "camera_status", "data": {"camera_id": "SL-B", "online": True}}])
        inboxes[1].wait_for(lambda e, d: e == "camera_status")
        inboxes[0].wait_for(lambda e, d: d.get("id") == 900)
        time.sleep(0.5)
        assert [d["id"] for e, d, _ in inboxes[0].items] == [900]
        assert sorted(d["id"] for e, d, _ in inboxes[1].items if e == "new_record") == [900, 901, 902]  # once each
        missed = limited.get(f"{webapp.url}/live/missed?after=0", timeout=10).json()["records"]
        assert {r["camera_id"] for r in missed} == {"SL-A"}
        everything = admin.get(f"{webapp.url}/live/missed?after=0", timeout=10).json()["records"]
        assert {"SL-A", "SL-B", "SL-N"} <= {r["camera_id"] for r in everything}
        stats = limited.get(f"{webapp.url}/api/statistics", timeout=10).json()
        assert stats["total_records"] == 1 and stats["cameras_total"] == 1
        assert admin.get(f"{webapp.url}/api/statistics", timeout=10).json()["total_records"] == 3
    finally:
        for s in sockets:
            close_client(s)
