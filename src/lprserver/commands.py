"""`flask lpr ...` commands for admins and scripts."""

import re
from datetime import timedelta
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select

from .blacklist import BlacklistInputError, add_entry
from .cameras import CAMERA_ID_PATTERN, create_camera
from .database import upgrade_database
from .extensions import db
from .models import BLACKLIST_CATEGORIES, MATCH_MODES, ROLES, ApiToken, User, utcnow
from .plates import find_province
from .tokens import generate_token, hash_token
from .users import UserInputError, save_user

lpr = AppGroup("lpr", help="LPR Server administration.")


def init_app(app: Flask) -> None:
    app.cli.add_command(lpr)


@lpr.command("init-db")
def init_db_command():
    """Create or upgrade the database schema (alembic upgrade head), and create the image folder."""
    upgrade_database(current_app.config["SQLALCHEMY_DATABASE_URI"])
    click.echo("Database is at the current schema.")
    # Else /health fails on a new server until its first image is stored (an object store has no folder).
    if current_app.config["IMAGE_STORE"] == "filesystem":
        Path(current_app.config["IMAGE_STORAGE_PATH"]).mkdir(parents=True, exist_ok=True)


@lpr.command("create-user")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), default="viewer", show_default=True)
@click.option("--password", help="Leave out to generate one (printed once).")
@click.option("--if-missing", is_flag=True, help="Do nothing if the user exists already.")
@click.option("--sites", help="Limit the user to these sites, comma-separated (empty: every site).")
def create_user_command(username, role, password, if_missing, sites):
    """Create a user (or reset one's password and role)."""
    if if_missing and db.session.scalar(select(User.id).where(User.username == username)):
        click.echo(f"User {username} exists already; left as it is.")
        return
    from .sites import parse_sites  # SPEC §15 "Sites"

    try:
        limit = parse_sites(sites) if sites is not None else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--sites") from None
    try:
        user, password = save_user(db.session, username, role, password)
    except UserInputError as exc:
        raise click.BadParameter(str(exc), param_hint="USERNAME") from None
    if sites is not None:
        user.sites = limit or None
    db.session.commit()
    where = f", sites {', '.join(limit)}" if limit else ""
    click.echo(f"User {username} ({role}{where}) saved. Password (shown once): {password}")


@lpr.command("delete-user")
@click.argument("username")
def delete_user_command(username):
    """Delete a user."""
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        raise click.ClickException(f"no user named {username}")
    db.session.delete(user)
    db.session.commit()
    click.echo(f"User {username} deleted.")


@lpr.command("create-token")
@click.argument("username")
@click.argument("name")
@click.option("--scope", type=click.Choice(["read", "read-write"]), default="read", show_default=True)
def create_token_command(username, name, scope):
    """Create a personal API token for a user (printed once)."""
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        raise click.ClickException(f"no user named {username}")
    token = generate_token("lpr")
    db.session.add(ApiToken(user_id=user.id, name=name[:128], token_hash=hash_token(token), scope=scope))
    db.session.commit()
    click.echo(token)


@lpr.command("add-camera")
@click.argument("camera_id")
@click.option("--name")
@click.option("--location")
def add_camera_command(camera_id, name, location):
    """Create a camera (or give it a new token) and print its token once."""
    if not re.fullmatch(CAMERA_ID_PATTERN, camera_id):
        raise click.BadParameter("use 1-64 of A-Z a-z 0-9 _ . - starting with a letter or digit",
                                 param_hint="CAMERA_ID")
    _camera, token = create_camera(db.session, camera_id, name, location)
    db.session.commit()
    click.echo(f"Camera {camera_id} token (shown once): {token}")


@lpr.command("blacklist-add")
@click.argument("plate")
@click.option("--reason")
@click.option("--category", type=click.Choice(BLACKLIST_CATEGORIES), default="other", show_default=True)
@click.option("--added-by", default="cli", show_default=True)
@click.option("--expires-in-days", type=click.IntRange(min=1))
@click.option("--match", type=click.Choice(MATCH_MODES), default="exact", show_default=True,
              help="lookalike: also characters cameras confuse (ข/ช, 0/O); fuzzy: also one character "
                   "more, less or different; pattern: PLATE with * (any run) and ? (one character).")
@click.option("--province", help="Only reads of this province (or without one) match: TH-10, "
                                 "กรุงเทพมหานคร, Bangkok. Default: the province PLATE names, if any.")
def blacklist_add_command(plate, reason, category, added_by, expires_in_days, match, province):
    """Add a plate to the blacklist."""
    province_code = None
    if province:
        found = find_province(province)
        if found is None:
            raise click.BadParameter(f"{province!r} is not a Thai province (its ISO 3166-2:TH code such "
                                     "as TH-10, or its Thai or English name)", param_hint="'--province'")
        province_code = found.code
    expires_at = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
    try:
        entry = add_entry(db.session, plate, reason, category, added_by, expires_at, match, province_code)
    except BlacklistInputError as exc:
        hint = {"match": "'--match'", "province_code": "'--province'"}.get(exc.field, "PLATE")
        raise click.BadParameter(str(exc), param_hint=hint) from None
    db.session.commit()
    shown = ", ".join(filter(None, [entry.plate_normalized, None if match == "exact" else match,
                                    entry.province_code]))
    click.echo(f"Blacklist entry {entry.id}: {entry.license_plate_text} ({shown})")


