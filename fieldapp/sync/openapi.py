"""The OpenAPI 3.1 document of the sync and upload endpoints, built from the same schemas."""

from fieldapp.sync import registry
from fieldapp.sync.engine import MAX_BATCH, PushIn

_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
    "required": ["error", "message"],
}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict:
    return {str(code): _json({"$ref": "#/components/schemas/Error"}, "error") for code in codes}


def openapi_document() -> dict:
    push_schema = PushIn.model_json_schema(ref_template="#/components/schemas/{model}")
    defs = push_schema.pop("$defs", {})
    payloads = {
        f"payload:{t.name}": t.schema.model_json_schema(ref_template="#/components/schemas/{model}")
        for t in registry.all_types()
    }
    result = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "status": {"enum": ["applied", "duplicate", "rejected", "conflict", "retry"]},
            "reason": {"type": "string"},
            "message": {"type": "string"},
            "fields": {"type": "object", "additionalProperties": {"type": "string"}},
            "version": {"type": "integer"},
            "files_missing": {"type": "array", "items": {"type": "string"}},
            "expected_seq": {"type": "integer"},
        },
        "required": ["id", "status"],
    }
    upload_state = {
        "type": "object",
        "properties": {
            "sha256": {"type": "string"},
            "size": {"type": "integer", "minimum": 1},
            "offset": {"type": "integer"},
            "complete": {"type": "boolean"},
        },
    }
    sha_param = {
        "name": "sha256",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "fieldapp sync API",
            "version": "1",
            "description": "See docs/sync-protocol.md. Authentication: the session cookie from "
            "/login and an X-CSRFToken header on every POST and PATCH. "
            f"At most {MAX_BATCH} mutations per push. Record types: "
            + ", ".join(t.name for t in registry.all_types()),
        },
        "paths": {
            "/api/sync/push": {
                "post": {
                    "summary": "Apply a batch of mutations from one device, in order",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/PushIn"}}
                        },
                    },
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "properties": {
                                    "results": {"type": "array", "items": result},
                                    "device_seq": {"type": "integer"},
                                },
                            },
                            "one result per mutation",
                        ),
                        **_errors(400, 401, 403, 413),
                    },
                }
            },
            "/api/sync/pull": {
                "get": {
                    "summary": "Changes for the user after a cursor",
                    "parameters": [
                        {
                            "name": "cursor",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 0},
                        },
                        {"name": "device_id", "in": "query", "schema": {"type": "string"}},
                        {
                            "name": "pending",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 0},
                        },
                        {
                            "name": "oldest_pending",
                            "in": "query",
                            # empty when nothing waits on the phone
                            "schema": {
                                "anyOf": [
                                    {"type": "string", "format": "date-time"},
                                    {"type": "string", "maxLength": 0},
                                ]
                            },
                        },
                    ],
                    "responses": {
                        "200": _json({"type": "object"}, "changes"),
                        **_errors(400, 401, 403),
                    },
                }
            },
            "/api/sync/daypack": {
                "get": {
                    "summary": "Today's work for offline use, and the cursor to pull from",
                    "responses": {"200": _json({"type": "object"}, "the day pack"), **_errors(401)},
                }
            },
            "/api/sync/files/{sha256}": {
                "parameters": [sha_param],
                "post": {
                    "summary": "Announce a file (idempotent)",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["size", "content_type"],
                                    "properties": {
                                        "size": {"type": "integer", "minimum": 1},
                                        "content_type": {
                                            "enum": ["image/jpeg", "image/png", "image/webp"]
                                        },
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": _json(upload_state, "upload state"),
                        **_errors(400, 401, 409, 413, 415),
                    },
                },
                "patch": {
                    "summary": "Append the next piece at Upload-Offset",
                    "description": "With Upload-Length, creation with upload: announces the "
                    "file too (its type as Content-Type), answered as the POST then the PATCH "
                    "would be; without it, an unknown file is 404.",
                    "parameters": [
                        {
                            "name": "Upload-Offset",
                            "in": "header",
                            "required": True,
                            "schema": {"type": "integer"},
                        },
                        {
                            "name": "Upload-Length",
                            "in": "header",
                            "required": False,
                            "description": "The whole file's size: announce it with this piece",
                            "schema": {"type": "integer", "minimum": 1},
                        },
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            kind: {"schema": {"type": "string", "format": "binary"}}
                            for kind in (
                                "application/offset+octet-stream",
                                "image/jpeg",
                                "image/png",
                                "image/webp",
                            )
                        },
                    },
                    "responses": {
                        "200": _json(upload_state, "upload state"),
                        **_errors(400, 401, 404, 409, 413, 415, 422, 503),
                    },
                },
                "head": {
                    "summary": "How much has arrived",
                    "responses": {
                        "200": {"description": "see Upload-Offset"},
                        "400": {"description": "not a sha256 digest"},
                        "404": {"description": "unknown file"},
                    },
                },
                "get": {
                    "summary": "The file, once complete",
                    "description": "Conditional (ETag, If-None-Match) and byte ranges (Range, "
                    "If-Range; one range per request, several get the whole file), from the "
                    "volume and from an S3-compatible bucket alike.",
                    "responses": {
                        "200": {"description": "the image"},
                        "206": {"description": "the range asked for (Content-Range)"},
                        "304": {"description": "not modified (If-None-Match)"},
                        "400": {"description": "not a sha256 digest"},
                        "404": {"description": "unknown file"},
                        "416": _json(
                            {"$ref": "#/components/schemas/Error"},
                            "the range is outside the file (Content-Range: bytes */size)",
                        ),
                        "503": _json(
                            {"$ref": "#/components/schemas/Error"}, "the file store is unreachable"
                        ),
                    },
                },
            },
        },
        "components": {"schemas": {"PushIn": push_schema, **defs, "Error": _ERROR, **payloads}},
    }
