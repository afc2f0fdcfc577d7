"""Raw Flight SQL calls with pyarrow.flight, in the order the Flight SQL JDBC
driver (DBeaver, Tableau, Superset's JDBC path) makes them, plus the write
paths a read-only endpoint must refuse, session options and cancellation.

Usage: jdbc_sequence.py HOST PORT USER PASSWORD FORBIDDEN_PATH EXPECTED_JSON
"""
import json
import sys

import pyarrow as pa
import pyarrow.flight as fl
from google.protobuf import any_pb2
from flightsql import flightsql_pb2 as sql

host, port, user, password, forbidden_path, expected = sys.argv[1:7]
expected = json.loads(expected)
client = fl.FlightClient(f"grpc://{host}:{port}")


def check(name, got, want):
    assert got == want, f"{name}: got {got!r}, want {want!r}"
    print(f"ok {name}")


def packed(message):
    any_message = any_pb2.Any()
    any_message.Pack(message)
    return any_message.SerializeToString()


def descriptor(message):
    return fl.FlightDescriptor.for_command(packed(message))


def fetch(options, message):
    info = client.get_flight_info(descriptor(message), options)
    return info, client.do_get(info.endpoints[0].ticket, options).read_all()


def action(options, kind, message):
    results = list(client.do_action(fl.Action(kind, packed(message)), options))
    return results


def refused(options, code_error, fn, name):
    try:
        fn()
    except code_error as e:
        print(f"ok {name}: {str(e).splitlines()[0][:100]}")
        return str(e)
    raise AssertionError(f"{name}: expected {code_error.__name__}")


# 1. Handshake with Basic credentials: a bearer token comes back.
header = client.authenticate_basic_token(user, password)
check("handshake header", header[0], b"authorization")
assert header[1].startswith(b"Bearer "), header
options = fl.FlightCallOptions(headers=[header])

# 2. GetSqlInfo, all of it, before any other metadata call.
_, info = fetch(options, sql.CommandGetSqlInfo())
values = {row["info_name"]: row["value"] for row in info.to_pylist()}
check("server name", values[sql.FLIGHT_SQL_SERVER_NAME], "Aduana")
check("read only", values[sql.FLIGHT_SQL_SERVER_READ_ONLY], True)
check("quote char", values[sql.SQL_IDENTIFIER_QUOTE_CHAR], '"')
assert len(values) > 40, len(values)

# 3. getColumns: GetTables with include_schema, no catalog.
_, tables = fetch(
    options,
    sql.CommandGetTables(table_name_filter_pattern="declarations", include_schema=True),
)
check("get tables rows", tables.num_rows, 1)
row = tables.to_pylist()[0]
check("get tables catalog", row["catalog_name"], "aduana")
check("get tables schema", row["db_schema_name"], "public")
schema = pa.ipc.read_schema(pa.py_buffer(row["table_schema"]))
check("declared hs_code type", schema.field("hs_code").type, pa.string())
_, views = fetch(options, sql.CommandGetTables(table_types=["VIEW"], db_schema_filter_pattern="rep%"))
assert views.num_rows >= 5, views.to_pylist()
assert set(views.column("table_type").to_pylist()) == {"VIEW"}
print("ok report views listed")
_, catalogs = fetch(options, sql.CommandGetCatalogs())
check("catalogs", catalogs.column("catalog_name").to_pylist(), ["aduana"])
_, schemas = fetch(options, sql.CommandGetDbSchemas(catalog="aduana", db_schema_filter_pattern="re%"))
check("schemas filtered", sorted(schemas.column("db_schema_name").to_pylist()), ["reference", "reports"])
_, types = fetch(options, sql.CommandGetXdbcTypeInfo())
assert "VARCHAR" in types.column("type_name").to_pylist()
print("ok xdbc type info")

# 4. A plain query, run as a prepared statement (the JDBC driver's way).
created = action(
    options,
    "CreatePreparedStatement",
    sql.ActionCreatePreparedStatementRequest(
        query="SELECT hs_code, count(*) AS n FROM declarations GROUP BY hs_code ORDER BY n DESC, hs_code LIMIT 3"
    ),
)
result_any = any_pb2.Any()
result_any.ParseFromString(created[0].body.to_pybytes())
result = sql.ActionCreatePreparedStatementResult()
result_any.Unpack(result)
dataset = pa.ipc.read_schema(pa.py_buffer(result.dataset_schema))
check("prepared dataset schema", dataset.names, ["hs_code", "n"])
check("prepared hs_code type", dataset.field("hs_code").type, pa.string())
handle = result.prepared_statement_handle
for attempt in (1, 2):
    info, table = fetch(options, sql.CommandPreparedStatementQuery(prepared_statement_handle=handle))
    check(f"prepared run {attempt}", table.column("hs_code").to_pylist(), expected["top_hs"])
    check(f"prepared schema {attempt}", info.schema.field("hs_code").type, pa.string())
action(options, "ClosePreparedStatement", sql.ActionClosePreparedStatementRequest(prepared_statement_handle=handle))

# 5. getPrimaryKeys (Tableau): empty, with the right columns.
_, keys = fetch(options, sql.CommandGetPrimaryKeys(table="declarations"))
check("primary keys", (keys.num_rows, keys.schema.names[3]), (0, "column_name"))

# 6. A ticket is used once.
info = client.get_flight_info(descriptor(sql.CommandStatementQuery(query="SELECT 1 AS one")), options)
check("first do_get", client.do_get(info.endpoints[0].ticket, options).read_all().num_rows, 1)
# pyarrow raises NOT_FOUND as ArrowKeyError.
message = refused(options, pa.ArrowKeyError, lambda: client.do_get(info.endpoints[0].ticket, options).read_all(), "ticket reuse")
assert "already used" in message, message

