"""The data model as SQLAlchemy 2.0 typed models."""

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .extensions import db

# BIGINT keys on PostgreSQL; SQLite only auto-increments an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")
JsonDoc = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")

ROLES = ("admin", "operator", "viewer")
BLACKLIST_CATEGORIES = ("stolen", "wanted", "vip", "watch", "other")
# How an entry matches reads (docs/thai-plates.md "Blacklist match modes").
MATCH_MODES = ("exact", "lookalike", "fuzzy", "pattern")
HEALTH_STATES = ("PASS", "WARN", "FAIL")
# SPEC §10: a camera's role at a gate, and how a read waits for review.
CAMERA_ROLES = ("entry", "exit", "pass")
REVIEW_STATES = ("pending", "confirmed", "corrected")
# SPEC §11: what raised an alert.
ALERT_TRIGGERS = ("blacklist", "not_on_list", "overstay", "camera_offline")


def _record_fk(column: str, ondelete: str) -> ForeignKeyConstraint:
    """A child's reference to lpr_records.id, on SQLite only: PostgreSQL's partitioned lpr_records has no
    unique id alone to name (SPEC §14); retention.delete_children does its work there."""
    return ForeignKeyConstraint([column], ["lpr_records.id"], ondelete=ondelete, info={"dialect": "sqlite"})


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A timestamp stored in UTC and always read back as an aware datetime."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Camera(db.Model):
    __tablename__ = "cameras"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(128))
    location: Mapped[str | None] = mapped_column(String(255))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    hostname: Mapped[str | None] = mapped_column(String(255))
    version: Mapped[str | None] = mapped_column(String(64))
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    first_seen: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime)
    online: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    health_status: Mapped[str | None] = mapped_column(String(8))
    health_message: Mapped[str | None] = mapped_column(Text)
    health_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # SPEC §10 "Gates": entry and exit cameras open and close visits; a read at a camera with an
    # allow_group of a plate not currently known in that group raises a not_on_list alert.
    role: Mapped[str] = mapped_column(String(8), default="pass", server_default="pass")
    allow_group: Mapped[str | None] = mapped_column(String(64))
    # SPEC §11 "Camera offline": the open camera_offline alert of a camera gone silent; its next read
    # or health report resolves it (no foreign key: the alert is checked and resolved by id).
    offline_alert_id: Mapped[int | None] = mapped_column(BigInteger)
    # SPEC §15 "Sites": the site this camera belongs to (1-64 characters); None: seen only by users
    # without a site limit. See sites.py.
    site: Mapped[str | None] = mapped_column(String(64), index=True)


