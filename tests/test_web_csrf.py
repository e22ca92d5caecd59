"""Every state-changing route refuses a request without a valid CSRF token."""

import pytest

from .webserver import PageClient

STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}

# Routes that are exempt on purpose, and why: none of them is authenticated by a cookie.
CSRF_EXEMPT = {
    "api.create_record": "cameras and integrators post reads with a Bearer token (README 'Sending reads'), no cookie",
    "web.relay_in": "the ingest daemon posts live events signed with an HMAC of SECRET_KEY",
}


def state_changing_routes(app):
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) & STATE_CHANGING):
            # 1 builds any converter's argument (int, string, path).
            yield rule.endpoint, method, rule.build(dict.fromkeys(rule.arguments, 1))[1]


def test_the_url_map_has_state_changing_routes(app):
    endpoints = {endpoint for endpoint, _, _ in state_changing_routes(app)}
    assert {"auth.login", "auth.logout", "web.blacklist_add", "web.acknowledge", "web.user_create"} <= endpoints


@pytest.mark.parametrize("token", ["missing", "wrong"])
def test_every_state_changing_route_refuses_a_request_without_a_valid_csrf_token(app, users, token):
    browser = PageClient(app)
    assert browser.login("admin").status_code == 302
    checked = []
    for endpoint, method, path in state_changing_routes(app):
        if endpoint in CSRF_EXEMPT:
            continue
        data = {} if token == "missing" else {"csrf_token": "forged-token"}
        answer = browser.open(method, path, data=data)
        assert answer.status_code == 400, (endpoint, method, path, answer.status_code)
        assert "CSRF" in answer.get_data(as_text=True), (endpoint, path)
        checked.append(endpoint)
    assert len(checked) >= 10


def test_the_exempt_routes_still_refuse_strangers(app):
    browser = PageClient(app)
    assert browser.post("/internal/live", json={"events": []}).status_code == 403
    assert set(CSRF_EXEMPT) <= {endpoint for endpoint, _, _ in state_changing_routes(app)}
