"""Edge camera simulator: cameras that register and send plate reads with generated images.

Each simulated camera is one python-socketio client (plain threads: the CLI
process is not monkey-patched) that speaks the ingest protocol of README "Sending reads"
and resends a read until the daemon acknowledges it (README "Sending reads").
"""

import base64
import io
import itertools
import logging
import random
import re
import string
import threading
import time
import uuid
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache

import socketio
from PIL import Image, ImageChops, ImageDraw, ImageFont

from .plates import find_province

log = logging.getLogger("lprserver.simulate")

# Consonants seen on Thai plates (ฃ and ฅ are obsolete and never issued).
THAI_CONSONANTS = "กขคฆงจฉชซฌญฎฏฐฑฒณดตถทธนบปผพฟภมยรลวศษสหฬอฮ"
# Bangkok first: it registers far more vehicles than any other province.
PROVINCES = (
    "กรุงเทพมหานคร", "กรุงเทพมหานคร", "กรุงเทพมหานคร", "นนทบุรี", "ปทุมธานี", "สมุทรปราการ",
    "เชียงใหม่", "ชลบุรี", "ภูเก็ต", "ขอนแก่น", "นครราชสีมา", "สงขลา", "ระยอง", "อุดรธานี",
)
LOCATIONS = ("ประตูหน้า", "ประตูหลัง", "ลานจอดรถ B1", "ทางเข้าอาคาร A", "ด่านเก็บเงิน 2")
# The front gate's camera sees cars coming in, the back gate's cars going out (SPEC §10 "Visits": a
# read with direction in opens a visit, out closes it); the others say nothing.
DIRECTIONS = {"ประตูหน้า": "in", "ประตูหลัง": "out"}
UNSURE_SHARE = 0.1  # reads a camera is unsure of (confidence 55-80): they wait on /review
# Debian's fonts-thai-tlwg (setup.sh run installs it); DejaVu has no Thai letters (they show as boxes).
THAI_FONTS = (
    "/usr/share/fonts/truetype/tlwg/Garuda-Bold.ttf",
    "/usr/share/fonts/truetype/tlwg/Loma-Bold.ttf",
    "/usr/share/fonts/truetype/tlwg/Kinnari-Bold.ttf",
    "/usr/share/fonts/truetype/tlwg/Waree-Bold.ttf",
    "/usr/share/fonts/truetype/tlwg/Norasi-Bold.ttf",
    "/usr/share/fonts/truetype/tlwg/Garuda.ttf",
    "/usr/share/fonts/truetype/tlwg/Loma.ttf",
)
LATIN_FONTS = ("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",)
VERSION = "lprserver-simulator/1"
POOL_SIZE = 20  # distinct pre-rendered plates per run: rendering is the simulator's main CPU cost
NOISE_SIGMA = 5  # sensor-like grain; without it JPEGs are unrealistically small


def random_plate(rng: random.Random) -> tuple[str, str | None]:
    """Return a plausible plate and its province: mostly Thai, sometimes Latin without a province."""
    if rng.random() < 0.15:
        return _latin_plate(rng), None
    return _thai_plate(rng), rng.choice(PROVINCES)


# How real cameras send a plate's province (docs/thai-plates.md): each simulated camera keeps one way.
PROVINCE_STYLES = ("field", "text", "text_newline", "field_english", "field_code", "text_short")


def as_cameras_send(plate: str, province: str | None, camera_id: str) -> tuple[str, str | None]:
    """(plate text, province field) for a camera, the province written the way that camera writes it."""
    named = find_province(province)
    if named is None:
        return plate, province
    style = PROVINCE_STYLES[zlib.crc32(camera_id.encode()) % len(PROVINCE_STYLES)]
    if style == "text":
        return f"{plate} {named.name_th}", None
    if style == "text_newline":
        return f"{plate}\n{named.name_th}", None
    if style == "field_english":
        return plate, named.name_en.upper()
    if style == "field_code":
        return plate, named.code
    if style == "text_short" and named.code == "TH-10":
        return f"{plate} กทม", None
    return plate, named.name_th