# 7. Session options: the JDBC driver's catalog= and schema= URL options.
# pyarrow has no binding for these messages: they are encoded by hand.
def field(number, payload):
    out, n = bytearray([number << 3 | 2]), len(payload)
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out) + payload


def varint(data, i):
    """The varint at data[i:], and the index after it."""
    value, shift = 0, 0
    while True:
        value |= (data[i] & 0x7F) << shift
        i, shift = i + 1, shift + 7
        if not data[i - 1] & 0x80:
            return value, i


def fields(data):
    """(number, value) pairs of a protobuf message: varints and bytes."""
    i, out = 0, []
    while i < len(data):
        key, i = varint(data, i)
        value, i = varint(data, i)
        if key & 7 == 2:
            value, i = data[i : i + value], i + value
        out.append((key >> 3, value))
    return out


def option(name, text):
    return field(1, field(1, name.encode()) + field(2, field(1, text.encode())))


body = option("catalog", "aduana") + option("schema", "reference") + option("bogus", "x")
results = list(client.do_action(fl.Action("SetSessionOptions", body), options))
errors = {}
for number, entry in fields(results[0].body.to_pybytes()):
    parts = dict(fields(entry))
    errors[parts[1].decode()] = dict(fields(parts.get(2, b""))).get(1, 0)
check("session option errors", errors, {"bogus": 1})  # INVALID_NAME
body = option("schema", "no_such_schema")
results = list(client.do_action(fl.Action("SetSessionOptions", body), options))
entry = dict(fields(dict(fields(results[0].body.to_pybytes()))[1]))
check("bad schema value", dict(fields(entry[2])).get(1), 2)  # INVALID_VALUE

# 8. Every write path is refused with PERMISSION_DENIED.
writes = [
    f"COPY (SELECT 1 AS x) TO '{forbidden_path}' STORED AS CSV",
    f"EXPLAIN ANALYZE COPY (SELECT 1 AS x) TO '{forbidden_path}' STORED AS CSV",
    "CREATE EXTERNAL TABLE pw (line VARCHAR) STORED AS CSV LOCATION '/etc/passwd'",
    "CREATE TABLE t AS SELECT 1 AS x",
    "CREATE VIEW v AS SELECT 1 AS x",
    "INSERT INTO declarations SELECT * FROM declarations LIMIT 1",
    "DELETE FROM declarations",
    "DROP TABLE declarations",
    "SET datafusion.execution.target_partitions = 1",
    "PREPARE p AS SELECT 1",
]
for statement in writes:
    refused(
        options,
        fl.FlightUnauthorizedError,
        lambda: client.get_flight_info(descriptor(sql.CommandStatementQuery(query=statement)), options),
        f"refuse {statement.split()[0]} {statement.split()[1]}",
    )
    refused(
        options,
        fl.FlightUnauthorizedError,
        lambda: action(options, "CreatePreparedStatement", sql.ActionCreatePreparedStatementRequest(query=statement)),
        f"refuse prepared {statement.split()[0]}",
    )


def put_update(statement):
    writer, reader = client.do_put(
        descriptor(sql.CommandStatementUpdate(query=statement)), pa.schema([]), options
    )
    writer.done_writing()
    reader.read()
    writer.close()


refused(options, fl.FlightUnauthorizedError, lambda: put_update("DELETE FROM declarations"), "refuse update")


def put_ingest():
    batch = pa.record_batch([pa.array([1])], names=["x"])
    # CommandStatementIngest { table = 2 }, newer than this pb2 module.
    command = field(1, b"type.googleapis.com/arrow.flight.protocol.sql.CommandStatementIngest") + field(
        2, field(2, b"declarations")
    )
    writer, reader = client.do_put(fl.FlightDescriptor.for_command(command), batch.schema, options)
    writer.write_batch(batch)
    writer.done_writing()
    reader.read()
    writer.close()


refused(options, fl.FlightUnauthorizedError, put_ingest, "refuse ingest")
# Local files are not tables.
message = refused(
    options,
    pa.ArrowKeyError,
    lambda: client.get_flight_info(descriptor(sql.CommandStatementQuery(query="SELECT * FROM '/etc/passwd'")), options),
    "no file tables",
)
assert "/etc/passwd" in message and "root:" not in message, message

# 9. CancelFlightInfo on a planned query: its ticket is void. (Cancelling a
# running query is tested from Rust: pyarrow's client thread does not return
# after a cancelled DoGet.)
slow = "SELECT count(*) FROM declarations a CROSS JOIN declarations b WHERE a.customs_value > b.customs_value"
info = client.get_flight_info(descriptor(sql.CommandStatementQuery(query=slow)), options)
# CancelFlightInfoRequest { info = 1 }; the result's status 1 is CANCELLED.
results = list(client.do_action(fl.Action("CancelFlightInfo", field(1, info.serialize())), options))
check("cancel status", dict(fields(results[0].body.to_pybytes())).get(1), 1)
refused(options, pa.ArrowKeyError, lambda: client.do_get(info.endpoints[0].ticket, options).read_all(), "cancelled ticket")

# 10. Bad credentials.
refused(None, fl.FlightUnauthenticatedError, lambda: client.authenticate_basic_token(user, "wrong"), "wrong password")
refused(
    None,
    fl.FlightUnauthenticatedError,
    lambda: fetch(fl.FlightCallOptions(), sql.CommandGetCatalogs()),
    "no credentials",
)
print("all ok")
