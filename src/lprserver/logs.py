"""One log line per event, key=value, to stderr (the journal under systemd), with secrets scrubbed."""

import logging
import re
import sys
import time

# What must never reach a log: image bytes, tokens, passwords (README "Logs").
_SCRUB = [
    (re.compile(r"data:image/[A-Za-z0-9.+-]+;base64,[A-Za-z0-9+/=\s]*"), "<image data>"),
    (re.compile(r"[A-Za-z0-9+/]{200,}={0,2}"), "<base64 data>"),
    (re.compile(r"\b(cam|lpr)_[A-Za-z0-9_-]{20,}"), r"\1_<redacted>"),
    (re.compile(r"(?i)\b(password|passwd|secret_key|token|authorization)(\"?\s*[=:]\s*\"?)(bearer\s+)?[^\s\"',&}]+"),
     r"\1\2<redacted>"),
    (re.compile(r"(postgres(?:ql)?(?:\+\w+)?://[^:/@\s]+:)[^@\s]+@"), r"\1<redacted>@"),
]
_PLAIN_KEY = re.compile(r"[a-z_]+=")


def scrub(text: str) -> str:
    """Return `text` without image data, tokens, passwords or database passwords."""
    for pattern, replacement in _SCRUB:
        text = pattern.sub(replacement, text)
    return text


def _quote(value: str) -> str:
    if value and not any(c in value for c in ' "=\n\t'):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class KeyValueFormatter(logging.Formatter):
    """`ts=... level=INFO logger=lprserver.ingest event=read_stored camera_id=CAM001 ...`."""

    converter = staticmethod(time.gmtime)

    def format(self, record: logging.LogRecord) -> str:
        message = scrub(record.getMessage())
        if not _PLAIN_KEY.match(message):
            message = f"event=message msg={_quote(message)}"
        line = (f"ts={self.formatTime(record, '%Y-%m-%dT%H:%M:%S')}.{int(record.msecs):03d}Z "
                f"level={record.levelname} logger={record.name} {message}")
        if record.exc_info:
            line += f" exc={_quote(scrub(self.formatException(record.exc_info)))}"
        return line




def configure_logging(level: str) -> None:
    """Send every log line to stderr as key=value (once per process)."""
    root = logging.getLogger()
    root.setLevel(level)
    if any(getattr(h, "lprserver", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    handler.lprserver = True
    root.addHandler(handler)
