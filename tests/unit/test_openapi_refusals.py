"""The 422 answers the services give are the ones their OpenAPI documents describe (regression of
a schemathesis finding: a service's own refusal, a sentence, did not match the documented list)."""
import jsonschema_rs
from fastapi import FastAPI, HTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.testclient import TestClient

from maillink_runtime.http import validation_error, with_documented_refusals


def app_with_both_refusals() -> FastAPI:
    app = FastAPI()
    app.add_exception_handler(RequestValidationError, validation_error)
    with_documented_refusals(app)

    @app.get("/things/{n}")
    def thing(n: int):
        if n == 0:
            raise HTTPException(422, "zero is refused here")
        return {"n": n}

    return app


def test_both_kinds_of_422_match_the_documented_schema():
    app = app_with_both_refusals()
    document = app.openapi()
    schema = {**document["components"]["schemas"]["HTTPValidationError"],
              "components": document["components"]}
    schema = _inline(schema, document["components"]["schemas"])
    client = TestClient(app)
    sentence, field_list = client.get("/things/0"), client.get("/things/abc")
    assert sentence.status_code == field_list.status_code == 422
    assert isinstance(sentence.json()["detail"], str) and isinstance(field_list.json()["detail"], list)
    validator = jsonschema_rs.validator_for(schema)
    assert validator.is_valid(sentence.json()) and validator.is_valid(field_list.json())
    assert not validator.is_valid({"detail": 42})


def _inline(node, schemas):
    if isinstance(node, dict):
        if "$ref" in node:
            return _inline(schemas[node["$ref"].rsplit("/", 1)[1]], schemas)
        return {k: _inline(v, schemas) for k, v in node.items() if k != "components"}
    if isinstance(node, list):
        return [_inline(v, schemas) for v in node]
    return node
