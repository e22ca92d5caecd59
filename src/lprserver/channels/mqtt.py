"""The `mqtt` channel and the MQTT mirror's connection (SPEC §11 "Channels").

One MQTT client per process, made on first use from MQTT_URL (`mqtt://user:pass@host:1883`, or
`mqtts://user:pass@host:8883` over TLS, checked against the system's CAs or those of SSL_CERT_FILE),
and made again if the URL changes. paho-mqtt's network loop runs in a background thread (a greenlet
once the daemon has monkey-patched) and reconnects by itself, waiting 1 s, then twice as long each
time, up to 30 s.

`send` delivers an alert on `<prefix>/alerts` with QoS 1 and waits up to the settings' timeout for the
broker's PUBACK, so the alert sender knows whether it went and retries if not: delivery is at least
once (an acknowledgement lost on the way back means the alert is sent again). `publish` is the
mirror's (mqtt_mirror.py): it queues a QoS 1 message in the client and returns at once, never raising;
while the broker is away the client keeps up to MAX_QUEUED messages for when it is back, and drops the
rest, counted in a warning.

Neither the password nor the user name of MQTT_URL is ever put into an error message or a log line.
"""

import json
import logging
import os
import ssl
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from . import AlertMessage, ChannelError, ChannelSettings

log = logging.getLogger("lprserver.mqtt")

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
MAX_QUEUED = 10_000  # messages kept while the broker is away; a reader's mirror drops the rest
KEEPALIVE = 30  # seconds between pings on a quiet connection
RECONNECT_DELAYS = (1, 30)  # seconds: the first wait, and the longest
DROP_WARNING_SECONDS = 60.0  # at most one warning a minute about dropped messages


