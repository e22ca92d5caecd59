"""Live events between several web workers or hosts (SPEC §14, README "Several web workers or hosts").

With LIVE_MESSAGE_QUEUE set, the web app's Socket.IO server keeps its browsers with one of python-socketio's
client managers (Redis, RabbitMQ through kombu, Kafka) instead of its in-process list: an event emitted in
any web worker is delivered by that worker to its own browsers at once and published on the queue, and each
other worker delivers it to its browsers when it hears it there, so every browser gets it once. Rooms stay
each worker's own (a socket is in the rooms of its worker), so the sites' rooms of web/live.py filter the
same way whichever worker emitted. Empty keeps python-socketio's in-process manager and needs no queue.

The managers here add one thing to python-socketio's: `disconnect_room`, which closes the sockets of a room
on every worker (a user who signed out or lost access may have pages open on several). It travels as a
`close_room` message marked DISCONNECT_KEY; a worker that did not know the mark would only close the room.

The web app checks at start that the queue answers (`check_reachable`): unreachable, it refuses to start
with an error naming the setting, rather than run with browsers that silently miss other workers' events;
systemd starts it again until the queue is back. Once running, an outage of the queue costs only the other
workers' events (python-socketio logs it and connects again by itself).
"""

import logging
from urllib.parse import urlsplit

import socketio

log = logging.getLogger("lprserver.live_queue")

DISCONNECT_KEY = "lpr_disconnect"
CONNECT_TIMEOUT = 3.0  # seconds: a queue that does not answer stops the start, it does not hang it


def shown_url(url: str) -> str:
    """The queue's URL without its user name and password, for logs and errors."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


class DisconnectsRooms:
    """Adds `disconnect_room` to a python-socketio pub/sub manager (the module's docstring)."""

    def disconnect_room(self, room: str, namespace: str = "/") -> None:
        message = {"method": "close_room", "room": room, "namespace": namespace, "host_id": self.host_id,
                   DISCONNECT_KEY: True}
        self._handle_close_room(message)  # this worker's sockets
        self._publish(message)  # the other workers'

    def _handle_close_room(self, message: dict) -> None:
        if message.get(DISCONNECT_KEY):
            namespace = message.get("namespace") or "/"
            for sid, _ in list(self.get_participants(namespace, message.get("room"))):
                self.server.disconnect(sid, namespace=namespace, ignore_queue=True)
        super()._handle_close_room(message)


class RedisQueue(DisconnectsRooms, socketio.RedisManager):
    """redis:// and rediss://: Redis pub/sub on one channel."""

    def __init__(self, url: str, channel: str):
        # Without a connect timeout, a Redis host that drops packets would hold a relayed batch for minutes.
        super().__init__(url, channel=channel,
                         redis_options={"socket_connect_timeout": CONNECT_TIMEOUT, "socket_keepalive": True})

    def check_reachable(self) -> None:
        import redis

        client = redis.Redis.from_url(self.redis_url, socket_connect_timeout=CONNECT_TIMEOUT,
                                      socket_timeout=CONNECT_TIMEOUT)
        try:
            client.ping()
        finally:
            client.close()


class KombuQueue(DisconnectsRooms, socketio.KombuManager):
    """amqp:// and amqps://: RabbitMQ (or another AMQP broker) through kombu."""

    def __init__(self, url: str, channel: str):
        super().__init__(url, channel=channel, connection_options={"connect_timeout": CONNECT_TIMEOUT})

    def check_reachable(self) -> None:
        self.publisher_connection.ensure_connection(max_retries=1, timeout=CONNECT_TIMEOUT)


class KafkaQueue(DisconnectsRooms, socketio.KafkaManager):
    """kafka://: one Kafka topic (kafka-python connects to the brokers when the manager is made)."""

    def __init__(self, url: str, channel: str):
        super().__init__(url, channel=channel)

    def check_reachable(self) -> None:
        pass  # kafka-python's producer already failed in __init__ (after its own 30 s) if no broker answered


QUEUES = {"redis": RedisQueue, "rediss": RedisQueue, "amqp": KombuQueue, "amqps": KombuQueue,
          "kafka": KafkaQueue}
PACKAGES = {RedisQueue: "redis", KombuQueue: "kombu", KafkaQueue: "kafka-python"}


def client_manager(config) -> DisconnectsRooms | None:
    """The Socket.IO client manager for LIVE_MESSAGE_QUEUE, checked to answer; None when it is empty.

    Raises RuntimeError, naming the setting (never its password), when the queue's Python package is not
    installed or the queue does not answer within CONNECT_TIMEOUT."""
    url = config.get("LIVE_MESSAGE_QUEUE") or ""
    if not url:
        return None
    queue_class = QUEUES[urlsplit(url).scheme.lower()]  # config.py refused any other scheme
    shown = shown_url(url)
    try:
        manager = queue_class(url, config.get("LIVE_MESSAGE_CHANNEL") or "lprserver-live")
        manager.check_reachable()
    except (ImportError, RuntimeError) as exc:
        if isinstance(exc, ImportError) or "not installed" in str(exc):
            package = PACKAGES[queue_class]
            raise RuntimeError(f"LIVE_MESSAGE_QUEUE {shown} needs the Python package {package}: "
                               f".venv/bin/pip install {package}") from None
        raise
    except Exception as exc:
        raise RuntimeError(f"LIVE_MESSAGE_QUEUE {shown} does not answer ({exc.__class__.__name__}: "
                           f"{str(exc)[:200]}): start it, or empty the setting to run one web worker "
                           "without it") from None
    log.info("live events go through the message queue %s", shown)
    return manager


def disconnect_room(server: socketio.Server, room: str, namespace: str = "/") -> None:
    """Close every socket in `room`: on every web worker with a queue, in this process without one."""
    manager = server.manager
    if isinstance(manager, DisconnectsRooms):
        manager.disconnect_room(room, namespace)
        return
    for sid, _ in list(manager.get_participants(namespace, room)):
        server.disconnect(sid, namespace=namespace)
