"""The Dockerfile and docker-compose.yml (SPEC §14, README "Containers"). Docker's engine does not run in
CI: the files are parsed and checked against each other, nginx checks the compose site with the shipped
locations, and `docker compose config` runs where docker exists."""

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

from .processes import ROOT

COMPOSE = ROOT / "docker-compose.yml"
NGINX = "/usr/sbin/nginx"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def dockerfile() -> list[str]:
    return [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_the_image_is_slim_pinned_non_root_and_installs_the_requirements():
    lines = dockerfile()
    base = next(line for line in lines if line.startswith("FROM "))
    assert re.fullmatch(r"FROM python:3\.11\.\d+-slim-bookworm", base), base
    assert "RUN pip install -r requirements.txt" in lines
    users = [line for line in lines if line.startswith("USER ")]
    assert users == ["USER lprserver"]
    assert lines.index(users[0]) > max(i for i, line in enumerate(lines) if line.startswith("RUN "))
    assert 'ENTRYPOINT ["/opt/lprserver/docker/entrypoint.sh"]' in lines and 'CMD ["web"]' in lines
    entrypoint = ROOT / "docker" / "entrypoint.sh"
    assert os.access(entrypoint, os.X_OK)
    if shutil.which("shellcheck"):
        result = subprocess.run(["shellcheck", str(entrypoint)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".env", ".git", "instance"} <= set(ignored)


def test_the_entrypoint_runs_the_parts_as_the_systemd_units_do():
    script = (ROOT / "docker" / "entrypoint.sh").read_text()
    web_unit = (ROOT / "systemd" / "lprserver.service").read_text()
    assert "--worker-class gevent --workers ${WEB_WORKERS}" in web_unit
    assert '--worker-class gevent --workers "${WEB_WORKERS:-1}"' in script
    assert "exec python websocket_server.py" in script
    assert "exec flask lpr init-db" in script


def test_compose_runs_postgres_daemon_web_and_nginx_pointing_at_each_other(compose):
    services = compose["services"]
    assert {"postgres", "migrate", "web", "daemon", "nginx"} <= set(services)
    assert services["redis"]["profiles"] == ["redis"] and services["minio"]["profiles"] == ["minio"]
    for name in ("postgres", "nginx", "redis", "minio"):  # the others are built from the Dockerfile
        image = services[name]["image"]
        assert re.search(r":[\w.-]*\d", image) and "latest" not in image, f"{name} is not pinned: {image!r}"
    assert all(services[name]["build"] == "." for name in ("migrate", "web", "daemon"))
    web, daemon = services["web"], services["daemon"]
    assert web["command"] == ["web"] and daemon["command"] == ["daemon"]
    assert services["migrate"]["command"] == ["migrate"]
    for part in (web, daemon):
        assert part["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        env = part["environment"]
        # One database: the postgres service's, with its user, password and database.
        database = services["postgres"]["environment"]
        assert env["DATABASE_URL"] == (f"postgresql://{database['POSTGRES_USER']}:{database['POSTGRES_PASSWORD']}"
                                       f"@postgres:5432/{database['POSTGRES_DB']}")
        assert env["FLASK_CONFIG"] == "production" and env["SECRET_KEY"].startswith("${SECRET_KEY:?")
        # The images and the heartbeat on the one volume both see.
        assert "lpr-data:/var/lib/lprserver" in part["volumes"]
        assert env["IMAGE_STORAGE_PATH"].startswith("/var/lib/lprserver/")
        assert env["HEARTBEAT_FILE"].startswith("/var/lib/lprserver/")
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    # The daemon relays live events to the web service on the port gunicorn binds.
    assert daemon["environment"]["LIVE_RELAY_URL"] == "http://web:5000/internal/live"
    assert "--bind 0.0.0.0:5000" in (ROOT / "docker" / "entrypoint.sh").read_text()
    assert "8765:8765" in daemon["ports"]
    # nginx: the compose site in front of web:5000 and daemon:8765, with the shipped locations.
    mounts = services["nginx"]["volumes"]
    assert "./docker/nginx-site.conf:/etc/nginx/conf.d/default.conf:ro" in mounts
    assert "./nginx/lprserver-locations.conf:/etc/nginx/snippets/lprserver-locations.conf:ro" in mounts
    site = (ROOT / "docker" / "nginx-site.conf").read_text()
    assert "server web:5000" in site and "server daemon:8765;" in site
    assert "include /etc/nginx/snippets/lprserver-locations.conf;" in site
    for mount in mounts:
        source = mount.split(":")[0]
        assert (ROOT / source).exists(), source


def test_the_compose_nginx_site_passes_nginx_t(tmp_path):
    if not Path(NGINX).exists():
        pytest.skip("nginx is not installed (./setup.sh test)")
    site = (ROOT / "docker" / "nginx-site.conf").read_text()
    site = site.replace("server web:5000", "server 127.0.0.1:5000").replace("server daemon:8765", "server 127.0.0.1:8765")
    site = site.replace("/etc/nginx/snippets/lprserver-locations.conf", str(ROOT / "nginx" / "lprserver-locations.conf"))
    site = site.replace("listen 80;", "listen 127.0.0.1:1;")
    (tmp_path / "site.conf").write_text(site)
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"pid {tmp_path}/nginx.pid; error_log stderr; events {{}} http {{ "
                    f"access_log off; include {tmp_path}/site.conf; }}")
    result = subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_docker_compose_config_accepts_the_file():
    if shutil.which("docker") is None or subprocess.run(["docker", "compose", "version"],
                                                        capture_output=True).returncode != 0:
        pytest.skip("docker compose is not installed here")
    env = {**os.environ, "SECRET_KEY": "0" * 64, "POSTGRES_PASSWORD": "test"}
    with tempfile.TemporaryDirectory() as work:
        result = subprocess.run(["docker", "compose", "-f", str(COMPOSE), "config", "--quiet"], cwd=work, env=env,
                                capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
