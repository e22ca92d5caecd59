"""MQTT (SPEC §11 "Channels"): the `mqtt` channel's alerts and the mirror of reads and cameras' state,
against a real Mosquitto with a password, through the real daemon and the HTTP door."""

import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select

from lprserver.channels import AlertMessage, ChannelError, ChannelSettings, mqtt
from lprserver.extensions import db
from lprserver.models import Camera, Record
from lprserver.mqtt_mirror import Mirror, topic_level, wrap_notify

from .mosquitto import mosquitto, new_broker  # noqa: F401
from .pgcluster import free_port
from .processes import Daemon
from .test_ingest import camera, fresh, wait_until


class Subscriber:
    """A paho client subscribed to `topic` (QoS 1) that keeps every message it receives."""

    def __init__(self, broker, topic: str):
        self.topic = topic
        self.messages: list[paho.MQTTMessage] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2)
        self.client.username_pw_set(broker.user, broker.password)
        self.client.on_connect = lambda client, *_: client.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._received
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert self.subscribed.wait(10), "the subscription was not acknowledged"

    def _received(self, client, userdata, message) -> None:
        with self.lock:
            self.messages.append(message)

    def on(self, topic: str) -> list[paho.MQTTMessage]:
        with self.lock:
            return [m for m in self.messages if m.topic == topic]

    def wait_for(self, topic: str, timeout: float = 10.0) -> paho.MQTTMessage:
        found = wait_until(lambda: self.on(topic), timeout)
        assert found, f"nothing on {topic}; got {[m.topic for m in self.messages]}"
        return found[-1]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def prefix() -> str:
    """A topic prefix of the test's own: the session's broker keeps other tests' retained states."""
    return f"lpr-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def subscribe(mosquitto):  # noqa: F811
    made = []

    def make(topic: str, broker=None) -> Subscriber:
        made.append(Subscriber(broker or mosquitto, topic))
        return made[-1]

    yield make
    for subscriber in made:
        subscriber.close()


@pytest.fixture(autouse=True)
def _fresh_connection():
    """Each test makes the process's MQTT connection it needs, and none outlives it."""
    yield
    mqtt.close_connection()


def payload(message: paho.MQTTMessage) -> dict:
    return json.loads(message.payload.decode("utf-8"))


def alert_message(**changes) -> AlertMessage:
    event = {"id": 7, "trigger": "blacklist", "plate": "กข1234", "camera_id": "CAM001", "record_id": 11,
             "created_at": "2024-08-06T03:30:00+00:00", "repeat_count": 1, "record": None}
    fields = {"alert_id": 7, "trigger": "blacklist", "at": datetime(2024, 8, 6, 3, 30, tzinfo=UTC),
              "plate": "กข1234", "camera_id": "CAM001", "event": event}
    return AlertMessage(**{**fields, **changes})


# --- the mqtt channel: alerts on <prefix>/alerts --------------------------------------------------


def test_send_delivers_the_alert_event_on_prefix_alerts_with_qos_1(mosquitto, subscribe, prefix):  # noqa: F811
    subscriber = subscribe(f"{prefix}/#")
    settings = ChannelSettings(mqtt_url=mosquitto.url(), mqtt_prefix=prefix, timeout=5)
    message = alert_message()
    mqtt.send(settings, message)
    mqtt.send(settings, alert_message(escalation=True))
    received = wait_until(lambda: len(subscriber.on(f"{prefix}/alerts")) == 2 and subscriber.on(f"{prefix}/alerts"))
    assert [m.qos for m in received] == [1, 1]
    assert payload(received[0]) == {**message.event, "escalation": False}
    assert payload(received[1])["escalation"] is True
    assert not received[0].retain


def test_send_over_tls_checks_the_broker_against_ssl_cert_file(mosquitto, subscribe, prefix, monkeypatch):  # noqa: F811
    subscriber = subscribe(f"{prefix}/alerts")
    monkeypatch.setenv("SSL_CERT_FILE", str(mosquitto.ca_file))
    mqtt.send(ChannelSettings(mqtt_url=mosquitto.url(tls=True), mqtt_prefix=prefix, timeout=5), alert_message())
    assert payload(subscriber.wait_for(f"{prefix}/alerts"))["id"] == 7


# paho-mqtt 2.2 leaves the TLS socket of a failed handshake to the garbage collector, which closes it.
@pytest.mark.filterwarnings("ignore:Exception ignored in. <ssl.SSLSocket:pytest.PytestUnraisableExceptionWarning")
def test_tls_to_a_broker_of_an_unknown_ca_is_a_channel_error(mosquitto, monkeypatch):  # noqa: F811
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with pytest.raises(ChannelError, match="cannot connect to the MQTT broker at mqtts://127.0.0.1"):
        mqtt.send(ChannelSettings(mqtt_url=mosquitto.url(tls=True), timeout=5), alert_message())


