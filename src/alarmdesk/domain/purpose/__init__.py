"""Purpose screening: the one policy that decides whether a purpose is admissible.

Every incident type, routing or grouping rule, saved search, report filter and MQTT topic
mapping states a purpose, and whatever defines one passes its texts through :func:`screen`
(or :func:`is_admissible`): a purpose may not target people exercising their rights
(docs/architecture.md, "The line we hold").

Two modules: :mod:`~alarmdesk.domain.purpose.terms` (the protected-term and watched-subject
tables, their loading and indexing, and the normalisation and readings of a text) and
:mod:`~alarmdesk.domain.purpose.screening` (finding terms in a text, the policy that
refuses a purpose, and the rule over names and camera labels that identify people or name
special-category data: :func:`identifying_labels`, :func:`is_special_name`). Import from here;
the public names are re-exported below.
"""

from alarmdesk.domain.errors import ProtectedPurposeError, UnknownCategoryError
from alarmdesk.domain.purpose.screening import (
    IDENTIFYING_LABELS,
    PROTECTED_PURPOSE,
    SPECIAL_PHRASES,
    SPECIAL_WORDS,
    UNKNOWN_CATEGORY,
    Match,
    Verdict,
    check_category,
    find_protected,
    identifying_labels,
    is_admissible,
    is_special_name,
    name_words,
    screen,
)
from alarmdesk.domain.purpose.terms import (
    RULES,
    WATCHED_KINDS,
    WATCHED_SUBJECTS,
    normalise,
    term_counts,
    variants,
    watched_term_counts,
)

__all__ = [
    "IDENTIFYING_LABELS",
    "PROTECTED_PURPOSE",
    "RULES",
    "SPECIAL_PHRASES",
    "SPECIAL_WORDS",
    "UNKNOWN_CATEGORY",
    "WATCHED_KINDS",
    "WATCHED_SUBJECTS",
    "Match",
    "ProtectedPurposeError",
    "UnknownCategoryError",
    "Verdict",
    "check_category",
    "find_protected",
    "identifying_labels",
    "is_admissible",
    "is_special_name",
    "name_words",
    "normalise",
    "screen",
    "term_counts",
    "variants",
    "watched_term_counts",
]
