"""Payload schemas for the ingest events, and their translation into IngestError."""

import json
import math
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictStr,
    ValidationError,
    field_validator,
)

from ..cameras import CAMERA_ID_PATTERN, CAMERA_ID_RULE
from ..times import in_years
from .errors import IngestError

MAX_EXTRA_FIELDS = 64
MAX_EXTRA_TEXT = 1024
MAX_SYSTEM_INFO = 16 * 1024
MAX_DEPTH = 16  # objects and arrays within a payload (system_info)
WIDEST_INTEGER = 2**63  # integers fit in 64 bits (README "Sending reads")


def _not_bool(value: Any) -> Any:
    # pydantic would read true/false as 1.0/0.0; a camera that sends a boolean
    # where a number belongs has a bug worth reporting.
    if isinstance(value, bool):
        raise ValueError("a number is required, not a boolean")
    return value


Number = Annotated[float, BeforeValidator(_not_bool)]
Text64 = Annotated[StrictStr, Field(max_length=64)]
Text255 = Annotated[StrictStr, Field(max_length=255)]


Timestamp = Annotated[datetime, AfterValidator(in_years)]


class _Payload(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False, str_strip_whitespace=True)

    camera_id: StrictStr = Field(pattern=CAMERA_ID_PATTERN)
    token: StrictStr | None = Field(default=None, max_length=256)


class RegisterIn(_Payload):
    name: Annotated[StrictStr, Field(max_length=128)] | None = None
    location: Text255 | None = None
    latitude: Annotated[Number, Field(ge=-90, le=90)] | None = None
    longitude: Annotated[Number, Field(ge=-180, le=180)] | None = None
    hostname: Text255 | None = None
    version: Text64 | None = None


class ReadIn(_Payload):
    """A plate read (`lpr_data`, README "Sending reads"); other scalar fields are kept as metadata."""

    model_config = ConfigDict(extra="allow")

    plate_number: Annotated[StrictStr, Field(max_length=64, description="as the camera read it")]
    event_id: Annotated[StrictStr, Field(min_length=1, max_length=128, description=(
        "the camera's own id for this read: a repeat is answered with the first record"))] | None = None
    confidence: Annotated[Number, Field(description="a fraction in [0, 1] or a percentage in (1, 100]")] \
        | None = None
    image_data: Annotated[StrictStr, Field(description="JPEG or PNG, bare base64 or a data URI")] \
        | None = None
    timestamp: Annotated[Timestamp, Field(description=(
        "capture time, ISO 8601; without an offset in the server's TIMEZONE; years 1970-2100"))] | None = None
    location: Text255 | None = None
    province: Text64 | None = None
    vehicle_type: Text64 | None = None
    vehicle_color: Text64 | None = None
    direction: Annotated[StrictStr, Field(max_length=32)] | None = None
    latitude: Annotated[Number, Field(ge=-90, le=90)] | None = None
    longitude: Annotated[Number, Field(ge=-180, le=180)] | None = None
    hostname: Text255 | None = None

    def metadata(self) -> dict[str, Any] | None:
        """Return the extra scalar fields the camera sent, refusing anything else."""
        extra = self.model_extra or {}
        if len(extra) > MAX_EXTRA_FIELDS:
            raise IngestError("invalid_payload", f"more than {MAX_EXTRA_FIELDS} extra fields")
        for key, value in extra.items():
            if len(key) > 64:
                raise IngestError("invalid_payload", "extra field names are limited to 64 characters")
            if value is not None and not isinstance(value, str | int | float | bool):
                raise IngestError("invalid_payload", f"{key} must be a scalar value", key)
            if isinstance(value, str) and len(value) > MAX_EXTRA_TEXT:
                raise IngestError("invalid_payload", f"{key} is longer than {MAX_EXTRA_TEXT}", key)
        return dict(extra) or None


class HealthIn(_Payload):
    component: Text64 | None = None
    status: Literal["PASS", "WARN", "FAIL"]
    message: Annotated[StrictStr, Field(max_length=2000)] | None = None
    system_info: dict[str, Any] | None = None
    timestamp: Timestamp | None = None
    hostname: Text255 | None = None

    @field_validator("system_info")
    @classmethod
    def _small_system_info(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and len(json.dumps(value, default=str)) > MAX_SYSTEM_INFO:
            raise ValueError(f"system_info is larger than {MAX_SYSTEM_INFO} bytes as JSON")
        return value


def parse(schema: type[BaseModel], payload: Any) -> Any:
    """Validate a payload against a schema, or raise the IngestError that names the field."""
    if not isinstance(payload, dict):
        kind = "nothing" if payload is None else type(payload).__name__
        raise IngestError("invalid_payload", f"expected a JSON object, got {kind}")
    check_values(payload)
    try:
        return schema.model_validate(payload)
    except ValidationError as exc:
        raise _ingest_error(exc) from None


def check_values(payload: dict[str, Any]) -> None:
    """Refuse what no database column or JSON answer can carry, naming the field: text with a NUL
    character or a lone surrogate, NaN and infinities, integers beyond 64 bits, nesting deeper than
    MAX_DEPTH. Read, in a loop, before any other check, so a later step never meets such a value."""
    for key in payload:
        _check_text(key, None, "a field name")
    pending: list[tuple[Any, str, int]] = [(value, key, 1) for key, value in payload.items()]
    while pending:
        value, field, depth = pending.pop()
        if isinstance(value, str):
            _check_text(value, field)
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int):
            if not -WIDEST_INTEGER <= value < WIDEST_INTEGER:
                raise IngestError("invalid_payload", f"{field}: integers must fit in 64 bits", field)
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise IngestError("invalid_payload", f"{field}: numbers must be finite (not NaN or Infinity)",
                                  field)
        elif isinstance(value, dict | list):
            if depth >= MAX_DEPTH:
                raise IngestError("invalid_payload", f"{field}: nested more than {MAX_DEPTH} levels deep",
                                  field)
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str):
                    _check_text(key, field, f"{field}: a field name")
                pending.append((item, f"{field}.{key}", depth + 1))


def _check_text(text: str, field: str | None, what: str | None = None) -> None:
    """Refuse text with a NUL or a lone surrogate; the answer names the field, never the text."""
    what = what or f"{field}: text"
    if "\x00" in text:
        raise IngestError("invalid_payload", f"{what} must not hold a NUL character", field)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise IngestError("invalid_payload", f"{what} holds a lone surrogate (not UTF-8)",
                              field) from None


def _ingest_error(exc: ValidationError) -> IngestError:
    error = exc.errors(include_url=False, include_input=False)[0]
    field = ".".join(str(part) for part in error["loc"]) or None
    if field == "camera_id" and error["type"] == "string_pattern_mismatch":
        return IngestError(
            "invalid_camera_id",
            f"camera_id must be {CAMERA_ID_RULE}",
            field,
        )
    if error["type"] == "missing":
        return IngestError("invalid_payload", f"{field} is required", field)
    return IngestError("invalid_payload", f"{field}: {error['msg']}", field)


def confidence_percent(value: float | None) -> float | None:
    """Return a confidence as 0-100: [0, 1] is a fraction, (1, 100] a percentage."""
    if value is None:
        return None
    if 0 <= value <= 1:
        return round(value * 100, 3)
    if 1 < value <= 100:
        return value
    raise IngestError(
        "invalid_payload", "confidence must be a fraction in [0, 1] or a percentage in (1, 100]", "confidence"
    )
