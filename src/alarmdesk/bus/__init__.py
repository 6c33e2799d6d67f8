"""Fan-out of committed events to live consoles."""
