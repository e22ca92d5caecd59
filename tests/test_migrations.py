"""The migrations give exactly the schema the models declare, on both databases, and keep the data."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from config import database_url
from lprserver import models  # noqa: F401
from lprserver.database import upgrade_database
from lprserver.extensions import db
from lprserver.partitions import is_partition_name


def _include_object(dialect):
    def include(obj, name, type_, reflected, compare_to):
        if type_ == "table" and reflected and compare_to is None and is_partition_name(name):
            return False  # lpr_records' monthly partitions, made by the app (SPEC §14)
        wanted = getattr(obj, "info", {}).get("dialect")
        return wanted is None or wanted == dialect
    return include


def assert_no_drift(url: str) -> None:
    engine = create_engine(database_url(url))
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={
            "compare_type": True, "include_object": _include_object(engine.dialect.name)})
        diff = compare_metadata(context, db.metadata)
        tables = set(inspect(conn).get_table_names())
    engine.dispose()
    assert diff == []
    assert set(db.metadata.tables) <= tables


def test_upgrade_head_on_an_empty_sqlite_file_matches_the_models(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    upgrade_database(url)
    assert_no_drift(url)


def _empty_postgresql(postgres, name: str) -> str:
    """A new, empty database on the test server; its URL."""
    engine = create_engine(database_url(postgres.url("postgres")), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    engine.dispose()
    return postgres.url(name)


def test_upgrade_head_on_an_empty_postgresql_matches_the_models(postgres):
    url = _empty_postgresql(postgres, "drift_check")
    upgrade_database(database_url(url))
    assert_no_drift(url)
    engine = create_engine(database_url(url))
    with engine.connect() as conn:
        indexes = {ix["name"] for ix in inspect(conn).get_indexes("lpr_records")}
    engine.dispose()
    assert "ix_lpr_records_plate_trgm" in indexes


def test_upgrade_head_twice_changes_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'twice.db'}"
    upgrade_database(url)
    upgrade_database(url)
    assert_no_drift(url)


def test_the_alembic_console_script_migrates_from_the_repository_root_and_elsewhere(tmp_path):
    # As README "Upgrade" says admins run it: `.venv/bin/alembic upgrade head` in the checkout, with the
    # settings in the environment; and from another folder with -c pointing at the checkout's alembic.ini.
    import os
    import subprocess
    import sys
    from pathlib import Path

    from .processes import ROOT

    alembic = Path(sys.executable).parent / "alembic"
    for cwd, args, name in ((ROOT, [], "root.db"), (tmp_path, ["-c", str(ROOT / "alembic.ini")], "elsewhere.db")):
        url = f"sqlite:///{tmp_path / name}"
        env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": ""}
        done = subprocess.run([str(alembic), *args, "upgrade", "head"], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        assert_no_drift(url)


def _records_before_0004(url: str) -> None:
    """Rows as the server stored them before it knew provinces: the province left in the plate text."""
    from sqlalchemy import text
    engine = create_engine(database_url(url))
    rows = [  # (plate_number, plate_normalized as it was, province field)
        ("1กข 1234 กรุงเทพมหานคร", "1กข1234กรุงเทพมหานคร", None),
        ("กข-1234 เชียงใหม่", "กข1234เชียงใหม่", None),
        ("1กข1234 กทม", "1กข1234กทม", None),
        ("กข 1234", "กข1234", "Bangkok"),
        ("กข 1234", "กข1234", "Atlantis"),
        ("70-1234", "701234", None),
        ("ABC 1234", "ABC1234", None),
    ]
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO cameras (id, online, created_at) VALUES ('CAM1', false, :t)"),
                     {"t": "2026-12-01 00:00:00"})
        for i, (plate, normalized, province) in enumerate(rows):
            conn.execute(text(
                "INSERT INTO lpr_records (camera_id, event_id, plate_number, plate_normalized, province, "
                "captured_at, received_at, blacklisted) VALUES ('CAM1', :e, :p, :n, :v, :t, :t, false)"),
                {"e": f"e{i}", "p": plate, "n": normalized, "v": province, "t": "2026-12-01 00:00:00"})
        conn.execute(text(
            "INSERT INTO blacklist_plates (license_plate_text, plate_normalized, category, created_at, "
            "updated_at, active) VALUES ('กข 1234 เชียงใหม่', 'กข1234เชียงใหม่', 'stolen', :t, :t, true)"),
            {"t": "2026-12-01 00:00:00"})
    engine.dispose()


def _check_parsed_after_0004(url: str) -> None:
    from sqlalchemy import text
    engine = create_engine(database_url(url))
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT plate_normalized, province, province_code, plate_format "
                                 "FROM lpr_records ORDER BY id")).all()
        entry = conn.execute(text("SELECT plate_normalized, province_code, match FROM blacklist_plates")).one()
    engine.dispose()
    assert [tuple(r) for r in rows] == [
        ("1กข1234", "กรุงเทพมหานคร", "TH-10", "th_car"),
        ("กข1234", "เชียงใหม่", "TH-50", "th_car"),
        ("1กข1234", "กรุงเทพมหานคร", "TH-10", "th_car"),
        ("กข1234", "กรุงเทพมหานคร", "TH-10", "th_car"),
        ("กข1234", "Atlantis", None, "th_car"),
        ("701234", None, None, "th_numeric"),
        ("ABC1234", None, None, "other"),
    ]
    assert tuple(entry) == ("กข1234", "TH-50", "exact")


def test_upgrading_to_thai_plates_parses_the_stored_records_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade_database(url, "0003_web_sessions")
    _records_before_0004(url)
    upgrade_database(url)
    _check_parsed_after_0004(url)
    assert_no_drift(url)


def test_upgrading_to_thai_plates_parses_the_stored_records_postgresql(postgres):
    url = _empty_postgresql(postgres, "before_0004")
    upgrade_database(database_url(url), "0003_web_sessions")
    _records_before_0004(url)
    upgrade_database(database_url(url))
    _check_parsed_after_0004(url)
    assert_no_drift(url)


def _downgrade(url: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    from lprserver.database import ROOT

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["configure_logging"] = False
    command.downgrade(config, revision)


def _check_vehicles_0005(url: str) -> None:
    """After 0005 (SPEC §10): the stored reads are kept, their cameras are `pass` gates, and the plate
    index serves a plate's reads newest first."""
    from sqlalchemy import text
    engine = create_engine(database_url(url))
    with engine.connect() as conn:
        roles = conn.execute(text("SELECT role, allow_group FROM cameras")).all()
        states = conn.execute(text("SELECT DISTINCT review_state, plate_corrected FROM lpr_records")).all()
        count = conn.execute(text("SELECT count(*) FROM lpr_records")).scalar()
        indexes = {ix["name"] for ix in inspect(conn).get_indexes("lpr_records")}
        tables = set(inspect(conn).get_table_names())
    engine.dispose()
    assert [tuple(r) for r in roles] == [("pass", None)]
    assert [tuple(r) for r in states] == [(None, None)] and count == 7
    assert "ix_lpr_records_plate_id" in indexes and "ix_lpr_records_plate_prefix" not in indexes
    assert {"known_plates", "known_groups", "visits", "alerts"} <= tables


