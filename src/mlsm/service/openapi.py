"""The OpenAPI document's model-specific part: the record schema from the live set's fields, and the result.

FastAPI describes the routes; :func:`add_model_schemas` adds what only the model set knows: every input field
(type, bounds, choices, which models read it and whether they require it), the shape of ``POST /v1/score``'s
and ``POST /v1/outcomes``' bodies and answers, and the bearer scheme when an API key is configured.
"""

from __future__ import annotations

from typing import Any

from mlsm.fields import as_field
from mlsm.ids import MAX_ID_LENGTH
from mlsm.service.modelset import ServingSet

__all__ = ["add_model_schemas", "field_schema"]

_TYPES = {int: "integer", float: "number", str: "string", bool: "boolean"}


def field_schema(spec: Any) -> dict[str, Any]:
    """JSON Schema of one field as a JSON value may carry it, from :meth:`Field.to_dict` (null allowed where the
    field is not required)."""
    f = as_field(spec)
    info = f.to_dict()
    kind = _TYPES.get(f.type, "object")
    schema: dict[str, Any] = {"type": kind if info["required"] else [kind, "null"]}
    if f.type is int:  # "12" and 12.0 convert too, as values from files do
        schema["description"] = "an integer (numeric strings and whole floats convert)"
    if "ge" in info:
        schema["minimum"] = info["ge"]
    if "le" in info:
        schema["maximum"] = info["le"]
    if "choices" in info:
        schema["enum"] = info["choices"] if info["required"] else [*info["choices"], None]
    if "default" in info:
        schema["default"] = info["default"]
    return schema


def add_model_schemas(document: dict[str, Any], model_set: ServingSet, *, id_field: str, api_key: bool) -> None:
    """Add the live set's record and result schemas to ``document`` (an OpenAPI dict from FastAPI), in place."""
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Record"] = _record_schema(model_set, id_field)
    schemas["Records"] = {
        "type": "object",
        "required": ["records"],
        "properties": {"records": {"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/Record"}}},
        "additionalProperties": False,
    }
    schemas["ResultDocument"] = _document_schema(model_set, id_field)
    schemas["Results"] = {
        "type": "object",
        "properties": {"results": {"type": "array", "items": {"$ref": "#/components/schemas/ResultDocument"}}},
    }
    schemas["Error"] = {
        "type": "object",
        "properties": {"detail": {"type": "string"}, "request_id": {"type": "string"}},
    }
    document["info"]["x-mlsm-model-set"] = {
        "generation": model_set.generation,
        "source_hash": model_set.source_hash,
        "models": [model.key for model in model_set.engine.all_models],
    }
    operation = document["paths"]["/v1/score"]["post"]
    operation["description"] = (
        'Send one flat record (the id field included) or {"records": [...]}. Every model reads its own fields; '
        "a missing or invalid field gives `_error` in the slots of the models that need it, and the others answer. "
        "The response comes once the results are stored."
    )
    operation["requestBody"] = {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"oneOf": [{"$ref": "#/components/schemas/Record"}, {"$ref": "#/components/schemas/Records"}]}
            }
        },
    }
    ok = {"oneOf": [{"$ref": "#/components/schemas/ResultDocument"}, {"$ref": "#/components/schemas/Results"}]}
    operation["responses"] = {
        "200": {
            "description": "The stored result document(s), in order",
            "content": {"application/json": {"schema": ok}},
        },
        "400": _error_response("Malformed JSON"),
        "413": _error_response("Body over the size limit, or more records than the limit"),
        "415": _error_response("The body is not declared application/json"),
        "422": _error_response(
            'Not a record or {"records": [...]}, a record without the id or with text that is not valid Unicode, '
            "or results the store refuses for good"
        ),
        "503": _error_response("Results could not be stored (queue full or store unavailable); retry later"),
    }
    _describe_outcomes(document, schemas, id_field)
    document["paths"]["/report"]["get"]["description"] = (
        "The page `mlsm report` writes, for the service's store: runs, score distributions and, with outcomes, the "
        "evaluation, champion vs challenger and the verdict. One self-contained HTML page (it loads nothing from "
        "the network). The query parameters are `mlsm report`'s join options."
    )
    if api_key:
        components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        for path, methods in document["paths"].items():
            for method in methods.values():
                if path.startswith("/v1/") or path == "/report":
                    method["security"] = [{"bearer": []}]
                    method.setdefault("responses", {})["401"] = _error_response("Missing or invalid API key")