def test_a_wrong_password_is_a_channel_error_without_the_password(mosquitto):  # noqa: F811
    url = mosquitto.url(password="Wr0ng-Secret-Word")
    started = time.monotonic()
    with pytest.raises(ChannelError) as failure:
        mqtt.send(ChannelSettings(mqtt_url=url, timeout=5), alert_message())
    assert "refused the connection: Not authorized" in str(failure.value)
    assert "Wr0ng-Secret-Word" not in str(failure.value) and mosquitto.user not in str(failure.value)
    assert time.monotonic() - started < 4  # the refusal is the answer: no wait for the timeout


def test_a_broker_that_is_down_is_a_channel_error_without_the_password():
    url = f"mqtt://lpr:Down-Secret-Word@127.0.0.1:{free_port()}"
    with pytest.raises(ChannelError, match="cannot connect to the MQTT broker at mqtt://127.0.0.1") as failure:
        mqtt.send(ChannelSettings(mqtt_url=url, timeout=5), alert_message())
    assert "Down-Secret-Word" not in str(failure.value)
    # Known to be away: the next alert fails at once, and the sender retries it later.
    started = time.monotonic()
    with pytest.raises(ChannelError):
        mqtt.send(ChannelSettings(mqtt_url=url, timeout=5), alert_message())
    assert time.monotonic() - started < 1


def test_a_broker_that_stops_answering_times_out_as_a_channel_error():
    broker = new_broker()
    try:
        settings = ChannelSettings(mqtt_url=broker.url(), timeout=2)
        mqtt.send(settings, alert_message())
        broker.process.send_signal(19)  # SIGSTOP: the connection stays open, nothing answers
        with pytest.raises(ChannelError, match="did not acknowledge the alert within 2 s"):
            mqtt.send(settings, alert_message())
    finally:
        broker.process.send_signal(18)  # SIGCONT
        broker.stop()


@pytest.mark.parametrize("url, error", [
    ("", "MQTT_URL is not set"),
    ("http://u:Secret-1@broker:1883", "must start with mqtt:// or mqtts://"),
    ("mqtt://u:Secret-1@broker:99999", "port that is not a number"),
    ("mqtt://u:Secret-1@:1883", "names no broker host"),
])
def test_a_bad_mqtt_url_is_a_channel_error_without_the_password(url, error):
    with pytest.raises(ChannelError, match=error) as failure:
        mqtt.send(ChannelSettings(mqtt_url=url, timeout=1), alert_message())
    assert "Secret-1" not in str(failure.value)


def test_publish_never_raises_and_says_when_it_dropped(mosquitto, caplog):  # noqa: F811
    assert mqtt.publish("http://u:Secret-2@broker", "a/b", {"x": 1}) is False
    assert mqtt.publish(mosquitto.url(), "a/+/b", {"x": 1}) is False  # a wildcard: not a topic
    assert "Secret-2" not in caplog.text


def test_publish_drops_past_the_queue_and_counts_it(monkeypatch, caplog):
    monkeypatch.setattr(mqtt, "MAX_QUEUED", 3)
    url = f"mqtt://lpr:Queue-Secret@127.0.0.1:{free_port()}"  # nobody there: everything waits
    sent = [mqtt.publish(url, "lpr/reads/CAM1", {"n": n}) for n in range(5)]
    assert sent == [True, True, True, False, False]
    assert mqtt.connection_for(url).dropped == 2
    assert "event=mqtt_dropped" in caplog.text and "Queue-Secret" not in caplog.text


# --- the mirror: reads and cameras' state -----------------------------------------------------------


@pytest.mark.parametrize("camera_id, level", [
    ("CAM-01_a.b", "CAM-01_a.b"), ("gate/1", "gate%2F1"), ("a+b", "a%2Bb"), ("all#", "all%23"),
    ("50%", "50%25"), ("กล้อง", "%E0%B8%81%E0%B8%A5%E0%B9%89%E0%B8%AD%E0%B8%87"), ("", "%00"),
    ("a b", "a%20b"), ("$SYS", "%24SYS"),
])
def test_a_camera_id_is_one_percent_encoded_topic_level(camera_id, level):
    assert topic_level(camera_id) == level


def test_without_mqtt_url_notify_is_unchanged():
    def notify(event, data):
        return None

    assert wrap_notify(notify, {"MQTT_URL": ""}) is notify
    assert wrap_notify(None, {}) is None