class Record(db.Model):
    """One plate read as a camera sent it, plus what the server made of it."""

    __tablename__ = "lpr_records"
    __table_args__ = (
        # SPEC §2.5's dedupe is lpr_record_keys' (RecordKey); this index is SQLite's from before 0012 and
        # cannot be on PostgreSQL's partitioned table, whose unique indexes must hold received_at.
        UniqueConstraint("camera_id", "event_id", name="uq_lpr_records_camera_event",
                         info={"dialect": "sqlite"}),
        Index("ix_lpr_records_received_at", "received_at"),
        Index("ix_lpr_records_camera_received", "camera_id", "received_at"),
        # Prefix searches, and a plate's reads newest first (its page, SPEC §10) read from one index;
        # PostgreSQL counts a plate's reads per camera from the index alone (the INCLUDEd columns).
        Index(
            "ix_lpr_records_plate_id",
            "plate_normalized",
            "id",
            postgresql_ops={"plate_normalized": "varchar_pattern_ops"},
            postgresql_include=["camera_id", "received_at"],
        ),
        # The review queue, oldest first, and the corrections of each camera (SPEC §10).
        Index("ix_lpr_records_review", "id", postgresql_where=text("review_state = 'pending'"),
              sqlite_where=text("review_state = 'pending'")),
        Index("ix_lpr_records_corrected", "camera_id", "corrected_at",
              postgresql_where=text("corrected_at IS NOT NULL"),
              sqlite_where=text("corrected_at IS NOT NULL")),
        Index(
            "ix_lpr_records_plate_trgm",
            "plate_normalized",
            postgresql_using="gin",
            postgresql_ops={"plate_normalized": "gin_trgm_ops"},
            info={"dialect": "postgresql"},  # needs pg_trgm; see migrations/env.py
        ).ddl_if(dialect="postgresql"),
        Index("ix_lpr_records_province_received", "province_code", "received_at"),
        # SPEC §14 "PostgreSQL at scale": one partition per UTC month (partitions.py, migration 0012);
        # there the primary key is (id, received_at), ids still from one sequence.
        {"postgresql_partition_by": "RANGE (received_at)"},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    camera_id: Mapped[str] = mapped_column(ForeignKey("cameras.id"))
    event_id: Mapped[str | None] = mapped_column(String(128))
    plate_number: Mapped[str] = mapped_column(String(64))
    plate_normalized: Mapped[str] = mapped_column(String(32))  # without the province
    province: Mapped[str | None] = mapped_column(String(64))  # canonical Thai name, or as sent
    province_code: Mapped[str | None] = mapped_column(String(8))  # ISO 3166-2:TH, null when unknown
    plate_format: Mapped[str] = mapped_column(String(16), default="other", server_default="other")
    confidence: Mapped[float | None] = mapped_column(Float)
    captured_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    location: Mapped[str | None] = mapped_column(String(255))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    vehicle_type: Mapped[str | None] = mapped_column(String(64))
    vehicle_color: Mapped[str | None] = mapped_column(String(64))
    direction: Mapped[str | None] = mapped_column(String(32))
    image_path: Mapped[str | None] = mapped_column(String(255))
    thumbnail_path: Mapped[str | None] = mapped_column(String(255))
    image_sha256: Mapped[str | None] = mapped_column(String(64))
    image_bytes: Mapped[int | None] = mapped_column(Integer)
    blacklisted: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    extra: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)
    # SPEC §10 "Corrections": plate_number stays as sent; plate_normalized and province follow this.
    plate_corrected: Mapped[str | None] = mapped_column(String(64))
    corrected_by: Mapped[str | None] = mapped_column(String(64))
    corrected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # SPEC §10 "Review": pending for a low-confidence read or a look-alike/fuzzy hit, until confirmed or
    # corrected; null for a read that never needed review.
    review_state: Mapped[str | None] = mapped_column(String(16))
    reviewed_by: Mapped[str | None] = mapped_column(String(64))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    camera: Mapped[Camera] = relationship(lazy="raise")


class RecordKey(db.Model):
    """A stored read's (camera_id, event_id), SPEC §2.5's dedupe: inserted in the read's transaction, so of
    two copies (from two daemons at once, or a resend months later) only one commits. A table of its own
    because a unique index on partitioned lpr_records would have to hold received_at (SPEC §14), which a
    resend does not share; the same on both databases so that ingest has one way. Deleted with its read
    (retention.delete_children)."""

    __tablename__ = "lpr_record_keys"
    __table_args__ = (Index("ix_lpr_record_keys_record", "record_id"),)

    camera_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    record_id: Mapped[int] = mapped_column(BigId)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the read's partition, for the join