def _describe_outcomes(document: dict[str, Any], schemas: dict[str, Any], id_field: str) -> None:
    """The body and answers of ``POST /v1/outcomes`` (the rules of ``mlsm outcomes load``)."""
    schemas["Outcome"] = {
        "type": "object",
        "required": [id_field, "outcome"],
        "properties": {
            id_field: {
                "type": ["string", "integer"],
                "maxLength": MAX_ID_LENGTH,
                "description": "The lead's id, by the rule its results were stored with.",
            },
            "outcome": {
                "type": ["integer", "boolean", "string"],
                "description": "0/1, true/false, yes/no (any case); with `positive`, a label (1 when it is one of "
                "them, else 0).",
            },
            "at": {
                "type": ["string", "number"],
                "description": "When the decision was made: ISO 8601 (UTC without a zone) or unix seconds. Left "
                "out: the time of the request.",
            },
        },
        "additionalProperties": False,
    }
    schemas["Outcomes"] = {
        "type": "object",
        "required": ["outcomes"],
        "properties": {
            "outcomes": {"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/Outcome"}},
            "positive": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "string"},
                "description": "The outcome labels meaning 1 (compared ignoring case and surrounding blanks); any "
                "other value means 0.",
            },
        },
        "additionalProperties": False,
    }
    stored = {
        "type": "object",
        "properties": {
            "stored": {"type": "integer"},
            "outcomes": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        id_field: {"type": "string"},
                        "outcome": {"type": "integer", "enum": [0, 1]},
                        "at": {"type": "number", "description": "unix seconds"},
                        "label": {"type": "string", "description": "the outcome as sent"},
                    },
                },
            },
        },
    }
    operation = document["paths"]["/v1/outcomes"]["post"]
    operation["description"] = (
        'Send one outcome or {"outcomes": [...]} (optionally with "positive"). Each id\'s outcome replaces the one '
        "it had (every outcome is kept as history). The response comes once they are stored."
    )
    operation["requestBody"] = {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [{"$ref": "#/components/schemas/Outcome"}, {"$ref": "#/components/schemas/Outcomes"}]
                }
            }
        },
    }
    operation["responses"] = {
        "200": {"description": "The stored outcomes, in order", "content": {"application/json": {"schema": stored}}},
        "400": _error_response("Malformed JSON"),
        "413": _error_response("Body over the size limit, or more outcomes than the limit"),
        "415": _error_response("The body is not declared application/json"),
        "422": _error_response(
            "An item without the id, with a bad outcome or time, or another field (nothing is stored); or outcomes "
            "the store refuses for good"
        ),
        "503": _error_response("The outcomes could not be stored now; retry later"),
    }


def _error_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _record_schema(model_set: ServingSet, id_field: str) -> dict[str, Any]:
    readers: dict[str, list[tuple[str, Any]]] = {}
    for model in model_set.engine.all_models:
        for name, spec in model.fields.items():
            readers.setdefault(name, []).append((model.key, spec))
    properties: dict[str, Any] = {
        id_field: {
            "type": ["string", "integer"],
            "maxLength": MAX_ID_LENGTH,
            "description": "Identifies the record; stored as text (stripped of ASCII whitespace; whole numbers as "
            f"their decimal text), at most {MAX_ID_LENGTH} characters.",
        }
    }
    for name, used in readers.items():
        if name == id_field:
            continue
        variants = []
        for _, spec in used:
            schema = field_schema(spec)
            if schema not in variants:
                variants.append(schema)
        prop: dict[str, Any] = dict(variants[0]) if len(variants) == 1 else {"anyOf": variants}
        needed = {key: as_field(spec).to_dict()["required"] for key, spec in used}
        read_by = ", ".join(f"{key} ({'required' if required else 'optional'})" for key, required in needed.items())
        note = str(prop.pop("description", ""))
        prop["description"] = f"Read by {read_by}." + (f" {note[0].upper()}{note[1:]}." if note else "")
        prop["x-mlsm-models"] = [key for key, _ in used]
        prop["x-mlsm-required-by"] = [key for key, required in needed.items() if required]
        properties[name] = prop
    return {
        "type": "object",
        "required": [id_field],  # a field a model requires is not required of the record: see the description
        "properties": properties,
        "additionalProperties": True,
        "description": "One flat record: the id field and the input fields of the models (others are ignored). "
        "Only the id is required of a record: a record without a field that a model requires (x-mlsm-required-by) "
        "is still scored, and that model's slot gets `_error`.",
    }


def _document_schema(model_set: ServingSet, id_field: str) -> dict[str, Any]:
    slot = {
        "type": "object",
        "description": "The model's output plus `_status`; or `_error`, `_errors` (field, problem; for an exception "
        "also type and at) and `_status`.",
        "properties": {
            "_status": {"type": "string", "enum": ["draft", "active"]},
            "_error": {"type": "string"},
            "_errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "field": {"type": ["string", "null"]},
                        "problem": {"type": "string"},
                        "type": {"type": "string", "description": "the exception's class"},
                        "at": {"type": ["string", "null"], "description": "file:line where the model raised it"},
                    },
                },
            },
        },
        "additionalProperties": True,
    }
    by_name: dict[str, dict[str, Any]] = {}
    for model in model_set.engine.all_models:
        by_name.setdefault(model.name, {"type": "object", "properties": {}})["properties"][str(model.version)] = slot
    return {
        "type": "object",
        "properties": {
            id_field: {"type": "string", "maxLength": MAX_ID_LENGTH},
            "_current": {"type": "integer", "description": "0 for the id's newest document"},
            "_timestamp": {"type": "integer", "description": "Unix seconds"},
            "_run": {"type": "string", "description": "The service run that stored it"},
            "results": {"type": "object", "properties": by_name},
        },
    }
