"""``python -m alarmdesk.cli``."""

from alarmdesk.cli import main

main()