@dataclass(frozen=True)
class BrokerAddress:
    """Where MQTT_URL points, with its credentials; `shown` is the part that may be logged."""

    tls: bool
    host: str
    port: int
    username: str | None
    password: str | None

    @property
    def shown(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def parse_url(url: str) -> BrokerAddress:
    """Read MQTT_URL; ValueError says what is wrong, without the credentials."""
    parts = urlsplit(url.strip())
    if parts.scheme not in DEFAULT_PORTS:
        raise ValueError("MQTT_URL must start with mqtt:// or mqtts://, e.g. mqtt://user:pass@broker:1883")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise ValueError("MQTT_URL has a port that is not a number from 1 to 65535") from None
    if not parts.hostname:
        raise ValueError("MQTT_URL names no broker host, e.g. mqtt://user:pass@broker:1883")
    return BrokerAddress(parts.scheme == "mqtts", parts.hostname, port,
                         unquote(parts.username) if parts.username is not None else None,
                         unquote(parts.password) if parts.password is not None else None)


class Connection:
    """One paho client connected, or reconnecting, to one broker, and what is known about its state."""

    def __init__(self, url: str):
        self.url = url
        self.address = parse_url(url)
        self.pid = os.getpid()
        self.changed = threading.Condition()
        self.connected = False
        self.attempts = 0  # connection attempts that ended, either way
        self.error: str | None = None  # why the last attempt or connection failed; None once connected
        self.dropped = 0
        self.closing = False
        self._dropped_logged = 0
        self._drop_warned_at = float("-inf")
        self.client = self._client()
        self.client.connect_async(self.address.host, self.address.port, keepalive=KEEPALIVE)
        self.client.loop_start()

    def _client(self) -> paho.Client:
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"lprserver-{uuid.uuid4().hex[:12]}",
                             protocol=paho.MQTTv311)
        if self.address.username is not None:
            client.username_pw_set(self.address.username, self.address.password)
        if self.address.tls:
            client.tls_set_context(ssl.create_default_context())
        client.reconnect_delay_set(*RECONNECT_DELAYS)
        client.max_queued_messages_set(MAX_QUEUED)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        return client

    def _settle(self, connected: bool, error: str | None) -> None:
        with self.changed:
            was = self.connected
            self.connected, self.error = connected, error
            self.attempts += 1
            self.changed.notify_all()
        if connected:
            log.info("event=mqtt_connected broker=%s", self.address.shown)
        elif was or self.attempts == 1:  # once per outage, not on every retry
            log.warning("event=mqtt_unavailable broker=%s error=%r", self.address.shown, error)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._settle(False, f"the MQTT broker at {self.address.shown} refused the connection: "
                                f"{reason_code}")
        else:
            self._settle(True, None)

    def _on_connect_fail(self, client, userdata) -> None:
        self._settle(False, f"cannot connect to the MQTT broker at {self.address.shown}")

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        with self.changed:
            if not self.connected or self.closing:  # a refused connection keeps the broker's reason
                return
        self._settle(False, f"lost the connection to the MQTT broker at {self.address.shown}")

    def wait_connected(self, timeout: float) -> str | None:
        """None once connected; else why not. Waits only for a first attempt still under way: while the
        broker is known to be away the answer is immediate (the alert sender retries with back-off)."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while not self.connected and self.attempts == 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return f"no connection to the MQTT broker at {self.address.shown} within {timeout:g} s"
                self.changed.wait(left)
            return None if self.connected else self.error

    def deliver(self, topic: str, payload: str, timeout: float) -> None:
        """Publish with QoS 1 and wait for the broker's PUBACK; ChannelError if it did not come."""
        started = time.monotonic()
        why = self.wait_connected(timeout)
        if why is not None:
            raise ChannelError(why)
        info = self.client.publish(topic, payload, qos=1)
        if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
            raise ChannelError(f"the MQTT client holds {MAX_QUEUED} messages for {self.address.shown} "
                               "already; try again later")
        try:
            info.wait_for_publish(max(0.0, timeout - (time.monotonic() - started)))
            published = info.is_published()
        except (ValueError, RuntimeError) as exc:  # paho's own words: no credentials in them
            raise ChannelError(f"MQTT publish to {self.address.shown} failed: {exc}") from None
        if not published:
            raise ChannelError(f"the MQTT broker at {self.address.shown} did not acknowledge the alert "
                               f"within {timeout:g} s")

    def queue(self, topic: str, payload: str, retain: bool) -> bool:
        """Hand a QoS 1 message to the client without waiting; False if it was dropped."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        if info.rc != MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
            return True
        self.dropped += 1
        now = time.monotonic()
        if now - self._drop_warned_at >= DROP_WARNING_SECONDS:
            log.warning("event=mqtt_dropped broker=%s dropped=%d since_last_warning=%d queued_max=%d",
                        self.address.shown, self.dropped, self.dropped - self._dropped_logged, MAX_QUEUED)
            self._drop_warned_at, self._dropped_logged = now, self.dropped
        return False

    def close(self) -> None:
        self.closing = True
        self.client.disconnect()
        self.client.loop_stop()


_lock = threading.Lock()
_connection: Connection | None = None
_bad_urls: set[str] = set()  # MQTT_URLs the mirror warned about already


def connection_for(url: str) -> Connection:
    """The process's connection to `url`, made (and the previous one closed) if there is none yet.
    ValueError if the URL is not an MQTT URL."""
    global _connection
    with _lock:
        old = _connection
        if old is not None and old.url == url and old.pid == os.getpid():
            return old
        _connection = new = Connection(url)
    if old is not None and old.pid == os.getpid():  # a forked child's copy has no thread to stop
        # Stopping waits for the old loop's select (up to a second): not on the caller's time.
        threading.Thread(target=old.close, name="mqtt-close", daemon=True).start()
    return new


def close_connection() -> None:
    """Disconnect and forget the process's connection (tests; a process that is stopping)."""
    global _connection
    with _lock:
        old, _connection = _connection, None
    if old is not None and old.pid == os.getpid():
        old.close()


def alert_payload(message: AlertMessage) -> str:
    """What `<prefix>/alerts` carries: the alert's live event, and whether this is its escalation."""
    return json.dumps({**message.event, "escalation": message.escalation}, ensure_ascii=False, default=str)


def send(settings: ChannelSettings, message: AlertMessage) -> None:
    """Deliver one alert to `<prefix>/alerts`; ChannelError if the broker did not acknowledge it."""
    if not settings.mqtt_url:
        raise ChannelError("MQTT_URL is not set: the mqtt channel has no broker")
    try:
        connection = connection_for(settings.mqtt_url)
    except ValueError as exc:
        raise ChannelError(str(exc)) from None
    connection.deliver(f"{settings.mqtt_prefix}/alerts", alert_payload(message), settings.timeout)


def publish(url: str, topic: str, payload: Any, retain: bool = False) -> bool:
    """Queue a QoS 1 message for the broker of `url` and return at once; never raises. False if it
    was dropped (a bad URL, the client's queue full)."""
    try:
        connection = connection_for(url)
    except ValueError as exc:
        if url not in _bad_urls:
            _bad_urls.add(url)
            log.warning("event=mqtt_not_configured error=%r", str(exc))
        return False
    try:
        data = payload if isinstance(payload, str | bytes) else json.dumps(payload, ensure_ascii=False,
                                                                            default=str)
        return connection.queue(topic, data, retain)
    except Exception:  # the mirror must never break the read that caused it
        log.exception("event=mqtt_publish_failed broker=%s topic=%r", connection.address.shown, topic)
        return False