def test_mirror_publishes_reads_and_retained_merged_state_with_ids_encoded(mosquitto, subscribe, prefix):  # noqa: F811
    subscriber = subscribe(f"{prefix}/#")
    seen = []
    notify = wrap_notify(lambda event, data: seen.append(event), {"MQTT_URL": mosquitto.url(),
                                                                   "MQTT_TOPIC_PREFIX": prefix})
    assert isinstance(notify, Mirror)
    record = {"id": 5, "camera_id": "gate/1+#", "plate_number": "กข1234", "province": "กรุงเทพมหานคร",
              "captured_at": "2024-08-06T03:30:00+00:00"}
    notify("new_record", record)
    notify("camera_status", {"camera_id": "gate/1+#", "online": True})
    notify("camera_status", {"camera_id": "gate/1+#", "health": "WARN"})
    notify("alert", {"id": 1, "trigger": "camera_offline", "camera_id": "gate/1+#"})
    notify("alert_resolved", {"id": 1, "trigger": "camera_offline", "camera_id": "gate/1+#"})
    assert seen == ["new_record", "camera_status", "camera_status", "alert", "alert_resolved"]
    read = subscriber.wait_for(f"{prefix}/reads/gate%2F1%2B%23")
    assert payload(read) == {**record, "record_id": record["id"]} and read.qos == 1 and not read.retain
    state_topic = f"{prefix}/cameras/gate%2F1%2B%23/state"
    wait_until(lambda: len(subscriber.on(state_topic)) == 2)
    assert payload(subscriber.on(state_topic)[-1]) == {
        "camera_id": "gate/1+#", "online": True, "health": "WARN", "last_seen": None, "offline_alert_id": None}
    # Alerts go through the outbox and the mqtt channel, not the mirror.
    time.sleep(0.3)
    assert sorted({m.topic for m in subscriber.messages}) == [f"{prefix}/cameras/gate%2F1%2B%23/state",
                                                              f"{prefix}/reads/gate%2F1%2B%23"]
    late = subscribe(state_topic)
    retained = late.wait_for(state_topic)
    assert retained.retain and payload(retained)["online"] is True and payload(retained)["health"] == "WARN"


def test_mirror_never_breaks_the_caller(caplog):
    notify = wrap_notify(None, {"MQTT_URL": "mqtt://u:Secret-3@127.0.0.1:1"})
    notify("new_record", {"id": 1, "camera_id": "CAM1"})
    notify("camera_status", "not a dict")
    notify("new_record", {"id": 2})  # no camera id: nothing to publish
    assert "Secret-3" not in caplog.text


# --- through the real daemon and the HTTP door -------------------------------------------------------


def mqtt_daemon_env(base_env: dict, url: str, prefix: str, mode: str = "gevent") -> dict:
    return {**base_env, "ASYNC_MODE": mode, "MQTT_URL": url, "MQTT_TOPIC_PREFIX": prefix}


@pytest.fixture(scope="module", params=["gevent", "eventlet"])
def mqtt_daemon(request, base_env, mosquitto, tmp_path_factory):  # noqa: F811
    """The ingest daemon mirroring to the session's broker, under its own prefix."""
    prefix = f"lpr-daemon-{request.param}-{uuid.uuid4().hex[:6]}"
    proc = Daemon(mqtt_daemon_env(base_env, mosquitto.url(), prefix, request.param),
                  tmp_path_factory.mktemp("daemon") / f"mqtt-{request.param}.log").start()
    proc.prefix = prefix
    yield proc
    proc.stop()


def send_read(daemon, camera_id: str, plate: str = "กข1234") -> dict:
    with camera(daemon) as sio:
        return sio.call("lpr_data", {"camera_id": camera_id, "plate_number": plate, "province": "กรุงเทพมหานคร"},
                        timeout=10)


def test_a_read_through_the_daemon_goes_to_its_cameras_reads_topic(mqtt_daemon, app, subscribe):
    prefix = mqtt_daemon.prefix
    subscriber = subscribe(f"{prefix}/reads/#")
    with camera(mqtt_daemon) as sio:
        answer = sio.call("lpr_data", {"camera_id": "GATE-1", "plate_number": "กข1234",
                                       "province": "กรุงเทพมหานคร"}, timeout=10)
        assert answer["status"] == "success"
        read = payload(subscriber.wait_for(f"{prefix}/reads/GATE-1"))
        assert read["record_id"] == read["id"]
        assert (read["id"], read["camera_id"], read["plate_number"]) == (answer["record_id"], "GATE-1", "กข1234")
        assert read["province"] == "กรุงเทพมหานคร" and read["province_code"]
        assert read["received_at"].endswith("+00:00")  # ISO 8601, UTC
        # A subscriber that connects afterwards still learns the camera's state: retained.
        topic = f"{prefix}/cameras/GATE-1/state"
        state = subscribe(topic).wait_for(topic)
        assert state.retain and payload(state)["online"] is True and payload(state)["camera_id"] == "GATE-1"
    # The camera hung up: its retained state says so, with when it was last seen.
    assert wait_until(lambda: payload(subscribe(topic).wait_for(topic))["online"] is False)
    assert payload(subscribe(topic).wait_for(topic))["last_seen"] == read["received_at"]


