"""Harm categories: the closed list every incident type belongs to.

There is deliberately no member for assembly, protest, petition, expression, religion or
belief, ethnicity or nationality, political opinion, union activity or migration status:
alarmdesk responds to harm, not to people using their rights (docs/architecture.md, "The line
we hold"). Adding a member here is a design decision, reviewed as such.
"""

from __future__ import annotations

import enum


class HarmCategory(enum.StrEnum):
    FIRE = "fire"  # fires, smoke, fire alarms, explosions
    MEDICAL = "medical"  # illness, injury, overdose, medical alarms
    VIOLENCE = "violence"  # assault, robbery, weapons, threats to people, abduction
    PROPERTY = "property"  # burglary, theft, damage, intruder alarms, fraud against property
    TRAFFIC = "traffic"  # collisions, road hazards, vehicles
    HAZARD = "hazard"  # hazmat, gas, utilities, weather, structural, crowd-crush risk
    RESCUE = "rescue"  # water, confined space, missing person, trapped people
    EQUIPMENT = "equipment"  # device troubles, communication failures, tests
    PUBLIC_SERVICE = "public_service"  # assists, welfare checks, lost property, animals
    OTHER_HARM = "other_harm"  # harm that fits nowhere above; also unclassified alarms
