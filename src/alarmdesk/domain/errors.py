"""The exception tree: every error alarmdesk raises on purpose is defined here, so the web
and the command line map errors in one place each. Every error carries a stable machine
``code`` that the HTTP API (``{"error": {"code", "message", "field"}}``) and the CLI show
unchanged, and an HTTP ``status`` (the CLI exits 2 for an ``InputError``, 3 for a
``ProtectedPurposeError``, 1 otherwise).

    AlarmdeskError                  base; code "error"
    ├── InputError                  bad input from outside (HTTP 4xx, CLI exit 2)
    │   ├── MalformedInput          not decodable at all (malformed_json)
    │   ├── InvalidField            a field is missing, of the wrong type or out of range
    │   ├── PayloadTooLarge         a body or payload over its limit (413)
    │   ├── InvalidCap              a CAP document the OASIS schema (or our safe parser) refuses
    │   ├── JustificationRequired   a search or export without a stated reason (400)
    │   ├── UnknownUnit             a dispatch names a unit that does not exist
    │   ├── UnknownIncidentType     a reclassification names a code not in the taxonomy
    │   ├── ProtectedPurposeError   a type, rule or name targets people exercising rights
    │   ├── UnknownCategoryError    a category outside the closed list of harm categories
    │   ├── SpecialCategoryError    a field or name that would hold special-category data
    │   ├── ConfigError             the configuration file or environment is not valid
    │   ├── SetupError              a centre's set-up files break a rule (code: the rule's)
    │   ├── MappingError            a CAD history mapping file that cannot be used
    │   └── RetentionPolicyError    a retention setting that cannot be accepted
    │       └── RetentionCeilingError   a period longer than its ceiling
    ├── Unauthenticated             no valid credentials (401)
    ├── Forbidden                   valid credentials, not allowed (403)
    ├── TooManyAttempts             sign-in throttled (429)
    ├── NotFound                    the object does not exist (404)
    ├── Gone                        it existed, and its retention period has passed (410)
    ├── Conflict                    the request is valid but the state forbids it (409)
    │   ├── InvalidTransition       the command is not allowed in the incident's status
    │   ├── VersionConflict         someone else changed the incident first
    │   ├── SopIncomplete           resolving with a mandatory procedure step open
    │   ├── UnitUnavailable         the unit is already committed elsewhere
    │   ├── IdempotencyKeyReused    the same key came with different content
    │   └── StoredSetupInvalid      a stored set-up item no set-up file could hold
    ├── BadGateway                  a system alarmdesk fetches from failed (Frigate; 502)
    └── Unavailable                 alarmdesk cannot serve now (503)
        ├── SchemaNotReady          the database schema is not the one the code needs
        ├── WriterStopped           the writer is not running (shutting down, or failed)
        ├── IntakeUnavailable       the intake log (NATS JetStream) did not take the signal
        ├── LeaseLost               this node no longer holds the lease its work needs
        └── AnalyticsUnavailable    the analytics store's directory cannot be used

The errors raised while validating configuration also derive from ``ValueError``: msgspec
turns a ``ValueError`` raised in a ``__post_init__`` into a validation error with its path.
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


class InvalidCap(InputError):
    """A CAP 1.2 document that is not well-formed, carries a DTD, or breaks the OASIS schema.

    ``field`` is the path of the offending element (``/cap:alert/cap:scope``) where the
    schema names one; the message says why.
    """

    code = "invalid_cap"


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

    def __init__(self, message: str, *, field: str | None = None, code: str = "not_found"):
        super().__init__(message, field=field)
        self.code = code


class Gone(AlarmdeskError):
    """The object existed, and the retention policy has erased it or its period has passed."""

    code = "gone"
    status = 410

    def __init__(self, message: str, *, field: str | None = None, code: str = "gone"):
        super().__init__(message, field=field)
        self.code = code


class BadGateway(AlarmdeskError):
    """A system alarmdesk fetches from on the caller's behalf (Frigate) did not answer, or
    answered with something alarmdesk will not pass on; ``code`` says which."""

    code = "bad_gateway"
    status = 502

    def __init__(self, message: str, *, field: str | None = None, code: str = "bad_gateway"):
        super().__init__(message, field=field)
        self.code = code


class Conflict(AlarmdeskError):
    code = "conflict"
    status = 409


class InvalidTransition(Conflict):
    """Raised with the expected and actual status, so the caller can show both."""

    code = "invalid_transition"


class VersionConflict(Conflict):
    code = "version_conflict"


class SopIncomplete(Conflict):
    """Resolving with a mandatory procedure step still open."""

    code = "sop_incomplete"


class UnitUnavailable(Conflict):
    code = "unit_unavailable"


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"


class StoredSetupInvalid(Conflict):
    """An item of the stored set-up that its spec refuses (written into the database by other
    means than an apply): it cannot be shown or changed item by item until corrected."""

    code = "setup_invalid"


class ProtectedPurposeError(InputError, ValueError):
    """A field targets people exercising rights rather than a harm.

    Attributes: ``rule`` (e.g. "assembly.protest"), ``term`` (the matched term, normalised)
    and ``field`` (e.g. "name", "terms"). ``target`` says in words what the rule protects.
    """

    code = "protected_purpose"

    def __init__(
        self, field: str, rule: str, term: str, target: str = "people exercising rights"
    ) -> None:
        super().__init__(
            f"refused: '{field}' targets {target} (rule {rule}, matched '{term}'); "
            "alarmdesk responds to harm, not to people exercising rights",
            field=field,
        )
        self.rule = rule
        self.term = term


class UnknownCategoryError(InputError, ValueError):
    """A category that is not one of the closed list of harm categories (``allowed``)."""

    code = "unknown_category"

    def __init__(self, value: object, field: str = "category", allowed: str = "") -> None:
        super().__init__(
            f"refused: '{field}' {value!r} is not a harm category (one of: {allowed})",
            field=field,
        )
        self.value = value


class SpecialCategoryError(InputError, ValueError):
    """A field, column, property or name that would hold special-category data."""

    code = "special_category"

    def __init__(self, where: str, name: str, why: str) -> None:
        super().__init__(
            f"refused: {where} {name!r} names special-category data ({why}); "
            "alarmdesk never holds it",
            field=name,
        )
        self.where, self.name, self.why = where, name, why


class ConfigError(InputError, ValueError):
    """The configuration file or the environment cannot be used."""

    code = "invalid_config"


class RetentionPolicyError(InputError, ValueError):
    """A retention setting that cannot be accepted; ``code`` and ``field`` say which."""

    code = "invalid_retention"


class RetentionCeilingError(RetentionPolicyError):
    """A period longer than its ceiling: lengthening retention past it is refused."""

    code = "retention_ceiling"


class Unavailable(AlarmdeskError):
    """alarmdesk cannot serve the request now; trying again later may work."""

    code = "unavailable"
    status = 503


class SchemaNotReady(Unavailable):
    """The database schema is not at the revision the code needs (`alarmdesk db upgrade`)."""

    code = "schema_not_ready"


class WriterStopped(Unavailable):
    """The writer is not running: nothing can be stored until it is."""

    code = "writer_stopped"


class IntakeUnavailable(Unavailable):
    """Distributed mode: JetStream did not confirm that it stored the signal (no server,
    no stream, a timeout). Nothing is acknowledged: the sender must send it again."""

    code = "intake_unavailable"


class LeaseLost(Unavailable):
    """This node's lease on the work (a partition, the writer) expired or passed to another
    node: the work is left for the holder."""

    code = "lease_lost"


class AnalyticsUnavailable(Unavailable):
    """The analytics store's directory cannot be used: not writable, a manifest that cannot
    be read, or the store of another database (docs/analytics.md, "The analytics store")."""

    code = "analytics_unavailable"


class SetupError(InputError):
    """A set-up the files describe cannot be applied; ``where`` is ``file:line``.

    The code is the code of the rule that refused it (``protected_purpose``,
    ``unknown_category``, ``invalid_value``, ``duplicate_id``, ``unknown_reference``,
    ``in_use``…), so a refused purpose reads the same here as everywhere else.
    """

    def __init__(self, message: str, *, code: str, where: str = "", field: str | None = None):
        super().__init__(f"{where}: {message}" if where else message, field=field)
        self.code = code
        self.where = where
        self.rule = ""


class MappingError(InputError, ValueError):
    """A CAD history mapping (``domain/history/mapping.py``) that cannot be used.

    ``field`` is the dotted key of the mapping file that is wrong (``times.timezone``,
    ``type.values."Medical Incident"``), or the column a file lacks; the message names it too.
    """

    code = "invalid_mapping"
