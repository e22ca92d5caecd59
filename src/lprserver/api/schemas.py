"""Request and answer schemas (marshmallow): they validate input and write the OpenAPI document."""

import marshmallow as ma
from marshmallow import validate

from ..ingest.validation import ReadIn
from ..models import BLACKLIST_CATEGORIES, MATCH_MODES, REVIEW_STATES, WEBHOOK_EVENTS
from ..plates import PLATE_FORMATS, PROVINCE_CODES, province_by_code
from ..records import PLATE_MODES, province_error
from ..times import in_years

Str = ma.fields.String
NStr = ma.fields.String(allow_none=True)
NFloat = ma.fields.Float(allow_none=True)
NDateTime = ma.fields.DateTime(allow_none=True)
DateTimeStr = ma.fields.String(metadata={"format": "date-time"})


def _in_years(moment) -> None:
    try:
        in_years(moment)
    except ValueError as exc:
        raise ma.ValidationError(str(exc)) from None


class PageArgs(ma.Schema):
    page = ma.fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = ma.fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


TOTAL_KINDS = ("exact", "at_least", "estimate")


class PageInfo(ma.Schema):
    page = ma.fields.Integer(required=True)
    per_page = ma.fields.Integer(required=True)
    total = ma.fields.Integer(required=True)


# Records -------------------------------------------------------------------

def _known_province(code: str) -> None:
    if code.strip() and province_by_code(code) is None:  # empty: no filter, as on the page
        raise ma.ValidationError(province_error(code))


class RecordFilterArgs(ma.Schema):
    plate = Str(validate=validate.Length(max=64), metadata={
        "description": "normalised before matching; with `exact` and `similar` a province in the text "
                       "(`กข 1234 กรุงเทพมหานคร`) is dropped, as records keep their plates without it"})
    plate_match = Str(load_default="contains", validate=validate.OneOf(PLATE_MODES), metadata={
        "description": "`contains`, `prefix`, `exact`, or `similar`: look-alikes (ข/ช, บ/ป, 0/O …), or "
                       "one character inserted, deleted or substituted for plates of 5 or more characters"})
    province_code = Str(validate=_known_province, metadata={
        "description": "only reads of this province, by its ISO 3166-2:TH code (`TH-10`, any case); "
                       "an unknown code is refused (400); a read whose province is unknown has none",
        "enum": list(PROVINCE_CODES), "example": "TH-10"})
    camera_id = Str(validate=validate.Length(max=64))
    time_from = ma.fields.DateTime(data_key="from", validate=_in_years, metadata={
        "description": "when the server received the read (as the records page filters), inclusive; "
                       "without an offset it is read in the server's TIMEZONE"})
    time_to = ma.fields.DateTime(data_key="to", validate=_in_years, metadata={
        "description": "when the server received the read, exclusive"})
    min_confidence = ma.fields.Float(validate=validate.Range(min=0, max=100))
    blacklisted = ma.fields.Boolean()


class RecordListArgs(RecordFilterArgs, PageArgs):
    since_id = ma.fields.Integer(validate=validate.Range(min=0, max=2**62), metadata={
        "description": "only records with a larger id, oldest first: poll with the last id you saw"})
    before_id = ma.fields.Integer(validate=validate.Range(min=0, max=2**62), metadata={
        "description": "only records with a smaller id, newest first: pass the `next_before_id` of the "
                       "page before to get the next page (as fast at any depth, unlike `page`)"})

    @ma.validates_schema
    def _one_way_of_paging(self, data, **kwargs):
        if "before_id" in data and (data.get("page", 1) != 1 or "since_id" in data):
            raise ma.ValidationError("before_id cannot be combined with page or since_id", "before_id")


