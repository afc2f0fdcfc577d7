"""A bounded load test of `aduana serve` on loopback (issue 17).

Dashboard: N page requests (overview, trader list, trader pages, products)
from C concurrent clients with Basic credentials. Flight SQL: M queries
from K concurrent pyarrow.flight clients, each with its own handshake.
Prints, per surface, the error rate and the p50 / p95 / p99 latency.

usage: load_test.py --http PORT --flight PORT --user U --password P
                    [--pages 2000 --page-clients 20 --queries 1000 --query-clients 8]
"""

import argparse
import base64
import http.client
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pyarrow.flight as flight


def percentiles(values):
    if not values:
        return "n/a"
    ordered = sorted(values)

    def at(q):
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return "p50 {:.1f} ms  p95 {:.1f} ms  p99 {:.1f} ms  max {:.1f} ms".format(
        at(0.50) * 1e3, at(0.95) * 1e3, at(0.99) * 1e3, ordered[-1] * 1e3
    )


def measure(label, rate_unit, one, count, clients):
    """Runs one(i) for i < count on `clients` threads; prints errors, rate
    and latency percentiles of the calls that succeeded."""
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(one, range(count)))
    wall = time.perf_counter() - started
    errors = sum(1 for ok, _ in results if not ok)
    latencies = [t for ok, t in results if ok]
    print(
        f"{label}: errors {errors} ({100.0 * errors / count:.2f}%), "
        f"{count / wall:.0f} {rate_unit}, {percentiles(latencies)}"
    )


def dashboard(port, user, password, requests, clients):
    auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    local = threading.local()

    def connection():
        if not hasattr(local, "conn"):
            local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        return local.conn

    # Trader ids from the trader list's links.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    conn.request("GET", "/traders", headers={"Authorization": auth})
    body = conn.getresponse().read().decode()
    traders = sorted(set(part.split('"')[0] for part in body.split('href="/traders/')[1:]))
    traders = [t for t in traders if t and "/" not in t][:50] or ["unknown"]
    paths = ["/", "/traders", "/products"] + [f"/traders/{t}" for t in traders]

    def one(i):
        path = paths[i % len(paths)]
        started = time.perf_counter()
        try:
            c = connection()
            c.request("GET", path, headers={"Authorization": auth})
            response = c.getresponse()
            response.read()
            ok = response.status == 200
        except Exception:
            local.__dict__.pop("conn", None)
            ok = False
        return ok, time.perf_counter() - started

    measure(
        f"dashboard: {requests} requests, {clients} concurrent, {len(paths)} distinct pages",
        "req/s",
        one,
        requests,
        clients,
    )


QUERIES = [
    "SELECT COUNT(*) FROM declarations",
    "SELECT lane, COUNT(*) AS n FROM declarations GROUP BY lane ORDER BY lane",
    "SELECT importer_id, SUM(customs_value) AS v FROM declarations GROUP BY importer_id ORDER BY v DESC LIMIT 10",
    "SELECT * FROM reference.tariff LIMIT 100",
    "SELECT risk_level, COUNT(*) FROM risk.declaration_scores GROUP BY risk_level",
    "SELECT * FROM risk.trader_risk ORDER BY expected_revenue_at_risk DESC LIMIT 20",
]


def flight_sql(port, user, password, queries, clients):
    local = threading.local()

    def client():
        if not hasattr(local, "client"):
            c = flight.FlightClient(f"grpc://127.0.0.1:{port}")
            token = c.authenticate_basic_token(user, password)
            local.client = c
            local.options = flight.FlightCallOptions(headers=[token])
        return local.client, local.options

    def command(sql):
        # A Flight SQL CommandStatementQuery in an Any, by hand (field 1).
        def varint(n):
            out = bytearray()
            while True:
                b = n & 0x7F
                n >>= 7
                out.append(b | (0x80 if n else 0))
                if not n:
                    return bytes(out)

        def field(number, payload):
            return varint(number << 3 | 2) + varint(len(payload)) + payload

        inner = field(1, sql.encode())
        url = b"type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery"
        return field(1, url) + field(2, inner)

    def one(i):
        sql = QUERIES[i % len(QUERIES)]
        started = time.perf_counter()
        try:
            c, options = client()
            info = c.get_flight_info(flight.FlightDescriptor.for_command(command(sql)), options)
            c.do_get(info.endpoints[0].ticket, options).read_all()
            ok = True
        except Exception:
            ok = False
        return ok, time.perf_counter() - started

    measure(
        f"flight sql: {queries} queries, {clients} concurrent, {len(QUERIES)} distinct",
        "q/s",
        one,
        queries,
        clients,
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int)
    parser.add_argument("--flight", type=int)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--page-clients", type=int, default=20)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--query-clients", type=int, default=8)
    args = parser.parse_args()
    if args.http:
        dashboard(args.http, args.user, args.password, args.pages, args.page_clients)
    if args.flight:
        flight_sql(args.flight, args.user, args.password, args.queries, args.query_clients)


if __name__ == "__main__":
    main()
