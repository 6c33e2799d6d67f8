"""alarmdesk: an alarm and incident platform for public-safety operations centres."""

__version__ = "0.1.0"
