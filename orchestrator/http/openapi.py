"""The OpenAPI document says what the API really returns: every error in the one ``ErrorBody`` shape.

Why patch the generated document: FastAPI declares its own 422 body (``HTTPValidationError``), which our
handler never sends, and knows nothing of the statuses the error handlers add (401, 403, 404, 409, 413, 429,
500, 502, 503, 504). Each operation gets ``ErrorBody`` for its 422 and as its ``default`` response, so a
client (or a schema fuzzer) can check any error it receives against the schema.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from orchestrator.http.schemas import ErrorBody

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
_ERROR_RESPONSE = {"application/json": {"schema": ERROR_REF}}


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        doc = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes, tags=app.openapi_tags
        )
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        error_schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in error_schema.pop("$defs", {}).items():
            schemas[name] = sub
        schemas["ErrorBody"] = error_schema
        for path_item in doc.get("paths", {}).values():
            for operation in path_item.values():
                if not isinstance(operation, dict) or "responses" not in operation:
                    continue
                responses = operation["responses"]
                responses["422"] = {"description": "Invalid request (ORCH_8003)", "content": _ERROR_RESPONSE}
                responses.setdefault("default", {"description": "Any error (ORCH code)", "content": _ERROR_RESPONSE})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