class KnownShown(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = NStr
    group = Str(required=True)


class RecordSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    camera_id = Str(required=True)
    event_id = NStr
    plate_number = Str(required=True)
    plate_normalized = Str(required=True, metadata={"description": "without the province: 1กข1234"})
    province = ma.fields.String(allow_none=True, metadata={
        "description": "the canonical Thai name, or as sent when not recognised"})
    province_code = ma.fields.String(allow_none=True, metadata={
        "description": "ISO 3166-2:TH (TH-10), null when unknown"})
    plate_format = Str(required=True, validate=validate.OneOf(PLATE_FORMATS))
    confidence = NFloat
    captured_at = DateTimeStr
    received_at = DateTimeStr
    location = NStr
    latitude = NFloat
    longitude = NFloat
    vehicle_type = NStr
    vehicle_color = NStr
    direction = NStr
    camera_name = NStr
    blacklisted = ma.fields.Boolean(required=True)
    image_sha256 = NStr
    image_url = NStr
    thumbnail_url = NStr
    metadata = ma.fields.Dict()
    known = ma.fields.Nested(KnownShown, allow_none=True, metadata={
        "description": "the current known plate this read is (SPEC §10), null when none"})
    plate_corrected = ma.fields.String(allow_none=True, metadata={
        "description": "the plate as an operator corrected it (plate_number stays as sent); "
                       "plate_normalized and province follow it"})
    corrected_by = NStr
    corrected_at = ma.fields.String(allow_none=True, metadata={"format": "date-time"})
    review_state = ma.fields.String(allow_none=True, validate=validate.OneOf(REVIEW_STATES), metadata={
        "description": "`pending` while the read waits on /review (confidence under REVIEW_CONFIDENCE, "
                       "or a look-alike or fuzzy hit), then `confirmed` or `corrected`; null when it "
                       "never needed review"})


class RecordPage(PageInfo):
    records = ma.fields.List(ma.fields.Nested(RecordSchema), required=True)
    total_kind = Str(required=True, validate=validate.OneOf(TOTAL_KINDS), metadata={
        "description": "`exact`; `at_least` when counting stopped at 10,000 (there are more); "
                       "`estimate` for an unfiltered list of a large table (PostgreSQL's row estimate)"})
    next_before_id = ma.fields.Integer(allow_none=True, metadata={
        "description": "pass as `before_id` for the next (older) page; null when this page is "
                       "shorter than `per_page` (the last one) and when polling with `since_id`"})


class IngestAnswer(ma.Schema):
    status = Str(required=True)
    record_id = ma.fields.Integer()
    duplicate = ma.fields.Boolean()
    blacklisted = ma.fields.Boolean()


def openapi_schema(model) -> dict:
    """The JSON schema pydantic makes of an ingest model, in OpenAPI 3.0's dialect (`nullable`, not a
    null type): the API documents the very validator the pipeline runs, so the two cannot drift."""
    schema = model.model_json_schema()
    properties = {}
    for name, prop in schema["properties"].items():
        kinds = [kind for kind in prop.get("anyOf", []) if kind.get("type") != "null"]
        if len(kinds) == 1:
            prop = {**{k: v for k, v in prop.items() if k != "anyOf"}, **kinds[0], "nullable": True}
        renamed = {"ge": "minimum", "le": "maximum"}  # constraints pydantic left under their own names
        properties[name] = {renamed.get(k, k): v for k, v in prop.items() if k != "title"}
    return {"type": "object", "required": schema.get("required", []), "properties": properties,
            "additionalProperties": {"description": "any other scalar metadata, kept with the read"},
            "description": (model.__doc__ or "").strip()}


RecordIn = openapi_schema(ReadIn)


# Blacklist -----------------------------------------------------------------

def _plate_ok(text: str) -> None:
    from ..plates import is_valid_normalized, normalize_plate

    if not is_valid_normalized(normalize_plate(text)):
        raise ma.ValidationError("the plate is empty or over 32 characters once normalised")


MATCH_DESCRIPTION = (
    "how the entry matches reads: `exact` (default: equal normalised plates), `lookalike` (equal once "
    "characters OCR confuses are taken as one: ข/ช, บ/ป, 0/O …), `fuzzy` (look-alike, or one character "
    "inserted, deleted or substituted when both plates have 5 or more characters), `pattern` "
    "(`*` any run, `?` one character, over the whole normalised plate: `กข12*`; at least two characters "
    "that are not wildcards, at most 32)")
PLATE_TEXT_DESCRIPTION = ("the plate as typed; a province it names (`กข 1234 กรุงเทพมหานคร`) sets "
                          "`province_code` unless one is given")
ENTRY_PROVINCE_DESCRIPTION = (
    "ISO 3166-2:TH code (`TH-10`, any case): a read whose province is known and different does not "
    "match; a read without a province does. Null or absent: the province the plate text names, if any; "
    "an unknown code is refused (400)")


class BlacklistIn(ma.Schema):
    license_plate_text = Str(required=True, validate=[validate.Length(max=64), _plate_ok],
                             metadata={"description": PLATE_TEXT_DESCRIPTION})
    match = Str(load_default="exact", validate=validate.OneOf(MATCH_MODES),
                metadata={"description": MATCH_DESCRIPTION})
    province_code = Str(allow_none=True, validate=_known_province,
                        metadata={"description": ENTRY_PROVINCE_DESCRIPTION, "enum": list(PROVINCE_CODES)})
    reason = Str(allow_none=True, validate=validate.Length(max=2000))
    added_by = Str(allow_none=True, validate=validate.Length(max=128))
    category = Str(load_default="other", validate=validate.OneOf(BLACKLIST_CATEGORIES))
    expires_at = ma.fields.AwareDateTime(allow_none=True, validate=_in_years)


class BlacklistPatch(ma.Schema):
    license_plate_text = Str(validate=[validate.Length(max=64), _plate_ok],
                             metadata={"description": PLATE_TEXT_DESCRIPTION})
    match = Str(validate=validate.OneOf(MATCH_MODES), metadata={"description": MATCH_DESCRIPTION})
    province_code = Str(allow_none=True, validate=_known_province, metadata={
        "description": "as for POST; absent keeps a code given on its own, and a new plate text that names "
                       "a province sets it", "enum": list(PROVINCE_CODES)})
    reason = Str(allow_none=True, validate=validate.Length(max=2000))
    added_by = Str(allow_none=True, validate=validate.Length(max=128))
    category = Str(validate=validate.OneOf(BLACKLIST_CATEGORIES))
    expires_at = ma.fields.AwareDateTime(allow_none=True, validate=_in_years)
    active = ma.fields.Boolean()


class BlacklistListArgs(PageArgs):
    active = ma.fields.Boolean()
    category = Str(validate=validate.OneOf(BLACKLIST_CATEGORIES))
    match = Str(validate=validate.OneOf(MATCH_MODES))
    plate = Str(validate=validate.Length(max=64), metadata={"description": "contains, normalised"})


class BlacklistEntrySchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    license_plate_text = Str(required=True)
    plate_normalized = Str(required=True, metadata={
        "description": "without the province; a pattern keeps its `*` and `?`"})
    match = Str(required=True, validate=validate.OneOf(MATCH_MODES))
    province_code = NStr
    reason = NStr
    category = Str(required=True)
    added_by = NStr
    created_at = ma.fields.DateTime(required=True)
    updated_at = ma.fields.DateTime(required=True)
    expires_at = NDateTime
    active = ma.fields.Boolean(required=True)


class BlacklistPage(PageInfo):
    entries = ma.fields.List(ma.fields.Nested(BlacklistEntrySchema), required=True)


class DetectionArgs(PageArgs):
    acknowledged = ma.fields.Boolean()
    entry_id = ma.fields.Integer(validate=validate.Range(min=1, max=2**31))


class DetectionSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    record_id = ma.fields.Integer(required=True)
    entry_id = ma.fields.Integer(required=True)
    match_type = Str(required=True)
    detected_at = ma.fields.DateTime(required=True)
    acknowledged_by = ma.fields.Integer(allow_none=True)
    acknowledged_at = NDateTime
    plate_number = Str()
    camera_id = Str()
    license_plate_text = Str()
    category = Str()
    reason = NStr


class DetectionPage(PageInfo):
    detections = ma.fields.List(ma.fields.Nested(DetectionSchema), required=True)


class BlacklistStatistics(ma.Schema):
    total_entries = ma.fields.Integer(required=True)
    active_entries = ma.fields.Integer(required=True)
    by_category = ma.fields.Dict(keys=Str(), values=ma.fields.Integer(), required=True)
    total_detections = ma.fields.Integer(required=True)
    detections_today = ma.fields.Integer(required=True)
    unacknowledged_detections = ma.fields.Integer(required=True)
    top_plates = ma.fields.List(ma.fields.Dict(), required=True)


# Cameras -------------------------------------------------------------------

class CameraSchema(ma.Schema):
    id = Str(required=True)
    name = NStr
    location = NStr
    latitude = NFloat
    longitude = NFloat
    hostname = NStr
    version = NStr
    online = ma.fields.Boolean(required=True)
    first_seen = NDateTime
    last_seen = NDateTime
    health_status = NStr
    health_message = NStr
    health_at = NDateTime
    reads_today = ma.fields.Integer()
    offline_alert_id = ma.fields.Integer(allow_none=True, metadata={
        "description": "the open `camera_offline` alert of a silent camera (SPEC §11), null when none"})


class CameraList(ma.Schema):
    cameras = ma.fields.List(ma.fields.Nested(CameraSchema), required=True)
    total = ma.fields.Integer(required=True)


# Statistics ----------------------------------------------------------------

class StatisticsArgs(ma.Schema):
    hours = ma.fields.Integer(load_default=24, validate=validate.Range(min=1, max=24 * 31))


class Statistics(ma.Schema):
    total_records = ma.fields.Integer(required=True)
    total_records_kind = Str(required=True, validate=validate.OneOf(("exact", "estimate")), metadata={
        "description": "`estimate` on PostgreSQL past 100,000 records (its row estimate), else `exact`"})
    records_today = ma.fields.Integer(required=True)
    blacklist_hits = ma.fields.Integer(required=True)
    blacklist_hits_today = ma.fields.Integer(required=True)
    cameras_total = ma.fields.Integer(required=True)
    cameras_online = ma.fields.Integer(required=True)
    per_camera = ma.fields.List(ma.fields.Dict(), required=True)
    per_hour = ma.fields.List(ma.fields.Dict(), required=True)
    generated_at = ma.fields.DateTime(required=True)


# Tokens --------------------------------------------------------------------

class TokenIn(ma.Schema):
    name = Str(required=True, validate=validate.Length(min=1, max=128))
    scope = Str(load_default="read", validate=validate.OneOf(("read", "read-write")))


class TokenSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = Str(required=True)
    scope = Str(required=True)
    created_at = ma.fields.DateTime(required=True)
    last_used_at = NDateTime
    revoked_at = NDateTime


class NewTokenSchema(TokenSchema):
    token = Str(required=True, metadata={"description": "shown once; only its SHA-256 is kept"})


class TokenList(ma.Schema):
    tokens = ma.fields.List(ma.fields.Nested(TokenSchema), required=True)


# Webhooks ------------------------------------------------------------------



class WebhookIn(ma.Schema):
    url = ma.fields.Url(required=True, schemes={"http", "https"}, require_tld=False,
                        validate=validate.Length(max=2000))
    events = ma.fields.List(Str(validate=validate.OneOf(WEBHOOK_EVENTS)),
                            load_default=["blacklist.hit"], validate=validate.Length(min=1, max=2))
    description = Str(allow_none=True, validate=validate.Length(max=255))
    active = ma.fields.Boolean(load_default=True)


class WebhookPatch(ma.Schema):
    url = ma.fields.Url(schemes={"http", "https"}, require_tld=False, validate=validate.Length(max=2000))
    events = ma.fields.List(Str(validate=validate.OneOf(WEBHOOK_EVENTS)),
                            validate=validate.Length(min=1, max=2))
    description = Str(allow_none=True, validate=validate.Length(max=255))
    active = ma.fields.Boolean()


class WebhookSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    url = Str(required=True)
    events = ma.fields.List(Str(), required=True)
    description = NStr
    active = ma.fields.Boolean(required=True)
    created_at = ma.fields.DateTime(required=True)


class NewWebhookSchema(WebhookSchema):
    secret = Str(required=True, metadata={"description": "the HMAC-SHA256 key; shown once"})


class WebhookList(ma.Schema):
    webhooks = ma.fields.List(ma.fields.Nested(WebhookSchema), required=True)


class DeliverySchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    webhook_id = ma.fields.Integer(required=True)
    event = Str(required=True)
    status = Str(required=True, metadata={"description": "pending, delivered or failed"})
    attempts = ma.fields.Integer(required=True)
    created_at = ma.fields.DateTime(required=True)
    last_attempt_at = NDateTime
    next_attempt_at = NDateTime
    delivered_at = NDateTime
    last_status_code = ma.fields.Integer(allow_none=True)
    last_error = NStr
    payload = ma.fields.Dict()


class DeliveryPage(PageInfo):
    deliveries = ma.fields.List(ma.fields.Nested(DeliverySchema), required=True)