def _thai_plate(rng: random.Random) -> str:
    letters = "".join(rng.choices(THAI_CONSONANTS, k=2))
    digits = str(rng.randint(1, 9999))
    if rng.random() < 0.3:
        return f"{rng.randint(1, 9)}{letters}{digits}"
    return f"{letters}{digits}"


def _latin_plate(rng: random.Random) -> str:
    letters = "".join(rng.choices(string.ascii_uppercase, k=rng.choice((2, 3))))
    return f"{letters}{rng.randint(100, 9999)}"


@lru_cache(maxsize=16)
def plate_font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Return a font with Thai glyphs at a pixel size; without one (and a warning, once) a Latin font or
    Pillow's default, in which Thai letters show as boxes."""
    for path in THAI_FONTS + LATIN_FONTS:
        try:
            font = ImageFont.truetype(path, size)
        except OSError:
            continue
        if path not in THAI_FONTS:
            _warn_no_thai_font()
        return font
    _warn_no_thai_font()
    return ImageFont.load_default(size)


@lru_cache(maxsize=1)
def _warn_no_thai_font() -> None:
    log.warning("event=no_thai_font message=%r", "no Thai font found: Thai letters on the simulated plates "
                "show as boxes (apt-get install fonts-thai-tlwg)")


def plate_box(size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Return where plate_image draws the plate: (left, top, right, bottom)."""
    width, height = size
    plate_w = int(width * 0.6)
    plate_h = int(plate_w * 0.45)
    left, top = (width - plate_w) // 2, int(height * 0.55) - plate_h // 2
    return left, top, left + plate_w, top + plate_h


def plate_image(plate: str, province: str | None = None, size: tuple[int, int] = (640, 480),
                quality: int = 85, *, target_bytes: int | None = None) -> bytes:
    """Return a JPEG of a car-park scene with the plate (and its province) on a white plate."""
    img = _road_background(size)
    _draw_plate(ImageDraw.Draw(img), plate_box(size), plate, province)
    noise = Image.effect_noise(size, NOISE_SIGMA)  # grey noise centred on 128
    img = ImageChops.add(img, Image.merge("RGB", (noise, noise, noise)), offset=-128)
    if target_bytes is None:
        return _jpeg(img, quality)
    return _jpeg_near(img, target_bytes)


def _road_background(size: tuple[int, int]) -> Image.Image:
    # Asphalt grey darkening towards the bottom, with a lighter bumper band behind the plate.
    width, height = size
    gradient = Image.linear_gradient("L").resize(size).point(lambda v: 150 - v * 60 // 255)
    img = Image.merge("RGB", (gradient, gradient, gradient.point(lambda v: v + 8)))
    left, top, right, bottom = plate_box(size)
    draw = ImageDraw.Draw(img)
    draw.rounded_rectangle((width // 8, top - height // 8, width - width // 8, bottom + height // 10),
                           radius=height // 12, fill=(62, 66, 74))
    return img


def _draw_plate(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], plate: str,
                province: str | None) -> None:
    left, top, right, bottom = box
    plate_h = bottom - top
    border = max(2, plate_h // 30)
    draw.rounded_rectangle(box, radius=plate_h // 10, fill=(245, 245, 240), outline=(25, 25, 30),
                           width=border)
    text_bottom = top + plate_h * (0.66 if province else 0.92)
    _draw_fitted(draw, _spaced(plate), (left, top + border * 2, right, text_bottom), int(plate_h * 0.55))
    if province:
        _draw_fitted(draw, province, (left, text_bottom, right, bottom - border * 2), int(plate_h * 0.22))


def _spaced(plate: str) -> str:
    # Plates are embossed with a gap between the letters and the number: กข 1234, 1กข 234.
    return re.sub(r"(?<=[^\d\s])(?=\d)", " ", plate, count=1)


def _draw_fitted(draw: ImageDraw.ImageDraw, text: str, box: tuple[float, float, float, float],
                 size: int) -> None:
    # Shrink the font until the text fits the box with a margin, then centre it.
    left, top, right, bottom = box
    max_w = (right - left) * 0.88
    while size > 8 and draw.textlength(text, font=plate_font(size)) > max_w:
        size -= 2
    centre = ((left + right) / 2, (top + bottom) / 2)
    draw.text(centre, text, font=plate_font(size), fill=(20, 20, 25), anchor="mm")


def _jpeg(img: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality)
    return out.getvalue()


def _jpeg_near(img: Image.Image, target_bytes: int) -> bytes:
    # The best quality that stays under the target, then comment padding up to it.
    low, high, best = 20, 95, _jpeg(img, 20)
    while low <= high:
        middle = (low + high) // 2
        data = _jpeg(img, middle)
        if len(data) <= target_bytes:
            best, low = data, middle + 1
        else:
            high = middle - 1
    return _pad_jpeg(best, target_bytes - len(best))


def _pad_jpeg(data: bytes, missing: int) -> bytes:
    # COM segments right after SOI: every decoder skips them; each holds at most 65533 bytes.
    segments = []
    while missing >= 4:
        body = min(missing - 4, 65533)
        segments.append(b"\xff\xfe" + (body + 2).to_bytes(2, "big") + b" " * body)
        missing -= body + 4
    return data[:2] + b"".join(segments) + data[2:]


@dataclass
class SimulationTally:
    """What the simulated cameras sent and what the daemon answered, shared by all cameras."""

    sent: int = 0
    acknowledged: int = 0
    duplicates: int = 0
    resends: int = 0
    errors: Counter = field(default_factory=Counter)
    acknowledged_events: list[tuple[str, str, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count_sent(self) -> None:
        """Count a read sent for the first time."""
        with self.lock:
            self.sent += 1

    def count_resend(self) -> None:
        """Count a read sent again after an attempt that got no answer or found the daemon down."""
        with self.lock:
            self.resends += 1

    def count_answer(self, payload: dict, answer: dict) -> None:
        """Count the final answer to a read: an acknowledgement or an error code."""
        with self.lock:
            if answer.get("status") != "success":
                self.errors[str(answer.get("code"))] += 1
                return
            self.acknowledged += 1
            self.duplicates += bool(answer.get("duplicate"))
            self.acknowledged_events.append((payload["camera_id"], payload["event_id"], answer["record_id"]))

    def count_error(self, code: str) -> None:
        """Count an error that ended a camera rather than a read (a refused registration)."""
        with self.lock:
            self.errors[code] += 1

    def summary(self, cameras: int, elapsed: float) -> str:
        """Return a one-paragraph report of the run."""
        errors = ", ".join(f"{code} {n}" for code, n in sorted(self.errors.items())) or "none"
        rate = self.acknowledged / elapsed if elapsed > 0 else 0.0
        return (
            f"Simulated {cameras} camera{'s' if cameras != 1 else ''} for {elapsed:.1f} s: "
            f"{self.sent} reads sent, {self.acknowledged} acknowledged ({self.duplicates} as duplicates), "
            f"{self.resends} resends, errors: {errors}; {rate:.1f} acknowledged reads/s."
        )


class CameraRefused(Exception):
    """The daemon refused the camera's registration with a final error code."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def retryable(answer: dict | None) -> bool:
    """Tell whether an answer (None: no answer at all) means the read must be sent again."""
    return answer is None or (answer.get("status") == "error" and answer.get("code") == "unavailable")


class SimulatedCamera:
    """One edge camera: a Socket.IO client that registers, sends reads and resends until acknowledged."""

    def __init__(self, url: str, camera_id: str, token: str | None, tally: SimulationTally,
                 stop: threading.Event, *, location: str = LOCATIONS[0], timeout: float = 10.0,
                 max_backoff: float = 5.0):
        self.url = url
        self.camera_id = camera_id
        self.token = token
        self.tally = tally
        self.stop = stop
        self.location = location
        self.timeout = timeout
        self.max_backoff = max_backoff
        self.sio: socketio.Client | None = None
        self.outage = False

    def connect(self) -> bool:
        """Open a fresh connection and register; False if the daemon cannot be reached or is busy."""
        self.close()
        self.sio = socketio.Client(reconnection=False)
        try:
            self.sio.connect(self.url, auth={"token": self.token} if self.token else None,
                             wait_timeout=self.timeout)
        except socketio.exceptions.ConnectionError as exc:
            self._note_outage(exc)
            return False
        answer = self._ask("camera_register", {
            "camera_id": self.camera_id, "name": f"Simulated {self.camera_id}",
            "location": self.location, "version": VERSION,
        })
        if retryable(answer):
            self._note_outage("registration not acknowledged")
            return False
        if answer.get("status") != "success":
            raise CameraRefused(str(answer.get("code")))
        if self.outage:
            log.info("%s: connected again", self.camera_id)
            self.outage = False
        return True

    def _note_outage(self, reason) -> None:
        # Once per outage: a camera retries every few seconds and would flood the terminal.
        if not self.outage:
            log.warning("%s: cannot reach %s (%s); retrying until it answers",
                        self.camera_id, self.url, reason)
        self.outage = True

    def connect_patiently(self) -> bool:
        """Connect and register, retrying with backoff; False if the simulation stops first."""
        for attempt in itertools.count():
            if self.connect():
                return True
            if self.stop.wait(self._backoff(attempt)):
                return False
        return False  # unreachable: itertools.count() never ends

    def close(self) -> None:
        """Drop the connection, if any."""
        if self.sio is None:
            return
        sio, self.sio = self.sio, None
        sio.disconnect()
        # python-engineio does not close its WebSocket when the server vanishes
        # (it only resets its state), so the socket would leak until garbage collection.
        websocket = getattr(sio.eio, "ws", None)
        if websocket is not None:
            websocket.shutdown()

    def read_payload(self, plate: str, province: str | None, jpeg: bytes, rng: random.Random) -> dict:
        """Return an lpr_data payload for one capture, with its own event_id."""
        plate, province = as_cameras_send(plate, province, self.camera_id)
        return {
            "camera_id": self.camera_id,
            "event_id": f"{self.camera_id}-{uuid.uuid4().hex}",
            "plate_number": plate,
            "province": province,
            "confidence": round(rng.uniform(55, 80) if rng.random() < UNSURE_SHARE else
                                rng.uniform(80, 99.9), 1),
            "direction": DIRECTIONS.get(self.location),
            "image_data": "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii"),
            "location": self.location,
            "timestamp": datetime.now(UTC).isoformat(),
        }

    def deliver(self, payload: dict) -> dict | None:
        """Send a read until it gets a final answer; None if the simulation stops first."""
        self.tally.count_sent()
        for attempt in itertools.count():
            answer = None
            if (self.sio is not None and self.sio.connected) or self.connect():
                if attempt:  # a resend: an earlier attempt got no answer or could not connect
                    self.tally.count_resend()
                answer = self._ask("lpr_data", payload)
            if not retryable(answer):
                self.tally.count_answer(payload, answer)
                return answer
            if self.stop.wait(self._backoff(attempt)):
                return None
        return None  # unreachable: itertools.count() never ends

    def _backoff(self, attempt: int) -> float:
        return min(self.max_backoff, 0.2 * 2 ** min(attempt, 10)) * random.uniform(0.5, 1.0)

    def _ask(self, event: str, payload: dict) -> dict | None:
        # Like sio.call(), but gives up as soon as the connection drops instead of
        # waiting out the timeout (python-socketio's call() waits the full timeout).
        answered = threading.Event()
        answers: list = []

        def on_answer(*args):
            answers.extend(args)
            answered.set()

        sio = self.sio
        try:
            sio.emit(event, payload, callback=on_answer)
        except socketio.exceptions.SocketIOError:
            return None
        deadline = time.monotonic() + self.timeout
        while not answered.wait(0.05):
            if not sio.connected or time.monotonic() > deadline or self.stop.is_set():
                return None
        return answers[0] if answers and isinstance(answers[0], dict) else {"status": "error",
                                                                           "code": "bad_answer"}


