"""setup.sh: shellcheck clean, refuses unsupported systems, and `install` for real (minus systemd), twice."""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from config import database_url

from .processes import ROOT

SETUP = ROOT / "setup.sh"


def run_setup(*args: str, env: dict, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([str(SETUP), *args], env={**os.environ, **env}, capture_output=True,
                            text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"setup.sh {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_setup_sh_is_shellcheck_clean():
    result = subprocess.run(["shellcheck", str(SETUP)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("release", ['ID=centos\nVERSION_ID="9"\n', 'ID=ubuntu\nVERSION_ID="20.04"\n',
                                     'ID=debian\nVERSION_ID="11"\n'])
def test_install_refuses_an_unsupported_system(tmp_path, release):
    (tmp_path / "os-release").write_text(release)
    result = run_setup("install", env={"LPR_OS_RELEASE": str(tmp_path / "os-release")}, check=False)
    assert result.returncode != 0
    assert "unsupported system" in result.stderr or "needs root" in result.stderr


def test_help_lists_every_command():
    out = run_setup("help", env={}).stdout
    for command in ("install", "upgrade", "status", "logs", "create-user", "reset-admin", "delete-user",
                    "add-camera", "backup", "restore", "run", "test"):
        assert f"  {command}" in out, command


@pytest.fixture
def scratch(tmp_path, postgres):
    """Every place install writes to, moved into a scratch folder; PostgreSQL from the test server."""
    if os.geteuid() != 0:
        pytest.skip("install needs root")
    os_release = Path("/etc/os-release").read_text()
    if not any(f"VERSION_ID={v}" in os_release.replace('"', "") for v in ("12", "22.04", "24.04")):
        pytest.skip("not a supported system")
    return tmp_path, {
        "VENV": sys.prefix,
        "LPR_USER": "nobody", "LPR_NGINX_USER": "",
        "LPR_ETC": str(tmp_path / "etc"), "LPR_DATA": str(tmp_path / "data"),
        "LPR_LOG": str(tmp_path / "log"), "LPR_BACKUP_DIR": str(tmp_path / "backups"),
        "LPR_SYSTEMD_DIR": str(tmp_path / "systemd"), "LPR_NGINX_DIR": str(tmp_path / "nginx"),
        "LPR_PG_ADMIN_URL": postgres.url("postgres"), "LPR_PG_HOST": "127.0.0.1",
        "LPR_PG_PORT": str(postgres.port), "LPR_DB_NAME": "lprserver_setup", "LPR_DB_USER": "lprserver_setup",
    }


def snapshot(root: Path) -> dict:
    """Every file and folder under root: content hash, mode, owner, modification time."""
    state = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() and not path.is_symlink() else ""
        state[str(path.relative_to(root))] = (digest, st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns)
    return state


def settings(tmp_path: Path) -> dict:
    lines = (tmp_path / "etc" / "lprserver.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def users(url: str) -> list:
    engine = create_engine(database_url(url))
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(text("SELECT username, role, password_hash FROM users ORDER BY id"))]
    engine.dispose()
    return rows


def test_install_twice_sets_everything_up_once_and_changes_nothing_the_second_time(scratch):
    tmp_path, env = scratch
    first = run_setup("install", env=env)
    assert "Password (shown once)" in first.stdout
    assert "systemd is not running" in first.stdout

    conf = settings(tmp_path)
    env_file = tmp_path / "etc" / "lprserver.env"
    assert oct(env_file.stat().st_mode & 0o777) == "0o640" and env_file.stat().st_uid == 0
    assert env_file.stat().st_gid == int(subprocess.check_output(["id", "-g", "nobody"]))
    assert conf["FLASK_CONFIG"] == "production" and len(conf["SECRET_KEY"]) == 64
    assert conf["DATABASE_URL"].startswith("postgresql://lprserver_setup:")
    assert conf["IMAGE_STORAGE_PATH"] == str(tmp_path / "data" / "images")
    assert conf["WEB_WORKERS"] == "1" and conf["LIVE_MESSAGE_QUEUE"] == ""  # README "Several web workers"
    assert [u[:2] for u in users(conf["DATABASE_URL"])] == [("admin", "admin")]

    units = tmp_path / "systemd"
    web = (units / "lprserver.service").read_text()
    assert f"EnvironmentFile={env_file}" in web and f"WorkingDirectory={ROOT}" in web
    assert f"ExecStart={sys.prefix}/bin/gunicorn" in web and "User=nobody" in web
    assert f"ReadWritePaths={tmp_path / 'data'} {tmp_path / 'log'}" in web
    site = tmp_path / "nginx" / "sites-enabled" / "lprserver.conf"
    assert site.is_symlink() and f"include {tmp_path}/nginx/snippets/lprserver-locations.conf;" in site.read_text()
    assert f"alias {tmp_path}/data/images/;" in (tmp_path / "nginx/snippets/lprserver-locations.conf").read_text()

    before, users_before = snapshot(tmp_path), users(conf["DATABASE_URL"])
    second = run_setup("install", env=env)
    assert "Password (shown once)" not in second.stdout and "written:" not in second.stdout
    assert snapshot(tmp_path) == before
    assert users(conf["DATABASE_URL"]) == users_before


def test_user_camera_and_backup_commands_work_on_the_installed_server(scratch):
    tmp_path, env = scratch
    run_setup("install", env=env)
    url = settings(tmp_path)["DATABASE_URL"]

    assert "Password (shown once)" in run_setup("create-user", "ops", "--role", "operator", env=env).stdout
    old_hash = users(url)[0][2]
    assert "Password (shown once)" in run_setup("reset-admin", env=env).stdout
    assert users(url)[0][2] != old_hash
    assert "token (shown once): cam_" in run_setup("add-camera", "CAM001", "--name", "Gate", env=env).stdout

    image = tmp_path / "data" / "images" / "2026" / "01" / "01" / "CAM001" / "a.jpg"
    image.parent.mkdir(parents=True)
    image.write_bytes(b"\xff\xd8\xffimage")
    run_setup("backup", str(tmp_path / "backups" / "one"), env=env)
    assert {p.name for p in (tmp_path / "backups" / "one").iterdir()} == {
        "database.dump", "images.tar.gz", "lprserver.env"}

    run_setup("delete-user", "ops", env=env)
    image.unlink()
    assert [u[0] for u in users(url)] == ["admin"]
    refused = run_setup("restore", str(tmp_path / "backups" / "one"), env=env, check=False)
    assert refused.returncode != 0 and "--yes" in refused.stderr
    run_setup("restore", str(tmp_path / "backups" / "one"), "--yes", env=env)
    assert [u[0] for u in users(url)] == ["admin", "ops"]
    assert image.read_bytes() == b"\xff\xd8\xffimage"
    assert "lpr_records_default" in partitions_of(url)  # lpr_records came back partitioned

    # A dump cut short is refused and leaves the database as it was (one transaction, no COMMIT).
    broken = tmp_path / "backups" / "broken"
    shutil.copytree(tmp_path / "backups" / "one", broken)
    dump = (broken / "database.dump").read_bytes()
    (broken / "database.dump").write_bytes(dump[: len(dump) * 2 // 3])
    run_setup("delete-user", "ops", env=env)
    failed = run_setup("restore", str(broken), "--yes", env=env, check=False)
    assert failed.returncode != 0
    assert [u[0] for u in users(url)] == ["admin"]
    assert "lpr_records_default" in partitions_of(url)


def partitions_of(url: str) -> list[str]:
    engine = create_engine(database_url(url))
    with engine.connect() as conn:
        names = list(conn.execute(text("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                                       "WHERE i.inhparent = 'lpr_records'::regclass")).scalars())
    engine.dispose()
    return names


def test_the_rendered_site_passes_nginx_t_with_and_without_tls(scratch, tmp_path):
    if not Path("/usr/sbin/nginx").exists():
        pytest.skip("nginx is not installed")
    _, env = scratch
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=lpr",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    for extra in ({}, {"LPR_TLS_CERT": str(cert), "LPR_TLS_KEY": str(key)}):
        run_setup("install", env={**env, **extra})
        site = (tmp_path / "nginx" / "sites-available" / "lprserver.conf").read_text()
        if extra:
            assert "listen 443 ssl http2;" in site and "Strict-Transport-Security" in site
            assert "return 301 https://$host$request_uri;" in site
            assert settings(tmp_path)["SESSION_COOKIE_SECURE"] == "off"  # written once; admins switch it
        conf = tmp_path / "nginx-test.conf"
        conf.write_text(f"pid {tmp_path}/nginx.pid; error_log stderr; events {{}} http {{ "
                        f"include {tmp_path}/nginx/sites-enabled/*.conf; }}")
        result = subprocess.run(["/usr/sbin/nginx", "-t", "-p", str(tmp_path), "-c", str(conf)],
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr


def test_upgrade_pulls_migrates_and_keeps_the_settings(scratch):
    tmp_path, env = scratch
    run_setup("install", env=env)
    before = settings(tmp_path)
    checkout = tmp_path / "checkout"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(checkout)], check=True)
    result = run_setup("upgrade", env={**env, "LPR_APP_DIR": str(checkout)})
    assert "Pulling the new version" in result.stdout and "Already up to date" in result.stdout
    assert "Database is at the current schema." in result.stdout and "Upgraded." in result.stdout
    assert settings(tmp_path) == before
    assert f"WorkingDirectory={checkout}" in (tmp_path / "systemd" / "lprserver.service").read_text()


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def test_run_with_simulated_cameras_starts_them_after_the_daemon_and_sigterm_stops_every_child(tmp_path):
    import signal
    import time

    from .pgcluster import free_port

    url = f"sqlite:///{tmp_path / 'run.db'}"
    env = {**os.environ, "DATABASE_URL": url, "IMAGE_STORAGE_PATH": str(tmp_path / "images"),
           "INGEST_PORT": str(free_port()), "WEB_PORT": str(free_port()), "FLASK_CONFIG": "development",
           "HEARTBEAT_FILE": str(tmp_path / "heartbeat")}
    env.pop("SECRET_KEY", None)
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(SETUP), "run", "--simulate", "2"], env=env, stdout=out, stderr=subprocess.STDOUT,
                                cwd=ROOT)
    try:
        engine = create_engine(database_url(url))
        deadline = time.monotonic() + 120
        stored = 0
        while time.monotonic() < deadline and stored < 2:
            time.sleep(1)
            try:
                with engine.connect() as conn:
                    stored = conn.execute(text("SELECT count(*) FROM lpr_records")).scalar()
            except Exception:  # noqa: BLE001 - the schema is not there until init-db has run
                stored = 0
        engine.dispose()
        assert stored >= 2, log.read_text()[-3000:]
        children = _descendants(proc.pid)
        assert len(children) >= 3  # the daemon, the web app, the simulator (and the daemon's store worker)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(_alive(pid) for pid in children):
            time.sleep(0.2)
        assert [pid for pid in children if _alive(pid)] == [], log.read_text()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    output = log.read_text()
    assert "Connection refused" not in output and "connection refused" not in output, output[-3000:]