class BlacklistEntry(db.Model):
    __tablename__ = "blacklist_plates"
    __table_args__ = (
        Index("ix_blacklist_plates_plate_normalized", "plate_normalized"),
        CheckConstraint(
            "category IN ('stolen', 'wanted', 'vip', 'watch', 'other')", name="category"
        ),
        CheckConstraint("match IN ('exact', 'lookalike', 'fuzzy', 'pattern')", name="match"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    license_plate_text: Mapped[str] = mapped_column(String(64))
    plate_normalized: Mapped[str] = mapped_column(String(32))  # without the province; a pattern as typed
    match: Mapped[str] = mapped_column(String(16), default="exact", server_default="exact")
    province_code: Mapped[str | None] = mapped_column(String(8))  # then reads of another province miss
    reason: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(16), default="other", server_default="other")
    added_by: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")


class BlacklistDetection(db.Model):
    """A read that matched a blacklist entry, and who acknowledged it."""

    __tablename__ = "blacklist_detections"
    __table_args__ = (Index("ix_blacklist_detections_detected_at", "detected_at"),
                      # A read's hits, for the cleanup's EXISTS and ON DELETE CASCADE (0011_retention_kinds).
                      Index("ix_blacklist_detections_record", "record_id"),
                      # SQLite only: no foreign key can name a partitioned table's id alone (SPEC §14); the
                      # deleters (retention.delete_children) remove a read's hits with it on both databases.
                      _record_fk("record_id", "CASCADE"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    record_id: Mapped[int] = mapped_column(BigId)
    entry_id: Mapped[int] = mapped_column(ForeignKey("blacklist_plates.id", ondelete="CASCADE"))
    match_type: Mapped[str] = mapped_column(String(16))
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    record: Mapped[Record] = relationship(lazy="raise")
    entry: Mapped[BlacklistEntry] = relationship(lazy="raise")


class KnownGroup(db.Model):
    """A group of known plates (`residents`, `staff`…) and its settings (SPEC §10)."""

    __tablename__ = "known_groups"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    max_stay_minutes: Mapped[int | None] = mapped_column(Integer)  # an open visit longer raises overstay
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class KnownPlate(db.Model):
    """A plate of the allow list: residents, staff, fleet (SPEC §10 "Known plates")."""

    __tablename__ = "known_plates"
    __table_args__ = (
        UniqueConstraint("plate_normalized", "group_name", name="uq_known_plates_plate_group"),
        CheckConstraint("valid_until IS NULL OR valid_from IS NULL OR valid_until > valid_from",
                        name="valid_range"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plate: Mapped[str] = mapped_column(String(64))  # as typed
    plate_normalized: Mapped[str] = mapped_column(String(32))  # without the province
    province_code: Mapped[str | None] = mapped_column(String(8))  # then reads of another province miss
    name: Mapped[str | None] = mapped_column(String(128))
    notes: Mapped[str | None] = mapped_column(Text)
    group_name: Mapped[str] = mapped_column(ForeignKey("known_groups.name", onupdate="CASCADE"))
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    added_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Visit(db.Model):
    """A vehicle's stay: opened by a read at an entry camera (or `direction: in`), closed by the next
    read at an exit camera (or `direction: out`). An exit with no open visit is kept with no entry."""

    __tablename__ = "visits"
    __table_args__ = (
        # One open visit per plate: a second entry read keeps it open (a race between store workers
        # fails one batch on this index, and its reads are stored again one by one).
        Index("uq_visits_open_plate", "plate_normalized", unique=True,
              postgresql_where=text("exited_at IS NULL"), sqlite_where=text("exited_at IS NULL")),
        Index("ix_visits_entered_at", "entered_at"),
        Index("ix_visits_exited_at", "exited_at"),
        Index("ix_visits_plate", "plate_normalized", "id"),
        # Retention deletes records: their visits' references are found by these.
        Index("ix_visits_entry_record", "entry_record_id"),
        Index("ix_visits_exit_record", "exit_record_id"),
        # SQLite only (see BlacklistDetection): retention.delete_children clears these references.
        _record_fk("entry_record_id", "SET NULL"),
        _record_fk("exit_record_id", "SET NULL"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    plate_normalized: Mapped[str] = mapped_column(String(32))
    province_code: Mapped[str | None] = mapped_column(String(8))
    group_name: Mapped[str | None] = mapped_column(String(64))  # the plate's known group when it entered
    entered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    entry_camera_id: Mapped[str | None] = mapped_column(String(64))
    entry_record_id: Mapped[int | None] = mapped_column(BigId)
    exited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    exit_camera_id: Mapped[str | None] = mapped_column(String(64))
    exit_record_id: Mapped[int | None] = mapped_column(BigId)
    overstay_alerted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Alert(db.Model):
    """Something that happened and someone should see (SPEC §11): a blacklist hit, a read not on a
    gate's list, an overstay, a camera gone offline. Rules (later) decide only where else it goes."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_created_at", "created_at"),
        Index("ix_alerts_trigger_id", "trigger", "id"),
        Index("ix_alerts_record", "record_id"),
        Index("ix_alerts_detection", "detection_id"),
        Index("ix_alerts_repeat", "camera_id", "plate", "id"),
        CheckConstraint("trigger IN ('blacklist', 'not_on_list', 'overstay', 'camera_offline')",
                        name="trigger"),
        # SQLite only (see BlacklistDetection): retention.delete_children deletes a read's alerts.
        _record_fk("record_id", "CASCADE"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    trigger: Mapped[str] = mapped_column(String(16))
    plate: Mapped[str | None] = mapped_column(String(32))  # normalised
    province_code: Mapped[str | None] = mapped_column(String(8))
    camera_id: Mapped[str | None] = mapped_column(String(64))
    record_id: Mapped[int | None] = mapped_column(BigId)
    detection_id: Mapped[int | None] = mapped_column(
        ForeignKey("blacklist_detections.id", ondelete="CASCADE"))
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visits.id", ondelete="CASCADE"))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # SPEC §11: the same plate at the same camera within ALERT_REPEAT_SECONDS is this alert again.
    repeat_count: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    last_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AlertRule(db.Model):
    """Where else an alert goes (SPEC §11 "Rules"): a trigger, optional categories, cameras and hours,
    the channels, and an escalation."""

    __tablename__ = "alert_rules"
    __table_args__ = (
        CheckConstraint("trigger IN ('blacklist', 'not_on_list', 'overstay', 'camera_offline')",
                        name="trigger"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trigger: Mapped[str] = mapped_column(String(16))
    categories: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    cameras: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    hours: Mapped[str | None] = mapped_column(String(11))  # "HH:MM-HH:MM" in TIMEZONE
    channels: Mapped[list[str]] = mapped_column(JsonDoc)
    escalate_after_minutes: Mapped[int | None] = mapped_column(Integer)
    escalate_to: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    description: Mapped[str | None] = mapped_column(String(255))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AlertDelivery(db.Model):
    """One alert for one channel: the outbox the alert sender drains (queued in the transaction that
    raised the alert), and its state. An escalation is queued with the alert, due when it expires."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (
        Index("ix_alert_deliveries_due", "status", "next_attempt_at"),
        Index("ix_alert_deliveries_alert", "alert_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("alert_rules.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(320))
    escalation: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # pending, delivered, failed (out of attempts), cancelled (an escalation of an acknowledged alert)
    status: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(255))


class AlertAttempt(db.Model):
    """One try to deliver an alert to a channel, and what came of it (SPEC §11 `deliveries`)."""

    __tablename__ = "alert_attempts"
    __table_args__ = (
        Index("ix_alert_attempts_alert", "alert_id", "id"),
        Index("ix_alert_attempts_at", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("alert_deliveries.id", ondelete="CASCADE"))
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(320))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ok: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(String(255))


class ChannelSetting(db.Model):
    """A channel's setting an admin set on /alerts (SPEC §11 "Channels"); the environment wins."""

    __tablename__ = "channel_settings"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class HealthReport(db.Model):
    __tablename__ = "health_reports"
    __table_args__ = (Index("ix_health_reports_camera_received", "camera_id", "received_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    camera_id: Mapped[str] = mapped_column(ForeignKey("cameras.id"))
    component: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(8))
    message: Mapped[str | None] = mapped_column(Text)
    system_info: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16), default="viewer")
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # SPEC §13: the page language the user chose ("th" or "en"); None follows the browser.
    language: Mapped[str | None] = mapped_column(String(8))
    # SPEC §15 "Sites": the sites this user is limited to (a list of names); None or []: every site.
    sites: Mapped[list[str] | None] = mapped_column(JsonDoc)

    # Flask-Login's user interface.
    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)


class ApiToken(db.Model):
    """A personal API token; only its SHA-256 is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scope: Mapped[str] = mapped_column(String(16), default="read")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(lazy="joined")


class AuditEntry(db.Model):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    username: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(255))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)
    ip: Mapped[str | None] = mapped_column(String(64))


WEBHOOK_EVENTS = ("blacklist.hit", "record.created")
DELIVERY_STATES = ("pending", "delivered", "failed")


class Webhook(db.Model):
    """A URL an admin wants events POSTed to, signed with its secret."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    # Kept in clear: it is the HMAC key the server signs with, shown to the admin once.
    secret: Mapped[str] = mapped_column(String(128))
    events: Mapped[list[str]] = mapped_column(JsonDoc)
    description: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookDelivery(db.Model):
    """One event for one webhook: the queue the delivery worker drains, and its log."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_webhook", "webhook_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    status: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(255))


class WebSession(db.Model):
    """A signed-in browser session; the cookie carries a random token, only its SHA-256 is kept."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(255))


# SPEC §12 "Dashboard": pre-aggregated counts the analytics read instead of lpr_records (src/lprserver/
# analytics.py). The ingest pipeline adds each stored batch to them in its transaction (a repeated read
# is not stored, so not counted); `flask lpr rebuild-analytics` recomputes them from lpr_records.
# Retention deletes records, not these rows: the counts outlive the reads they count (docs/api.md).


class AnalyticsHour(db.Model):
    """One camera's reads in one UTC hour (`hour`: whole hours since 1970-01-01T00:00Z)."""

    __tablename__ = "analytics_hours"
    __table_args__ = (Index("ix_analytics_hours_camera_hour", "camera_id", "hour"),)

    hour: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    reads: Mapped[int] = mapped_column(Integer)
    hits: Mapped[int] = mapped_column(Integer)  # reads stored as blacklist hits
    confidence_sum: Mapped[float] = mapped_column(Float)
    confidence_reads: Mapped[int] = mapped_column(Integer)  # reads that carried a confidence
    first_at: Mapped[datetime] = mapped_column(UTCDateTime)  # received_at of the hour's first read
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)
    max_gap_seconds: Mapped[float] = mapped_column(Float)  # the longest gap between two reads of the hour


class AnalyticsDay(db.Model):
    """A day in TIMEZONE: how many plates were read that day (one per plate, however often)."""

    __tablename__ = "analytics_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    unique_plates: Mapped[int] = mapped_column(Integer)


class AnalyticsPlateDay(db.Model):
    """A plate read on a day in TIMEZONE (once, however often it was read that day)."""

    __tablename__ = "analytics_plate_days"
    __table_args__ = (Index("ix_analytics_plate_days_plate_day", "plate_normalized", "day"),)

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    plate_normalized: Mapped[str] = mapped_column(String(32), primary_key=True)


class AnalyticsDayGap(db.Model):
    """Plates read on `day` whose previous read was `gap` days before (0: never before). Unique plates
    from day a to day b are then the plates of those days whose previous day lies before a: a sum over
    at most (b - a + 1) x (distinct gaps) rows, whatever the traffic."""

    __tablename__ = "analytics_day_gaps"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    gap: Mapped[int] = mapped_column(Integer, primary_key=True)
    plates: Mapped[int] = mapped_column(Integer)


class AnalyticsCameraDay(db.Model):
    """One camera's reads on a day in TIMEZONE; the longest gap between two of its reads that day ends
    at `max_gap_end_at` (the read after it)."""

    __tablename__ = "analytics_camera_days"
    __table_args__ = (Index("ix_analytics_camera_days_camera_day", "camera_id", "day"),)

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    reads: Mapped[int] = mapped_column(Integer)
    hits: Mapped[int] = mapped_column(Integer)
    confidence_sum: Mapped[float] = mapped_column(Float)
    confidence_reads: Mapped[int] = mapped_column(Integer)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)
    max_gap_seconds: Mapped[float] = mapped_column(Float)
    max_gap_end_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AnalyticsHourTotal(db.Model):
    """Reads of every camera in one UTC hour (the heat map's cells)."""

    __tablename__ = "analytics_hour_totals"

    hour: Mapped[int] = mapped_column(Integer, primary_key=True)
    reads: Mapped[int] = mapped_column(Integer)


class AnalyticsProvinceDay(db.Model):
    """Reads of plates of one province on a day in TIMEZONE (`province_code` '' when not known)."""

    __tablename__ = "analytics_province_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    province_code: Mapped[str] = mapped_column(String(8), primary_key=True)
    reads: Mapped[int] = mapped_column(Integer)


# SPEC §12 "Reports": admins schedule a daily or weekly summary by e-mail on /reports.
REPORT_FREQUENCIES = ("daily", "weekly")


class ReportSchedule(db.Model):
    """A summary report e-mailed every day (yesterday) or every Monday (last Monday to Sunday), with
    the XLSX and the PDF attached. `last_period_end` is the last day of the last period sent, written
    in the commit that marks it sent; `lease_until` keeps a second sender off it meanwhile."""

    __tablename__ = "report_schedules"
    __table_args__ = (
        CheckConstraint("frequency IN ('daily', 'weekly')", name="frequency"),
        CheckConstraint("language IN ('th', 'en')", name="language"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    frequency: Mapped[str] = mapped_column(String(8))
    recipients: Mapped[list[str]] = mapped_column(JsonDoc)
    language: Mapped[str] = mapped_column(String(8))
    camera_id: Mapped[str | None] = mapped_column(String(64))  # None: all cameras
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_period_end: Mapped[date | None] = mapped_column(Date)
    last_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(255))