def _vehicles_round_trip(url: str) -> None:
    upgrade_database(database_url(url), "0004_thai_plates")
    _records_before_0004(url)
    upgrade_database(database_url(url))
    _check_vehicles_0005(url)
    _downgrade(database_url(url), "0004_thai_plates")
    upgrade_database(database_url(url))
    _check_vehicles_0005(url)
    assert_no_drift(url)


def test_upgrading_to_vehicles_keeps_the_reads_and_downgrades_sqlite(tmp_path):
    _vehicles_round_trip(f"sqlite:///{tmp_path / 'v.db'}")


def test_upgrading_to_vehicles_keeps_the_reads_and_downgrades_postgresql(postgres):
    _vehicles_round_trip(_empty_postgresql(postgres, "before_0005"))


def _records_before_0012(url: str) -> None:
    """Reads of two months at 0011, one with a hit, an alert and a visit pointing at it."""
    from sqlalchemy import text
    engine = create_engine(database_url(url))
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO cameras (id, online, created_at, role) VALUES ('CAM1', false, :t, 'pass')"),
                     {"t": "2026-10-01 00:00:00"})
        for i, at in enumerate(("2026-10-03 10:00:00", "2026-10-20 10:00:00", "2026-11-05 10:00:00")):
            conn.execute(text(
                "INSERT INTO lpr_records (camera_id, event_id, plate_number, plate_normalized, captured_at, "
                "received_at, blacklisted) VALUES ('CAM1', :e, 'กข1234', 'กข1234', :t, :t, :b)"),
                {"e": f"e{i}", "t": at, "b": i == 0})
        conn.execute(text(
            "INSERT INTO blacklist_plates (license_plate_text, plate_normalized, category, created_at, "
            "updated_at, active, match) VALUES ('กข1234', 'กข1234', 'stolen', :t, :t, true, 'exact')"),
            {"t": "2026-10-01 00:00:00"})
        conn.execute(text("INSERT INTO blacklist_detections (record_id, entry_id, match_type, detected_at) "
                          "SELECT min(r.id), min(b.id), 'exact', :t FROM lpr_records r, blacklist_plates b"),
                     {"t": "2026-10-03 10:00:00"})
        conn.execute(text("INSERT INTO visits (plate_normalized, entered_at, entry_record_id) "
                          "SELECT 'กข1234', :t, min(id) FROM lpr_records"), {"t": "2026-10-03 10:00:00"})
    engine.dispose()


