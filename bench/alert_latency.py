"""Time a blacklisted read's alert from the camera's answer to the MQTT message, the e-mail and the
LINE push (SPEC §11; issue 21's closing figure): p50/p99 over 100 reads.

    python -m bench.alert_latency                 # 100 reads, a throwaway PostgreSQL
    python -m bench.alert_latency --reads 200 --gap 0.2

Everything is real but LINE: the ingest daemon (production settings, its alert sender on), a
throwaway PostgreSQL, Debian's Mosquitto with a password, an SMTP server (aiosmtpd) that requires
STARTTLS and a login, and the tests' LINE stand-in (tests/line_standin.py), which checks each push as
LINE documents it. One rule sends every blacklist alert to `mqtt`, `email:` and `line:`. A camera sends
one read at a time (each a different blacklisted plate, with a 40 KB JPEG), `--gap` seconds apart;
each receiver notes when a message arrives and which record it names (the MQTT payload's `record_id`,
the record's link in the e-mail and LINE text), and the time from the camera's answer is printed per
channel. The figures are printed, never asserted.
"""

import argparse
import base64
import json
import logging
import re
import statistics
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import socketio
import trustme
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from config import database_url
from lprserver.blacklist import add_entry
from lprserver.models import AlertRule
from tests.line_standin import LineStandIn
from tests.mailserver import Inbox, MailServer
from tests.mosquitto import new_broker

from .common import BenchDatabase, Daemon, jpeg_of_size, machine, percentile, scratch_folder, write_json

PUBLIC_URL = "https://lpr.example.org"
LINK_RE = re.compile(re.escape(PUBLIC_URL) + r"/records/(\d+)")
LINE_USER = "U" + "0123456789abcdef" * 2


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=100)
    parser.add_argument("--gap", type=float, default=0.3, help="seconds between reads")
    parser.add_argument("--url", help="an empty PostgreSQL database instead of a throwaway one")
    parser.add_argument("--json", help="write the results here (default bench/results/alert_latency-*.json)")
    return parser.parse_args(argv)


class Arrivals:
    """When each channel's message for each record arrived (time.time())."""

    def __init__(self):
        self.lock = threading.Lock()
        self.at: dict[str, dict[int, float]] = {"mqtt": {}, "email": {}, "line": {}}

    def note(self, channel: str, record_id: int | None) -> None:
        now = time.time()
        if record_id is not None:
            with self.lock:
                self.at[channel].setdefault(record_id, now)


class TimedInbox(Inbox):
    def __init__(self, arrivals: Arrivals):
        super().__init__()
        self.arrivals = arrivals

    async def handle_DATA(self, server, session, envelope):
        answer = await super().handle_DATA(server, session, envelope)
        body = self.messages[-1].message.get_body(("plain",))
        found = LINK_RE.search(body.get_content() if body is not None else "")
        self.arrivals.note("email", int(found.group(1)) if found else None)
        return answer


class TimedLine(LineStandIn):
    def __init__(self, arrivals: Arrivals):
        super().__init__()
        self.arrivals = arrivals

    def answer(self, path, headers, raw):
        status, answer, extra = super().answer(path, headers, raw)
        if status == 200:
            text = " ".join(m.get("text", "") for m in json.loads(raw)["messages"])
            found = LINK_RE.search(text)
            self.arrivals.note("line", int(found.group(1)) if found else None)
        return status, answer, extra


def subscribe(broker, arrivals: Arrivals, prefix: str) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.username_pw_set(broker.user, broker.password)
    subscribed = threading.Event()

    def on_connect(c, userdata, flags, reason, properties):
        c.subscribe(f"{prefix}/alerts", qos=1)

    def on_message(c, userdata, message):
        arrivals.note("mqtt", json.loads(message.payload).get("record_id"))

    client.on_connect = on_connect
    client.on_subscribe = lambda *args: subscribed.set()
    client.on_message = on_message
    client.connect(broker.host, broker.port)
    client.loop_start()
    if not subscribed.wait(10):
        raise RuntimeError("the subscriber could not subscribe to the broker")
    return client