@lpr.command("cleanup")
@click.option("--days", type=click.IntRange(min=0),
              help="Keep reads this many days (default: RETENTION_DAYS).")
@click.option("--image-days", type=click.IntRange(min=0),
              help="Keep images this many days (default: IMAGE_RETENTION_DAYS).")
@click.option("--hit-days", type=click.IntRange(min=0),
              help="Keep blacklist hits this many days (default: HIT_RETENTION_DAYS).")
@click.option("--audit-days", type=click.IntRange(min=0),
              help="Keep audit entries this many days (default: AUDIT_RETENTION_DAYS).")
@click.option("--budget-gb", type=click.FloatRange(min=0),
              help="Image disk budget in GB (default: IMAGE_DISK_BUDGET_GB).")
@click.option("--no-sweep", is_flag=True, help="Skip the orphan file and missing file sweep.")
@click.option("--dry-run", is_flag=True,
              help="Only say what the run would delete (the retention page's numbers).")
def cleanup_command(days, image_days, hit_days, audit_days, budget_gb, no_sweep, dry_run):
    """Delete records, images and audit entries past their retention (SPEC §15), in batches."""
    from dataclasses import replace

    from .audit import audit
    from .image_store import image_store_from_config
    from .retention import RetentionSettings, preview, run

    config = current_app.config
    settings = RetentionSettings.from_config(config)
    changed = {"read_days": days, "image_days": image_days, "hit_days": hit_days, "audit_days": audit_days,
               "budget_bytes": None if budget_gb is None else int(budget_gb * 1024**3)}
    settings = replace(settings, **{key: value for key, value in changed.items() if value is not None})
    # An image or hit period that only followed RETENTION_DAYS follows --days.
    follows = config["RETENTION_DAYS"]
    if days is not None and image_days is None and config["IMAGE_RETENTION_DAYS"] == follows:
        settings = replace(settings, image_days=None)
    if days is not None and hit_days is None and config["HIT_RETENTION_DAYS"] == follows:
        settings = replace(settings, hit_days=None)
    if dry_run:
        shown = preview(db.session, settings).as_dict()
        click.echo("Cleanup would delete: " + " ".join(f"{k}={shown[k]}" for k in ("reads", "hits", "images",
                                                                                      "audit")))
        return
    store = image_store_from_config(config)
    report = run(db.session, store, settings, sweep=not no_sweep)
    # The retention page shows the last run; the entry is written after the audit log's own cleanup.
    audit(db.session, "retention.cleanup", username="cleanup", target="retention",
          detail={**report.as_dict(), "settings": {"read_days": settings.read_days,
                                                   "image_days": settings.images_days,
                                                   "hit_days": settings.hits_days,
                                                   "audit_days": settings.audit_days}})
    db.session.commit()
    click.echo(f"Cleanup done: {report.summary()}")


@lpr.command("simulate")
@click.option("--url", default="http://127.0.0.1:8765", show_default=True, help="The ingest daemon.")
@click.option("--cameras", type=click.IntRange(1, 1000), default=5, show_default=True)
@click.option("--rate", type=click.FloatRange(min=0.01), default=1.0, show_default=True,
              help="Reads per second per camera.")
@click.option("--count", type=click.IntRange(min=0), default=0, help="Reads per camera (0: forever).")
@click.option("--token", "tokens", multiple=True,
              help="Camera token (repeat per camera) for INGEST_AUTH=token.")
@click.option("--prefix", default="SIM", show_default=True, help="Camera ids are PREFIX001, PREFIX002, ...")
@click.option("--plates", help="Comma-separated plates to send instead of random ones.")
def simulate_command(url, cameras, rate, count, tokens, prefix, plates):
    """Act as edge cameras: register and send reads with generated plate images."""
    from .simulate import run_simulation

    summary = run_simulation(url, cameras, rate, count, list(tokens), prefix,
                             plates.split(",") if plates else None)
    click.echo(summary)


@lpr.command("rebuild-analytics")
@click.option("--if-empty", is_flag=True,
              help="only when the counts are empty and there are records (setup.sh upgrade, past 0008)")
def rebuild_analytics_command(if_empty: bool):
    """Recompute the analytics' counts (SPEC §12) from the records, e.g. after upgrading to 0008."""
    import time

    from .analytics_counts import rebuild
    from .models import AnalyticsHour, Record

    if if_empty and (db.session.scalar(select(AnalyticsHour.hour).limit(1)) is not None
                     or db.session.scalar(select(Record.id).limit(1)) is None):
        click.echo("Analytics: the counts are there already (or there is nothing to count).")
        return
    started = time.monotonic()
    made = rebuild(db.session, current_app.config["TIMEZONE"])
    db.session.commit()
    rows = ", ".join(f"{table} {count}" for table, count in made.items())
    click.echo(f"Analytics rebuilt in {time.monotonic() - started:.1f} s: {rows}.")
