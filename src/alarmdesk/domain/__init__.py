"""The pure model: signals, incidents and their state machine, the taxonomy, errors.

Nothing in here does I/O or imports a framework; ruff's banned-api rule enforces it
(see ``ruff.toml`` beside this file).
"""
