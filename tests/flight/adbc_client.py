"""ADBC (the Python driver Power BI's ADBC path shares) against `aduana serve`.

Usage: adbc_client.py URI USER PASSWORD TOKEN EXPECTED_JSON
EXPECTED_JSON holds values the Rust test computed with the engine itself.
Prints one line per check; any failure raises.
"""
import json
import sys

import adbc_driver_flightsql.dbapi as flight_sql
import adbc_driver_manager
import pyarrow as pa

uri, user, password, token, expected = sys.argv[1:6]
expected = json.loads(expected)


def connect(**kwargs):
    return flight_sql.connect(uri, db_kwargs=kwargs)


def check(name, got, want):
    assert got == want, f"{name}: got {got!r}, want {want!r}"
    print(f"ok {name}")


def failure(fn):
    try:
        fn()
    except adbc_driver_manager.Error as e:
        return e
    raise AssertionError("expected a failure")


with connect(username=user, password=password) as conn:
    cur = conn.cursor()

    cur.execute("SELECT count(*) AS n FROM declarations")
    check("count", cur.fetchone()[0], expected["items"])

    cur.execute(
        "SELECT declaration_id, item_no, hs_code, customs_value FROM declarations "
        "ORDER BY declaration_id, item_no LIMIT 5"
    )
    table = cur.fetch_arrow_table()
    check("limit rows", table.num_rows, 5)
    # Plain strings, not string views, unless the client asks for views.
    check("string type", table.schema.field("hs_code").type, pa.string())

    # A customs function (and the risk model behind the scored_items view).
    cur.execute("SELECT count(DISTINCT hs6(hs_code)) FROM declarations")
    check("udf hs6", cur.fetchone()[0], expected["distinct_hs6"])
    cur.execute("SELECT count(*) FROM scored_items WHERE risk > 0.5")
    check("risk view", cur.fetchone()[0], expected["risky"])

    # Parameters: ? (DB-API qmark), $1, $name, re-executed with new values.
    for threshold in (1000, 50000):
        cur.execute("SELECT count(*) FROM declarations WHERE customs_value > ?", (threshold,))
        check(f"qmark {threshold}", cur.fetchone()[0], expected[f"over_{threshold}"])
        cur.execute("SELECT count(*) FROM declarations WHERE customs_value > $1", (threshold,))
        check(f"dollar {threshold}", cur.fetchone()[0], expected[f"over_{threshold}"])
    named = pa.record_batch([pa.array([expected["origin"]])], names=["origin"])
    cur.execute("SELECT count(*) FROM declarations WHERE origin_country = $origin", named)
    check("named", cur.fetchone()[0], expected["from_origin"])

    # Several parameter rows in one execution: the results follow each other.
    rows = pa.table({"0": [1000, 50000]})
    cur.execute("SELECT count(*) AS n FROM declarations WHERE customs_value > ?", rows)
    check(
        "batch of parameters",
        [r[0] for r in cur.fetchall()],
        [expected["over_1000"], expected["over_50000"]],
    )
    # executemany: runs the query once per row, counting rows.
    cur.executemany(
        "SELECT declaration_id FROM declarations WHERE customs_value > ?", [(1000,), (50000,)]
    )
    check("executemany rowcount", cur.rowcount, expected["over_1000"] + expected["over_50000"])

    # A large result, streamed.
    cur.execute(
        "SELECT d.declaration_id, d.item_no, d.hs_code, d.customs_value, k.k FROM declarations d "
        "CROSS JOIN (VALUES (1), (2), (3), (4), (5)) AS k(k)"
    )
    big = cur.fetch_arrow_table()
    check("large result rows", big.num_rows, expected["items"] * 5)
    check("large result sum", pa.compute.sum(big.column("k")).as_py(), expected["items"] * 15)

    # Metadata.
    info = conn.adbc_get_info()
    check("vendor", info["vendor_name"], "Aduana")
    check("vendor version", info["vendor_version"], expected["version"])
    for depth in ("catalogs", "db_schemas", "tables", "columns", "all"):
        objects = conn.adbc_get_objects(depth=depth).read_all().to_pylist()
        catalogs = {c["catalog_name"]: c for c in objects}
        assert "aduana" in catalogs, (depth, list(catalogs))
        if depth == "catalogs":
            print(f"ok get_objects {depth}")
            continue
        schemas = {s["db_schema_name"]: s for s in catalogs["aduana"]["catalog_db_schemas"]}
        assert {"public", "reference", "reports"} <= set(schemas), (depth, list(schemas))
        if depth == "db_schemas":
            print(f"ok get_objects {depth}")
            continue
        tables = {t["table_name"]: t for t in schemas["public"]["db_schema_tables"]}
        check(f"get_objects {depth} declarations", tables["declarations"]["table_type"], "TABLE")
        check(f"get_objects {depth} scored_items", tables["scored_items"]["table_type"], "VIEW")
        if depth in ("columns", "all"):
            columns = [c["column_name"] for c in tables["declarations"]["table_columns"]]
            assert "hs_code" in columns and "customs_value" in columns, columns
            print(f"ok get_objects {depth} columns")
    objects = conn.adbc_get_objects(depth="tables", table_name_filter="decl%").read_all().to_pylist()
    names = [
        f'{s["db_schema_name"]}.{t["table_name"]}'
        for c in objects
        for s in c["catalog_db_schemas"] or []
        for t in s["db_schema_tables"] or []
    ]
    # risk.declaration_scores is there even before the first refresh (empty).
    check(
        "table filter",
        sorted(names),
        ["public.declarations", "reports.declarations_per_month", "risk.declaration_scores"],
    )
    schema = conn.adbc_get_table_schema("declarations")
    check("table schema hs_code", schema.field("hs_code").type, pa.string())
    schema = conn.adbc_get_table_schema("tariff", db_schema_filter="reference")
    assert "duty_rate" in schema.names, schema.names
    print("ok table schema reference.tariff")
    check("table types", sorted(conn.adbc_get_table_types()), ["LOCAL TEMPORARY", "TABLE", "VIEW"])

    # A report as a view and as a table function.
    cur.execute("SELECT count(*) FROM reports.declarations_per_month")
    check("report view", cur.fetchone()[0], expected["months"])
    cur.execute("SELECT count(*) FROM declarations_per_month()")
    check("report function", cur.fetchone()[0], expected["months"])

    # Errors carry the right status and a readable message.
    e = failure(lambda: cur.execute("SELEC 1"))
    assert e.status_code == adbc_driver_manager.AdbcStatusCode.INVALID_ARGUMENT, e
    assert "SQL syntax error" in str(e) and "ParserError(" not in str(e), str(e)
    print("ok syntax error")
    e = failure(lambda: cur.execute("SELECT * FROM no_such_table"))
    assert e.status_code == adbc_driver_manager.AdbcStatusCode.NOT_FOUND, e
    assert "no_such_table" in str(e), str(e)
    print("ok not found")
    # ADBC has no status of its own for RESOURCE_EXHAUSTED (its Go driver
    # reports it as INTERNAL); the server's gRPC code survives in the
    # message, and as the vendor code (8) where the driver passes one (not
    # for errors of the result stream).
    def too_large():
        cur.execute("SELECT length(repeat('x', 2000000000))")
        cur.fetchall()

    e = failure(too_large)
    assert e.vendor_code in (None, 8), (e.vendor_code, e)
    assert "ResourceExhausted" in str(e) and "repeat" in str(e), str(e)
    print("ok resource exhausted")

# A bearer token instead of a password.
with connect(**{"adbc.flight.sql.authorization_header": f"Bearer {token}"}) as conn:
    cur = conn.cursor()
    cur.execute("SELECT 41 + 1")
    check("bearer", cur.fetchone()[0], 42)

# Bad credentials.
e = failure(lambda: connect(username=user, password="wrong").cursor().execute("SELECT 1"))
assert e.status_code == adbc_driver_manager.AdbcStatusCode.UNAUTHENTICATED, e
print("ok wrong password")
e = failure(
    lambda: connect(**{"adbc.flight.sql.authorization_header": "Bearer forged"}).cursor().execute("SELECT 1")
)
assert e.status_code == adbc_driver_manager.AdbcStatusCode.UNAUTHENTICATED, e
print("ok forged token")
print("all ok")
