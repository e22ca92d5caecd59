"""Payload schemas for the ingest events, and their translation into IngestError."""

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictStr,
    ValidationError,
    field_validator,
)

from .errors import IngestError

CAMERA_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
MAX_EXTRA_FIELDS = 64
MAX_EXTRA_TEXT = 1024
MAX_SYSTEM_INFO = 16 * 1024


def _not_bool(value: Any) -> Any:
    # pydantic would read true/false as 1.0/0.0; a camera that sends a boolean
    # where a number belongs has a bug worth reporting.
    if isinstance(value, bool):
        raise ValueError("a number is required, not a boolean")
    return value


Number = Annotated[float, BeforeValidator(_not_bool)]
Text64 = Annotated[StrictStr, Field(max_length=64)]
Text255 = Annotated[StrictStr, Field(max_length=255)]


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
    model_config = ConfigDict(extra="allow")

    plate_number: Annotated[StrictStr, Field(max_length=64)]
    event_id: Annotated[StrictStr, Field(min_length=1, max_length=128)] | None = None
    confidence: Number | None = None
    image_data: StrictStr | None = None
    timestamp: datetime | None = None
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
    timestamp: datetime | None = None
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
    try:
        return schema.model_validate(payload)
    except ValidationError as exc:
        raise _ingest_error(exc) from None


def _ingest_error(exc: ValidationError) -> IngestError:
    error = exc.errors(include_url=False, include_input=False)[0]
    field = ".".join(str(part) for part in error["loc"]) or None
    if field == "camera_id" and error["type"] == "string_pattern_mismatch":
        return IngestError(
            "invalid_camera_id",
            "camera_id must be 1-64 of A-Z a-z 0-9 _ . - starting with a letter or digit",
            field,
        )
    if error["type"] == "missing":
        return IngestError("invalid_payload", f"{field} is required", field)
    return IngestError("invalid_payload", f"{field}: {error['msg']}", field)


def to_utc(moment: datetime | None, timezone: str, default: datetime) -> datetime:
    """Return a capture time in UTC, reading a time without offset in the site's time zone."""
    if moment is None:
        return default
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(timezone))
    return moment.astimezone(UTC)


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
