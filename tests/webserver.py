"""Fixtures for the web app: the real web app (`python run.py`), a daemon that relays to it, Chromium."""

import re
from pathlib import Path

import pytest
import requests

from lprserver.extensions import db
from lprserver.users import save_user

from .processes import ROOT, Daemon, WebApp

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--autoplay-policy=no-user-gesture-required"]
PASSWORDS = {"admin": "admin-password-123", "operator": "operator-password-123",
             "viewer": "viewer-password-123"}


@pytest.fixture(scope="session")
def webapp(base_env, tmp_path_factory):
    """The web app as `python run.py` serves it, with live stats every second."""
    env = {**base_env, "ASYNC_MODE": "gevent", "LIVE_STATS_SECONDS": "1"}
    proc = WebApp(env, tmp_path_factory.mktemp("web") / "web.log").start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session", params=["gevent", "eventlet"])
def live_daemon(request, base_env, webapp, tmp_path_factory):
    """The ingest daemon relaying its live events to `webapp`."""
    env = {**base_env, "ASYNC_MODE": request.param, "LIVE_RELAY_URL": f"{webapp.url}/internal/live"}
    proc = Daemon(env, tmp_path_factory.mktemp("daemon") / f"live-{request.param}.log").start()
    yield proc
    proc.stop()


@pytest.fixture
def users(app) -> dict[str, str]:
    """An admin, an operator and a viewer, each named after their role; returns the passwords."""
    for role, password in PASSWORDS.items():
        save_user(db.session, role, role, password)
    db.session.commit()
    return PASSWORDS


def web_session(webapp: WebApp, username: str) -> requests.Session:
    """A requests session signed in to the web app as `username`."""
    http = requests.Session()
    page = http.get(f"{webapp.url}/login", timeout=10)
    token = csrf_token(page.text)
    answer = http.post(f"{webapp.url}/login", timeout=10, allow_redirects=False,
                       data={"username": username, "password": PASSWORDS[username], "csrf_token": token})
    assert answer.status_code == 302, answer.text
    return http


def csrf_token(html: str) -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


@pytest.fixture(scope="session")
def browser():
    """Debian's headless Chromium driven by Playwright."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class PageProblems:
    """Dialogs (an alert() means injected script ran) and page errors seen by a browser page."""

    def __init__(self):
        self.dialogs: list[str] = []
        self.errors: list[str] = []

    def on_dialog(self, dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        if dialog.type == "confirm":
            dialog.accept()
        else:
            dialog.dismiss()


@pytest.fixture
def browser_page(browser):
    """A fresh browser context and page; fails the test if any script opens an alert or throws."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, locale="th-TH")
    page = context.new_page()
    problems = PageProblems()
    page.on("dialog", problems.on_dialog)
    page.on("pageerror", lambda error: problems.errors.append(str(error)))
    page.problems = problems
    yield page
    context.close()
    assert not [d for d in problems.dialogs if not d.startswith("confirm")], problems.dialogs
    assert problems.errors == []


def sign_in(page, webapp: WebApp, username: str, password: str | None = None) -> None:
    page.goto(f"{webapp.url}/login")
    page.fill("#username", username)
    page.fill("#password", password or PASSWORDS[username])
    page.click("#login-form button[type=submit]")
    page.wait_for_url(f"{webapp.url}/")
    # Every signed-in page opens the live channel.
    page.wait_for_selector("#live-state.online", state="attached", timeout=10_000)


def screenshot(page, name: str, full_page: bool = True) -> Path:
    """Save the page (all of it, or only the window: a dialog's backdrop covers the window only)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


class PageClient:
    """Flask's test client as one browser: clears the request state that the `app` fixture's
    long-lived app context would otherwise share between requests (Flask-WTF's, Flask-Login's and
    Flask-Babel's caches in `g`)."""

    def __init__(self, app, remote_addr: str = "127.0.0.1"):
        self.client = app.test_client()
        self.remote_addr = remote_addr

    def open(self, method: str, path: str, **kwargs):
        from flask import g

        for name in ("csrf_token", "_login_user", "_flask_babel"):
            g.pop(name, None)
        kwargs.setdefault("environ_base", {"REMOTE_ADDR": self.remote_addr})
        return self.client.open(path, method=method, **kwargs)

    def get(self, path: str, **kwargs):
        return self.open("GET", path, **kwargs)

    def post(self, path: str, **kwargs):
        return self.open("POST", path, **kwargs)

    def token(self, path: str = "/login") -> str:
        return csrf_token(self.get(path).get_data(as_text=True))

    def login(self, username: str, password: str | None = None, next_url: str | None = None):
        data = {"username": username, "password": password or PASSWORDS.get(username, ""),
                "csrf_token": self.token()}
        if next_url is not None:
            data["next"] = next_url
        return self.post("/login", data=data)
