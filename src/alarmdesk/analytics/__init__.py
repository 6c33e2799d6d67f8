"""The analytics store: finished calls as Parquet files, queried with DuckDB, off the live
path (docs/analytics.md, "The analytics store").

- :mod:`~alarmdesk.analytics.rows`: what the files hold (the three schemas, a call record's
  rows, the key that names a call);
- :mod:`~alarmdesk.analytics.parts`: the files themselves (a part written and renamed, the
  manifest that commits parts and carries the export's watermarks, merging, the retention
  rewrite);
- :mod:`~alarmdesk.analytics.queries`: the KPI figures over them with DuckDB, in process, no
  extension installed or loaded at run time.

Nothing here reads the database: the export service (``service/analytics.py``) reads the calls
and hands them over as call records.
"""
