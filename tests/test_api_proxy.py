"""Behind nginx, rate limits count each client, not the proxy."""

import config
from lprserver import create_app
from lprserver.extensions import limiter

from .conftest import bearer


def test_rate_limit_counts_the_forwarded_client_when_behind_a_proxy(app, base_env, api_token):
    proxied = create_app(config.TestingConfig({**base_env, "TRUSTED_PROXIES": "1",
                                               "RATELIMIT_TOKENS": "2 per minute"}))
    limiter.reset()
    client = proxied.test_client()
    for address, expected in (("203.0.113.1", [200, 200, 429]), ("203.0.113.2", [200])):
        headers = {**bearer(api_token), "X-Forwarded-For": address}
        with proxied.app_context():
            codes = [client.get("/api/tokens", headers=headers).status_code for _ in expected]
        assert codes == expected