def seed(url: str, plates: list[str]) -> None:
    """The blacklist entries and the rule, as an admin would add them."""
    engine = create_engine(database_url(url))
    with Session(engine) as session:
        for plate in plates:
            add_entry(session, plate, reason="รถถูกขโมย", category="stolen")
        session.add(AlertRule(trigger="blacklist", channels=["mqtt", "email:guard@example.org",
                                                             f"line:{LINE_USER}"],
                              categories=[], cameras=[], escalate_to=[]))
        session.commit()
    engine.dispose()


def figures(spent: list[float]) -> dict:
    ms = [s * 1000 for s in spent]
    return {"messages": len(ms), "p50_ms": round(statistics.median(ms), 1) if ms else None,
            "p99_ms": round(percentile(ms, 99), 1) if ms else None,
            "max_ms": round(max(ms), 1) if ms else None}


def run(args) -> dict:
    measured_on = machine()
    plates = [f"ฮก {1000 + n}" for n in range(args.reads)]
    jpeg = jpeg_of_size(40_000)
    image = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")
    arrivals = Arrivals()
    ca = trustme.CA()
    ca_file = Path(tempfile.mkdtemp(prefix="lpr-bench-ca-")) / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    database = BenchDatabase(args.url)
    broker = new_broker()
    mail = MailServer(ca, user="lpr", password="bench pass")
    mail.inbox = TimedInbox(arrivals)
    mail.controller.handler = mail.inbox
    line = TimedLine(arrivals)
    subscriber = None
    answered: dict[int, float] = {}
    try:
        seed(database.url, plates)
        with mail, line, scratch_folder("lpr-bench-alerts-") as folder:
            subscriber = subscribe(broker, arrivals, "lprserver")
            env = {"ALERT_WORKER": "1", "SMTP_URL": mail.url("lpr", "bench pass"),
                   "SMTP_FROM": "LPR Server <lpr@example.org>", "LINE_CHANNEL_TOKEN": line.token,
                   "LINE_API_URL": line.url, "MQTT_URL": broker.url(), "PUBLIC_URL": PUBLIC_URL,
                   "SSL_CERT_FILE": str(ca_file), "CAMERA_OFFLINE_MINUTES": "0", "WEBHOOK_WORKER": "0"}
            daemon = Daemon(database.url, folder / "images", folder / "daemon.log", extra_env=env).start()
            try:
                camera = socketio.Client(reconnection=False)
                camera.connect(daemon.url, transports=["websocket"], wait_timeout=10)
                for n, plate in enumerate(plates):
                    answer = camera.call("lpr_data", {"camera_id": "GATE-N", "plate_number": plate,
                                                      "event_id": f"bench-{n}", "image_data": image},
                                         timeout=30)
                    done = time.time()
                    if answer.get("status") != "success" or not answer.get("blacklisted"):
                        raise RuntimeError(f"read {n} was answered {answer}")
                    answered[answer["record_id"]] = done
                    time.sleep(args.gap)
                camera.disconnect()
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and \
                        any(len(got) < len(answered) for got in arrivals.at.values()):
                    time.sleep(0.2)
            finally:
                daemon.stop()
    finally:
        if subscriber is not None:
            subscriber.loop_stop()
            subscriber.disconnect()
        broker.stop()
        database.close()
    results = {}
    for channel, got in arrivals.at.items():
        spent = [got[record] - at for record, at in answered.items() if record in got]
        results[channel] = {**figures(spent), "missing": len(answered) - len(spent)}
    return {"reads": len(answered), "gap_seconds": args.gap, "channels": results, "machine": measured_on}


def main(argv=None) -> None:
    args = parse_args(argv)
    # aiosmtpd 1.4's own AUTH handler logs a warning about its deprecated login_data: nothing of ours.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    results = run(args)
    print(f"{results['reads']} blacklisted reads, one every {args.gap} s; from the camera's answer to:")
    for channel, shown in results["channels"].items():
        print(f"  {channel:5}  p50 {shown['p50_ms']} ms  p99 {shown['p99_ms']} ms  max {shown['max_ms']} ms  "
              f"({shown['messages']} received, {shown['missing']} missing)")
    print(f"results: {write_json('alert_latency', results, args.json)}")


if __name__ == "__main__":
    main()
