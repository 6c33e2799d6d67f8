"""Formats alarmdesk speaks to other agencies' systems (NENA EIDO; CAP and webhooks to come).

The mappings are pure functions from alarmdesk's own views to the other format: no I/O, so the
services decide what is read, who may receive it and what the audit log records.
"""
