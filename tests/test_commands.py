"""The `flask lpr` admin commands: they work, and refuse bad input with a clear message."""

from sqlalchemy import select

from lprserver.extensions import db
from lprserver.models import BlacklistEntry, Camera, User
from lprserver.passwords import check_password
from lprserver.tokens import hash_token


def run(app, *args):
    return app.test_cli_runner().invoke(args=["lpr", *args])


def test_create_user_prints_a_generated_password_once(app):
    result = run(app, "create-user", "somchai", "--role", "operator")
    assert result.exit_code == 0
    password = result.output.rsplit(": ", 1)[1].strip()
    user = db.session.scalar(select(User).where(User.username == "somchai"))
    assert user.role == "operator" and check_password(password, user.password_hash)
    assert password not in user.password_hash


def test_create_user_if_missing_leaves_an_existing_user_alone(app):
    run(app, "create-user", "admin", "--role", "admin", "--password", "first-pass-phrase")
    result = run(app, "create-user", "admin", "--role", "admin", "--if-missing")
    assert "exists already" in result.output and "Password" not in result.output
    user = db.session.scalar(select(User).where(User.username == "admin"))
    assert check_password("first-pass-phrase", user.password_hash)


def test_a_long_thai_passphrase_is_not_truncated(app):
    long_password = "รหัสผ่านยาวมาก" * 10  # far over bcrypt's 72 bytes
    run(app, "create-user", "longpass", "--password", long_password)
    user = db.session.scalar(select(User).where(User.username == "longpass"))
    assert check_password(long_password, user.password_hash)
    assert not check_password(long_password[:-1], user.password_hash)


def test_add_camera_prints_a_token_that_is_stored_hashed(app):
    result = run(app, "add-camera", "GATE-1", "--name", "ประตูหน้า")
    assert result.exit_code == 0
    token = result.output.rsplit(": ", 1)[1].strip()
    camera = db.session.get(Camera, "GATE-1")
    assert camera.name == "ประตูหน้า" and camera.token_hash == hash_token(token)


def test_blacklist_add_normalises_the_plate(app):
    result = run(app, "blacklist-add", "กข ๑๒๓๔", "--reason", "รถหาย", "--category", "stolen")
    assert result.exit_code == 0
    entry = db.session.scalar(select(BlacklistEntry))
    assert (entry.license_plate_text, entry.plate_normalized, entry.category) == ("กข ๑๒๓๔", "กข1234", "stolen")


def test_bad_input_is_refused_with_a_clear_message_and_stores_nothing(app):
    cases = [
        (["add-camera", "../../etc"], "CAMERA_ID"),
        (["create-user", "bad name!"], "USERNAME"),
        (["create-user", "x", "--role", "root"], "root"),
        (["blacklist-add", " - "], "PLATE"),
        (["blacklist-add", "กข1", "--category", "enemy"], "enemy"),
        (["blacklist-add", "กข1", "--expires-in-days", "0"], "expires-in-days"),
        (["delete-user", "nobody"], "no user named nobody"),
        (["create-token", "nobody", "laptop"], "no user named nobody"),
    ]
    for args, message in cases:
        result = run(app, *args)
        assert result.exit_code != 0, args
        assert message in result.output, (args, result.output)
    assert db.session.scalar(select(db.func.count(Camera.id))) == 0
    assert db.session.scalar(select(db.func.count(User.id))) == 0
    assert db.session.scalar(select(db.func.count(BlacklistEntry.id))) == 0


def test_init_db_is_idempotent_and_makes_the_image_folder(app, tmp_path):
    app.config["IMAGE_STORAGE_PATH"] = str(tmp_path / "new" / "images")
    assert run(app, "init-db").exit_code == 0
    assert (tmp_path / "new" / "images").is_dir()  # a new server's /health is ok before its first image
    assert run(app, "init-db").exit_code == 0


def test_rebuild_analytics_if_empty_fills_the_counts_once(app):
    from lprserver.models import AnalyticsHour, Record, utcnow

    assert "nothing to count" in run(app, "rebuild-analytics", "--if-empty").output  # no records
    db.session.add(Camera(id="CAM1"))
    db.session.add(Record(camera_id="CAM1", plate_number="กข1234", plate_normalized="กข1234",
                          captured_at=utcnow(), received_at=utcnow()))
    db.session.commit()
    first = run(app, "rebuild-analytics", "--if-empty")
    assert first.exit_code == 0 and "Analytics rebuilt" in first.output
    assert db.session.scalar(db.select(db.func.sum(AnalyticsHour.reads))) == 1
    assert "already" in run(app, "rebuild-analytics", "--if-empty").output  # setup.sh upgrade again
    assert "Analytics rebuilt" in run(app, "rebuild-analytics").output
    db.session.rollback()
    assert db.session.scalar(db.select(db.func.sum(AnalyticsHour.reads))) == 1
