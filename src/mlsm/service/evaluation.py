"""The service's evaluation endpoints: outcomes in (``POST /v1/outcomes``), the report out (``GET /report``).

``POST /v1/outcomes`` takes one outcome, ``{"<id field>": ..., "outcome": ..., "at": ...}``, or many,
``{"outcomes": [...], "positive": [...]}`` (``positive`` optional), read by the rules of ``mlsm outcomes load``
(:mod:`mlsm.evaluation.outcomes`): the id by the one id rule; the outcome 0/1, true/false, yes/no in any case, or
with ``positive`` 1 for those labels and 0 for any other value; ``at`` ISO 8601 (UTC without a zone) or unix seconds,
and when it is left out the time of the request. An item breaking a rule, or holding another field (a misspelt
``at`` would otherwise be the time of the request), refuses the whole request (422 naming the item and why) and
nothing is stored, as ``POST /v1/score`` refuses a record without an id.

``GET /report`` is ``mlsm report``'s page for the service's store, built from a read-only connection of its own.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from mlsm.errors import InvalidOutcome, MlsmError, RequestError
from mlsm.evaluation.outcomes import NAMES, OutcomeRules, parse_at
from mlsm.service._bodies import check_text, decode_json, json_kind, record_id
from mlsm.stores.base import split_model
from mlsm.stores.outcomes import Outcome

__all__ = ["SOURCE", "outcomes_answer", "report_options", "request_outcomes"]

#: The ``source`` of the outcomes the service stores (``mlsm outcomes load`` records its input file there).
SOURCE = "service"
_BATCH = "outcomes"
_POSITIVE = "positive"


def request_outcomes(body: bytes, id_field: str, max_records: int, *, now: float | None = None) -> list[Outcome]:
    """The outcomes of a ``POST /v1/outcomes`` body, every item checked (``now``: the request's time, the decision
    time of items without ``at``); ``RequestError`` 400/413/422 naming the first problem."""
    value = decode_json(body)
    if not isinstance(value, dict):
        raise RequestError(
            422, f'expected a JSON object (one outcome) or {{"outcomes": [...]}}, got {json_kind(value)}'
        )
    single = _BATCH not in value or id_field == _BATCH
    items: list[Any] = [value] if single else _batch_items(value)
    if len(items) > max_records:
        raise RequestError(
            413, f"{len(items)} outcomes is over the limit of {max_records} a request: send them in several requests"
        )
    rules = OutcomeRules(
        positive=None if single else _positive(value.get(_POSITIVE)),
        loaded_at=time.time() if now is None else now,
        source=SOURCE,
    )
    allowed = (id_field, *NAMES)
    found = []
    for i, item in enumerate(items):
        where = "the outcome" if single else f"outcomes[{i}]"
        if not isinstance(item, dict):
            raise RequestError(422, f"{where} must be a JSON object (one outcome), got {json_kind(item)}")
        check_text(item, where)
        unknown = [name for name in item if name not in allowed]
        if unknown:
            raise RequestError(
                422,
                f"{where}: unknown field {unknown[0]!r}; an outcome has {id_field!r} (the id field), 'outcome' "
                "and optionally 'at' (the decision time; without it, now)",
            )
        id_text = record_id(item, id_field, where)
        try:
            outcome, at = NAMES
            found.append(rules.outcome(id_text, item.get(outcome), item.get(at), has_at=at in item))
        except InvalidOutcome as exc:
            reason = str(exc).replace("with --positive", 'with "positive": [...] beside "outcomes"')
            raise RequestError(422, f"{where}: {reason}") from None
    return found


def _batch_items(value: dict[str, Any]) -> list[Any]:
    other = [name for name in value if name not in (_BATCH, _POSITIVE)]
    if other:
        raise RequestError(
            422,
            f'unknown key {other[0]!r} beside "outcomes": send one outcome, or {{"outcomes": [...]}} with '
            'optionally "positive": [labels meaning 1]',
        )
    items = value[_BATCH]
    if not isinstance(items, list):
        raise RequestError(422, f'"outcomes" must be a list of JSON objects, got {json_kind(items)}')
    if not items:
        raise RequestError(422, '"outcomes" is empty: send at least one outcome')
    return items


def _positive(value: Any) -> frozenset[str] | None:
    """The labels meaning 1 (None: the 0/1, true/false, yes/no words); ``RequestError`` 422 unless a list of text."""
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise RequestError(422, f'"positive" must be a non-empty list of labels (strings), got {json_kind(value)}')
    return frozenset(value)


def outcomes_answer(outcomes: Sequence[Outcome], id_field: str) -> dict[str, Any]:
    """What ``POST /v1/outcomes`` answers once they are stored: how many, and each as stored (``at`` in unix
    seconds, ``label`` the value as sent)."""
    return {
        "stored": len(outcomes),
        "outcomes": [{id_field: o.id, "outcome": o.outcome, "at": o.at, "label": o.label} for o in outcomes],
    }


def report_options(
    *,
    as_of: str,
    key: str,
    models: Sequence[str] | None,
    since: str | None,
    until: str | None,
    mature_days: float | None,
    reference: str | None = None,
    current: str | None = None,
) -> dict[str, Any]:
    """``GET /report``'s query parameters as :func:`mlsm.evaluation._assemble.report_page`'s options
    (``since``/``until`` by the decision-time rule, ``model`` as NAME@VERSION, the drift table's runs both or
    neither); ``RequestError`` 422 naming a bad one."""
    if bool(reference) != bool(current):
        raise RequestError(422, "give both query parameters 'reference' and 'current' (runs) for drift, or neither")
    options: dict[str, Any] = {"as_of": as_of, "key": key, "models": models or None, "mature_days": mature_days}
    if reference and current:
        options.update(reference=reference, current=current)
    for name, text in (("since", since), ("until", until)):
        if text is not None:
            try:
                options[name] = parse_at(text)
            except InvalidOutcome as exc:
                raise RequestError(422, f"invalid query parameter {name!r} = {text!r}: {exc}") from None
    for model in models or ():
        try:
            split_model(model)
        except MlsmError as exc:
            raise RequestError(422, f"invalid query parameter 'model' = {model!r}: {exc}") from None
    return options
