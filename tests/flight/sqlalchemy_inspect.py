"""Superset's view of the server: SQLAlchemy (< 2) inspection through
flightsql-dbapi, then a query.

Usage: sqlalchemy_inspect.py HOST PORT USER PASSWORD ITEMS
"""
import sys

import flightsql.sqlalchemy  # registers the datafusion+flightsql dialect
import sqlalchemy
from sqlalchemy import inspect

host, port, user, password, items = sys.argv[1:6]
engine = sqlalchemy.create_engine(
    f"datafusion+flightsql://{user}:{password}@{host}:{port}?insecure=true"
)
inspector = inspect(engine)
schemas = inspector.get_schema_names()
assert {"public", "reference", "reports"} <= set(schemas), schemas
print("ok schemas")
tables = inspector.get_table_names(schema="public")
assert "declarations" in tables, tables
print("ok tables")
columns = {c["name"]: c for c in inspector.get_columns("declarations", schema="public")}
assert "hs_code" in columns and "customs_value" in columns, list(columns)
assert isinstance(columns["hs_code"]["type"], sqlalchemy.types.String), columns["hs_code"]
print("ok columns")
with engine.connect() as conn:
    n = conn.execute(sqlalchemy.text("SELECT count(*) FROM declarations")).scalar()
    assert n == int(items), (n, items)
print("ok query")
print("all ok")
