"""Persistence: SQLAlchemy Core tables, the group-commit writer, queries, migrations.

SQLite (WAL, synchronous=FULL) is the embedded default; PostgreSQL via psycopg 3 is the
production store. Same tables, same code, the URL decides.
"""
