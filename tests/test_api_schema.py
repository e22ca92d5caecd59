"""A property-based run of the whole API from its own OpenAPI document (schemathesis).

Every operation is called with generated parameters and bodies, as an admin with
a read-write token: no answer may be a 500, and every answer must match what the
document says (status, content type, body schema).
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

import config
from lprserver import create_app

from .conftest import bearer

MAX_EXAMPLES = 12


@pytest.fixture
def api_schema(app, api_token):
    app.config["RATELIMIT_ENABLED"] = False  # the limits are tested on their own
    app.config["TEST_TOKEN"] = api_token
    # Some data for the read operations to find.
    client = app.test_client()
    client.post("/api/blacklist", headers=bearer(api_token), json={"license_plate_text": "ABC1234"})
    client.post("/api/records", json={"camera_id": "CAM001", "plate_number": "ABC1234", "confidence": 0.9})
    # One app context per request, as under a real server (see FreshContextClient in conftest).
    inner = app.wsgi_app

    def fresh_context(environ, start_response):
        with app.app_context():
            return inner(environ, start_response)

    app.wsgi_app = fresh_context
    return app


def _document_app():
    # The document is generated from the code alone: an app that never touches its database.
    return create_app(config.TestingConfig({"DATABASE_URL": "sqlite:///:memory:", "SECRET_KEY": "x" * 40}))


# schemathesis.pytest.from_fixture does not run under pytest 9 (it sets a removed
# attribute), so the schema is read at import and each call goes to the test's app.
schema = schemathesis.openapi.from_wsgi("/api/openapi.json", _document_app())


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
def test_every_operation_answers_as_documented(case, api_schema):
    # positive_data_acceptance is left out: some rules cannot be said in the schema (a plate that
    # normalises to nothing, a URL marshmallow refuses), so a schema-valid body may rightly get 400.
    case.call_and_validate(app=api_schema, headers=bearer(api_schema.config["TEST_TOKEN"]),
                           excluded_checks=[positive_data_acceptance])


def test_the_documented_read_is_the_pipelines_own_validator():
    # POST /api/records documents the pydantic model the ingest doors validate with (api/schemas.py),
    # so the two cannot drift: every field, which are required, their limits.
    from lprserver.ingest.validation import ReadIn

    document = _document_app().test_client().get("/api/openapi.json").get_json()
    body = document["paths"]["/api/records"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == set(ReadIn.model_fields)
    assert set(body["required"]) == {name for name, field in ReadIn.model_fields.items() if field.is_required()}
    assert body["properties"]["plate_number"]["maxLength"] == 64
    assert body["properties"]["latitude"]["minimum"] == -90 and body["properties"]["latitude"]["nullable"]
    assert body["properties"]["timestamp"]["format"] == "date-time"
