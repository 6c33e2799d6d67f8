"""Intake adapters: the outside world (panels, cameras, feeds) turned into Signals."""