def test_a_health_report_keeps_online_in_the_retained_state(mqtt_daemon, app, subscribe):
    prefix = mqtt_daemon.prefix
    subscriber = subscribe(f"{prefix}/cameras/+/state")
    with camera(mqtt_daemon) as sio:
        assert sio.call("health_status", {"camera_id": "HEALTHY", "status": "WARN"}, timeout=10)["status"] == "success"
        topic = f"{prefix}/cameras/HEALTHY/state"
        assert wait_until(lambda: any(payload(m)["health"] == "WARN" for m in subscriber.on(topic)))
        live = [m for m in subscriber.on(topic) if not m.retain]  # not a state retained from before
        assert [payload(m)["online"] for m in live] == [True] * len(live)
    # The camera hung up: offline, with its last health.
    assert wait_until(lambda: payload(subscriber.on(topic)[-1])["online"] is False)
    assert payload(subscriber.on(topic)[-1])["health"] == "WARN"


def test_with_the_broker_stopped_reads_are_answered_and_stored(base_env, app, subscribe, tmp_path):
    broker = new_broker()
    prefix = f"lpr-down-{uuid.uuid4().hex[:6]}"
    proc = Daemon(mqtt_daemon_env(base_env, broker.url(), prefix), tmp_path / "daemon.log").start()
    try:
        subscriber = subscribe(f"{prefix}/reads/#", broker)
        assert send_read(proc, "DOWN-1")["status"] == "success"
        subscriber.wait_for(f"{prefix}/reads/DOWN-1")
        subscriber.close()
        broker.stop()
        with camera(proc) as sio:  # one connection: a client's hang-up alone takes it 3 s
            started = time.monotonic()
            answers = [sio.call("lpr_data", {"camera_id": "DOWN-1", "plate_number": f"กข{1000 + n}"}, timeout=10)
                       for n in range(5)]
            spent = time.monotonic() - started
        assert [a["status"] for a in answers] == ["success"] * 5
        assert spent < 2, spent  # the broker's absence costs the cameras nothing
        assert fresh().scalar(select(func.count()).select_from(Record)) == 6
        # The broker is back: the daemon reconnects by itself and reads reach it again.
        broker.start()
        back = subscribe(f"{prefix}/reads/#", broker)
        deadline = time.monotonic() + 45
        while not back.on(f"{prefix}/reads/DOWN-1") and time.monotonic() < deadline:
            assert send_read(proc, "DOWN-1", "กข9999")["status"] == "success"
            time.sleep(1)
        assert back.on(f"{prefix}/reads/DOWN-1"), proc.log()[-3000:]
        assert "Traceback" not in proc.log()
    finally:
        proc.stop()
        broker.stop()


def test_a_read_posted_over_http_goes_to_mqtt_too(mosquitto, app, client, subscribe, prefix):  # noqa: F811
    app.config.update(MQTT_URL=mosquitto.url(), MQTT_TOPIC_PREFIX=prefix)
    # A camera last heard from an hour ago, with its health: the read moves its last_seen.
    db.session.add(Camera(id="HTTP-1", last_seen=datetime.now(UTC) - timedelta(hours=1), health_status="PASS"))
    db.session.commit()
    subscriber = subscribe(f"{prefix}/#")
    answer = client.post("/api/records", json={"camera_id": "HTTP-1", "plate_number": "กข1234"})
    assert answer.status_code == 201
    read = payload(subscriber.wait_for(f"{prefix}/reads/HTTP-1"))
    assert read["id"] == answer.get_json()["record_id"] and read["plate_number"] == "กข1234"
    # The web app keeps no presence: the state is the stored one (no daemon connection: offline).
    state = subscriber.wait_for(f"{prefix}/cameras/HTTP-1/state")
    assert payload(state) == {"camera_id": "HTTP-1", "online": False, "health": "PASS",
                              "last_seen": read["received_at"], "offline_alert_id": None}
    assert subscribe(f"{prefix}/cameras/HTTP-1/state").wait_for(f"{prefix}/cameras/HTTP-1/state").retain
    assert db.session.scalar(select(func.count()).select_from(Record)) == 1
