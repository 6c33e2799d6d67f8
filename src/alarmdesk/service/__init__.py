"""The use cases: handlers (a signal or a command in, events out), the group-commit writer that
runs them one transaction each with their audit entries, accounts, custom types, the retention
job and report assembly. Entrypoints (web, cli) call these; these call the adapters."""