def _check_after_0012(url: str, partitioned: bool) -> None:
    from sqlalchemy import text
    engine = create_engine(database_url(url))
    with engine.begin() as conn:
        rows = conn.execute(text("SELECT id, event_id FROM lpr_records ORDER BY id")).all()
        assert [r.event_id for r in rows] == ["e0", "e1", "e2"] and [r.id for r in rows] == [1, 2, 3]
        assert conn.execute(text("SELECT count(*) FROM blacklist_detections")).scalar() == 1
        assert conn.execute(text("SELECT entry_record_id FROM visits")).scalar() == 1
        if engine.dialect.name == "postgresql":
            kind = conn.execute(text("SELECT relkind FROM pg_class WHERE relname = 'lpr_records'")).scalar()
            assert kind == ("p" if partitioned else "r")
            # Ids go on from the same sequence.
            new = conn.execute(text(
                "INSERT INTO lpr_records (camera_id, event_id, plate_number, plate_normalized, captured_at, "
                "received_at, blacklisted) VALUES ('CAM1', 'e9', 'X', 'X', now(), now(), false) RETURNING id"
            )).scalar()
            assert new == 4
            conn.execute(text("DELETE FROM lpr_records WHERE id = 4"))
        if partitioned:
            names = set(conn.execute(text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'lpr_records'::regclass")).scalars())
            assert {"lpr_records_y2026m10", "lpr_records_y2026m11", "lpr_records_default"} <= names
        keys = conn.execute(text("SELECT camera_id, event_id, record_id FROM lpr_record_keys ORDER BY record_id"))
        assert [tuple(k) for k in keys] == [("CAM1", "e0", 1), ("CAM1", "e1", 2), ("CAM1", "e2", 3)]
    engine.dispose()


def _partition_round_trip(url: str) -> None:
    """0012 (SPEC §14): the reads, their ids, hits, visits and dedupe keys survive the conversion and its
    downgrade."""
    from sqlalchemy import text
    upgrade_database(database_url(url), "0011_retention_kinds")
    _records_before_0012(url)
    upgrade_database(database_url(url))
    _check_after_0012(url, partitioned=url.startswith("postgresql"))
    assert_no_drift(url)
    _downgrade(database_url(url), "0011_retention_kinds")
    engine = create_engine(database_url(url))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM lpr_records")).scalar() == 3
        assert "lpr_record_keys" not in inspect(conn).get_table_names()
        uniques = {u["name"] for u in inspect(conn).get_unique_constraints("lpr_records")}
    engine.dispose()
    assert "uq_lpr_records_camera_event" in uniques
    upgrade_database(database_url(url))
    _check_after_0012(url, partitioned=url.startswith("postgresql"))


def test_partitioning_keeps_reads_ids_and_dedupe_and_downgrades_sqlite(tmp_path):
    _partition_round_trip(f"sqlite:///{tmp_path / 'p.db'}")


def test_partitioning_keeps_reads_ids_and_dedupe_and_downgrades_postgresql(postgres):
    _partition_round_trip(_empty_postgresql(postgres, "before_0012"))
