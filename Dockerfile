# LPR Server in a container (SPEC §14, README "Containers"): one image; its command picks the part:
#   web      the web app (gunicorn, one gevent worker) on port 5000
#   daemon   the ingest daemon on port 8765
#   migrate  bring the database to the current schema, then exit
# Anything else runs as a command (e.g. `flask lpr create-user admin --role admin`).
# The same Python minor as the test suite (3.11, Debian 12 "bookworm"); pin the digest too for builds
# that must not change: `docker pull python:3.11.13-slim-bookworm` prints it.
FROM python:3.11.13-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FLASK_APP=wsgi \
    FLASK_CONFIG=production \
    IMAGE_STORAGE_PATH=/var/lib/lprserver/images \
    HEARTBEAT_FILE=/var/lib/lprserver/ingest.heartbeat

# Thai glyphs for the PDF reports (REPORT_FONT's default, README "Fonts for the PDF").
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-thai-tlwg \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 lprserver \
    && useradd --system --uid 10001 --gid lprserver --home-dir /opt/lprserver --shell /usr/sbin/nologin lprserver

WORKDIR /opt/lprserver
# The pinned packages first: this layer is rebuilt only when requirements.txt changes.
COPY requirements.txt ./
RUN pip install -r requirements.txt
COPY . .
# As setup.sh does: the app itself (editable: templates/ and static/ stay beside the code), its catalogues.
RUN pip install --no-deps -e . \
    && python -c 'from lprserver.i18n import compile_catalogues; compile_catalogues()' \
    && install -d -o lprserver -g lprserver /var/lib/lprserver /var/lib/lprserver/images /opt/lprserver/instance

USER lprserver
VOLUME ["/var/lib/lprserver"]
EXPOSE 5000 8765
ENTRYPOINT ["/opt/lprserver/docker/entrypoint.sh"]
CMD ["web"]
