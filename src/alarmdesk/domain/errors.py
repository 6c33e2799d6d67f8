"""The exception tree. Every error carries a stable machine ``code`` that the HTTP API
(``{"error": {"code", "message", "field"}}``) and the CLI show unchanged.

    AlarmdeskError                  base; code "error"
    ├── InputError                  bad input from outside (HTTP 4xx, CLI exit 2)
    │   ├── MalformedInput          not decodable at all (malformed_json)
    │   ├── InvalidField            a field is missing, of the wrong type or out of range
    │   ├── PayloadTooLarge         a body or payload over its limit (413)
    │   ├── JustificationRequired   a search or export without a stated reason (400)
    │   ├── UnknownUnit             a dispatch names a unit that does not exist
    │   └── UnknownIncidentType     a reclassification names a code not in the taxonomy
    ├── Unauthenticated             no valid credentials (401)
    ├── Forbidden                   valid credentials, not allowed (403)
    ├── TooManyAttempts             sign-in throttled (429)
    ├── NotFound                    the object does not exist (404)
    └── Conflict                    the request is valid but the state forbids it (409)
        ├── InvalidTransition       the command is not allowed in the incident's status
        ├── VersionConflict         someone else changed the incident first
        ├── UnitUnavailable         the unit is already committed elsewhere
        └── IdempotencyKeyReused    the same key came with different content

Purpose screening raises ``alarmdesk.domain.purpose.ProtectedPurposeError`` (code
``protected_purpose``), kept beside its policy.
"""

from __future__ import annotations


class AlarmdeskError(Exception):
    """Base of every error alarmdesk raises on purpose."""

    code = "error"
    status = 500

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def as_dict(self) -> dict[str, object]:
        return {"error": {"code": self.code, "message": self.message, "field": self.field}}


class InputError(AlarmdeskError):
    code = "invalid_input"
    status = 422


class MalformedInput(InputError):
    code = "malformed_json"
    status = 400


class InvalidField(InputError):
    """A field is missing, of the wrong type, or out of range. ``code`` says which."""

    def __init__(self, message: str, *, field: str | None = None, code: str = "invalid_field"):
        super().__init__(message, field=field)
        self.code = code


class PayloadTooLarge(InputError):
    code = "payload_too_large"
    status = 413


class JustificationRequired(InputError):
    """A search beyond the live queue, or an export, without a stated reason."""

    code = "justification_required"
    status = 400


class UnknownUnit(InputError):
    code = "unknown_unit"


class UnknownIncidentType(InputError):
    code = "unknown_incident_type"


class Unauthenticated(AlarmdeskError):
    code = "unauthenticated"
    status = 401


class Forbidden(AlarmdeskError):
    code = "forbidden"
    status = 403


class TooManyAttempts(AlarmdeskError):
    code = "too_many_attempts"
    status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotFound(AlarmdeskError):
    code = "not_found"
    status = 404


class Conflict(AlarmdeskError):
    code = "conflict"
    status = 409


class InvalidTransition(Conflict):
    """Raised with the expected and actual status, so the caller can show both."""

    code = "invalid_transition"


class VersionConflict(Conflict):
    code = "version_conflict"


class UnitUnavailable(Conflict):
    code = "unit_unavailable"


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"
