"""Field-level validation errors, shared by the service layer and the web forms.

A :class:`FormError` carries one message per field, so a web form can show each message beside
its field and the JSON API can return them as ``{"error": ..., "fields": {...}}``. Messages
never repeat the submitted value (it may be personal data).
"""

from __future__ import annotations

__all__ = ["FieldMessage", "FormError", "field_message", "validate"]

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from brygga.errors import InputError

M = TypeVar("M", bound=BaseModel)

_MESSAGES = {
    "missing": "is required",
    "string_too_long": "is too long (at most {max_length} characters)",
    "string_too_short": "is required",
    "too_long": "has more than {max_length} items (the limit)",
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "greater_than_equal": "must be at least {ge}",
    "less_than_equal": "must be at most {le}",
    "date_from_datetime_parsing": "must be a date written YYYY-MM-DD",
    "date_parsing": "must be a date written YYYY-MM-DD",
    "date_type": "must be a date written YYYY-MM-DD",
    "bool_parsing": "must be yes or no",
    "literal_error": "must be one of {expected}",
    "extra_forbidden": "unknown field",
    "too_short": "is required",
    "list_type": "must be a list",
    "string_type": "must be text",
    "json_invalid": "is not valid JSON",
    "model_attributes_type": "must be an object",
    "dict_type": "must be an object",
    "enum": "must be one of {expected}",
    "url_parsing": "must be a web address",
}


class FieldMessage(str):
    """An English field message that remembers its template and values, so a page can show it
    in the reader's language (``brygga.messages.localize``); the JSON API sends the text."""

    template: str
    params: dict[str, Any]

    def __new__(cls, template: str, params: dict[str, Any] | None = None) -> FieldMessage:
        params = dict(params or {})
        message = super().__new__(cls, template.format(**params) if params else template)
        message.template = template
        message.params = params
        return message


class FormError(InputError):
    """Invalid input, with one message per field (``fields``: field name -> message)."""

    http_status = 422

    def __init__(self, fields: dict[str, str], message: str | None = None) -> None:
        self.fields = fields
        summary = "; ".join(f"{k}: {v}" for k, v in fields.items())
        super().__init__(message or f"invalid input: {summary}")


def field_message(error: Any) -> str:
    """One pydantic error (an item of ``ValidationError.errors()``) as a field message."""
    kind = error["type"]
    if kind == "value_error":
        cause = error["ctx"]["error"]
        first = cause.args[0] if getattr(cause, "args", None) else None
        return first if isinstance(first, FieldMessage) else FieldMessage(str(cause))
    template = _MESSAGES.get(kind)
    if template is None:
        return error["msg"][0].lower() + error["msg"][1:]
    params = {k: v for k, v in error.get("ctx", {}).items() if f"{{{k}}}" in template}
    return FieldMessage(template, params)


def validate(model: type[M], data: dict[str, Any]) -> M:
    """``model.model_validate(data)``, with errors as one :class:`FormError`."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fields: dict[str, str] = {}
        for error in exc.errors():
            name = ".".join(str(p) for p in error["loc"]) or "form"
            fields.setdefault(name, field_message(error))
        raise FormError(fields) from None