class PlateSource:
    """Hands out (plate, province, jpeg) captures: a pre-rendered random pool, or the given plates in turn."""

    def __init__(self, plates: list[str] | None, rng: random.Random, image_bytes: int | None = None):
        self.image_bytes = image_bytes
        self.lock = threading.Lock()
        if plates:
            self.images: dict[str, bytes] = {}
            self.turns = itertools.cycle([(plate.strip(), None) for plate in plates if plate.strip()])
            self.pool = None
        else:
            self.pool = [self._render(*random_plate(rng)) for _ in range(POOL_SIZE)]

    def next(self, rng: random.Random) -> tuple[str, str | None, bytes]:
        """Return the next capture to send."""
        if self.pool is not None:
            return rng.choice(self.pool)
        with self.lock:
            plate, province = next(self.turns)
            if plate not in self.images:
                self.images[plate] = self._render(plate, province)[2]
            return plate, province, self.images[plate]

    def _render(self, plate: str, province: str | None) -> tuple[str, str | None, bytes]:
        return plate, province, plate_image(plate, province, target_bytes=self.image_bytes)


def camera_tokens(tokens: list[str] | None, cameras: int) -> list[str | None]:
    """Match tokens to cameras by position; a single token serves every camera."""
    tokens = list(tokens or [])
    if len(tokens) == 1:
        return tokens * cameras
    if len(tokens) > cameras:
        log.warning("%d tokens given for %d cameras; the extra tokens are not used", len(tokens), cameras)
    return (tokens + [None] * cameras)[:cameras]


