"""Safeguards: tamper-evident audit log primitives and other protections against misuse."""