def run_camera(camera: SimulatedCamera, source: PlateSource, rate: float, count: int,
               rng: random.Random) -> None:
    """Send `count` reads (0: until stopped) at `rate` reads per second, then disconnect."""
    start = time.monotonic() + rng.uniform(0, 1 / rate)  # cameras do not all fire at once
    try:
        if not camera.connect_patiently():
            return
        for n in itertools.count() if count == 0 else range(count):
            if camera.stop.wait(max(0.0, start + n / rate - time.monotonic())):
                return
            plate, province, jpeg = source.next(rng)
            if camera.deliver(camera.read_payload(plate, province, jpeg, rng)) is None:
                return
    except CameraRefused as exc:
        log.error("%s: the daemon refused the camera (%s); it stops", camera.camera_id, exc.code)
        camera.tally.count_error(exc.code)
    finally:
        camera.close()


def run_simulation(url: str, cameras: int, rate: float, count: int, tokens: list[str] | None,
                   prefix: str, plates: list[str] | None, *, timeout: float = 10.0,
                   image_bytes: int | None = None, tally: SimulationTally | None = None,
                   stop: threading.Event | None = None, seed: int | None = None) -> str:
    """Run simulated cameras until they have sent `count` reads each (or Ctrl-C) and summarise."""
    rng = random.Random(seed)
    tally = tally if tally is not None else SimulationTally()
    stop = stop or threading.Event()
    source = PlateSource(plates, rng, image_bytes)
    threads = []
    for number, token in enumerate(camera_tokens(tokens, cameras), start=1):
        camera = SimulatedCamera(url, f"{prefix}{number:03d}", token, tally, stop, timeout=timeout,
                                 location=LOCATIONS[(number - 1) % len(LOCATIONS)])
        threads.append(threading.Thread(target=run_camera, name=camera.camera_id, daemon=True,
                                        args=(camera, source, rate, count, random.Random(rng.random()))))
    started = time.monotonic()
    run_until_done(threads, stop, timeout + 1)
    return tally.summary(cameras, time.monotonic() - started)


def run_until_done(threads: list[threading.Thread], stop: threading.Event, grace: float) -> None:
    """Start the camera threads and wait for them; Ctrl-C stops them and waits `grace` seconds each."""
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.5)  # short joins, so Ctrl-C reaches this thread
    except KeyboardInterrupt:
        stop.set()
        for thread in threads:
            thread.join(grace)
