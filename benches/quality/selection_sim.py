#!/usr/bin/env python3
"""Selection under capacity, replayed month by month: does exploration keep
the learned model honest?

    benches/quality/selection_sim.py WAREHOUSE [WAREHOUSE...] --start 2025-11-01 [--months 12]
        [--capacity red=15] [--explore 0,0.05,0.1,0.2] [--strategy random|novelty|proportional|evidence]
        [--aduana BIN]

For each exploration share, on a fresh copy of WAREHOUSE (a generated one:
its `_truth/` is the ground truth):

1. inspections from --start on are removed: from then on, only what
   Aduana selects is inspected;
2. each month: `aduana model build --through` the day before the month
   (the retraining a nightly refresh does), `aduana select` every day of
   the month under the capacity, then the ground truth of the selected
   items, and of those only, is revealed as inspections dated the day of
   selection (as inspections would reveal it);
3. per month: precision (frauds found / controls) and the share of the
   month's fraud revenue the controls recovered; at the end, the fraud
   rate of all items as `fraud_rate_estimate` estimates it from the random
   controls, against the true rate.

With several warehouses, each is replayed as above (in WORK/1-NAME,
WORK/2-NAME, ...) and a summary compares every exploration share with the
first one given (exploitation alone when it is 0), warehouse by
warehouse: the mean share of the fraud revenue recovered over the
replayed months, the mean paired difference with its standard error, and
on how many warehouses the share recovered more (and as much, to three
decimals). One warehouse's replay is one draw of its fraud: a difference
smaller than about two standard errors is not one the replays can tell
from none.

Generate the drifting warehouse of the README with
`aduana generate --out /tmp/wd --rows 300000 --seed 31 --months 18 --drift`
(fraud moves from 2026-02 on: new importers, new circumvention routes, a
product that starts being undervalued); add `--hidden-fraud` for new
importers whose fraud (short-declared goods) no field of a declaration
shows, where only controls can teach the model.
"""

import argparse
import csv
import datetime as dt
import io
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

INSPECTIONS_SCHEMA = pa.schema([
    pa.field("declaration_id", pa.string(), nullable=False),
    pa.field("item_no", pa.int32()),
    pa.field("inspected_on", pa.date32(), nullable=False),
    pa.field("kind", pa.string()),
    pa.field("result", pa.string(), nullable=False),
    pa.field("fraud_type", pa.string()),
    pa.field("additional_revenue", pa.decimal128(18, 2)),
])


def run(*args):
    out = subprocess.run(args, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{out.stderr}")
    return out.stdout


def add_months(day, n):
    total = day.year * 12 + day.month - 1 + n
    return dt.date(total // 12, total % 12 + 1, 1)


def keys(table):
    return [f"{d}#{i}" for d, i in zip(table["declaration_id"].to_pylist(),
                                        table["item_no"].to_pylist())]


def write_inspections(root, month, table):
    folder = os.path.join(root, "inspections", f"year={month.year}", f"month={month.month}")
    os.makedirs(folder, exist_ok=True)
    pq.write_table(table, os.path.join(folder, "selected.parquet"))


def prepare(source, target, start):
    """A copy of `source` without its risk tables and without the
    inspections from `start` on."""
    if os.path.exists(target):
        shutil.rmtree(target)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("risk"))
    inspections = ds.dataset(os.path.join(target, "inspections"), format="parquet",
                             partitioning="hive").to_table()
    shutil.rmtree(os.path.join(target, "inspections"))
    inspections = inspections.filter(pc.less(inspections["inspected_on"], pa.scalar(start)))
    day = inspections["inspected_on"].to_pylist()
    months = sorted({(d.year, d.month) for d in day})
    month_of = np.array([d.year * 12 + d.month for d in day])
    for year, month in months:
        part = inspections.filter(pa.array(month_of == year * 12 + month))
        write_inspections(target, dt.date(year, month, 1),
                          part.select(INSPECTIONS_SCHEMA.names).cast(INSPECTIONS_SCHEMA))


def truth_by_key(root):
    truth = ds.dataset(os.path.join(root, "_truth"), format="parquet", partitioning="hive").to_table()
    declared = ds.dataset(os.path.join(root, "declarations"), format="parquet",
                          partitioning="hive").to_table(
        columns=["declaration_id", "item_no", "declaration_date"])
    day = dict(zip(keys(declared), declared["declaration_date"].to_pylist()))
    loss = truth["revenue_loss"].cast(pa.float64()).to_pylist()
    fraud = truth["fraud"].to_pylist()
    kind = truth["fraud_type"].to_pylist()
    return {k: (f, max(l or 0.0, 0.0) if f else 0.0, t, day[k])
            for k, f, l, t in zip(keys(truth), fraud, loss, kind)}


def reveal(root, month, truth):
    """The truth of the month's selected items, as inspections."""
    days = []
    day = month
    while day < add_months(month, 1):
        path = os.path.join(root, "risk", "selections", f"selection_date={day}", "selection.parquet")
        if os.path.exists(path):
            days.append(pq.read_table(path))
        day += dt.timedelta(days=1)
    selected = pa.concat_tables(days)
    rows = [truth[k] for k in keys(selected)]
    fraud = [r[0] for r in rows]
    table = pa.table({
        "declaration_id": selected["declaration_id"].cast(pa.string()),
        "item_no": selected["item_no"],
        "inspected_on": selected["selection_date"],
        "kind": pa.array(["physical" if l == "red" else "documentary"
                          for l in selected["lane"].to_pylist()]),
        "result": pa.array(["fraud" if f else "compliant" for f in fraud]),
        "fraud_type": pa.array([r[2] if r[0] else None for r in rows], pa.string()),
        "additional_revenue": pa.array([round(r[1], 2) if r[0] else None for r in rows],
                                       pa.float64()).cast(pa.decimal128(18, 2)),
    }, schema=INSPECTIONS_SCHEMA)
    write_inspections(root, month, table)
    by = selected["selected_by"].to_pylist()
    return fraud, [r[1] for r in rows], by


def simulate(args, warehouse, work, explore, truth, totals):
    root = f"{work}/sim-{args.strategy}-{explore}"
    prepare(warehouse, root, args.start)
    monthly = []
    for m in range(args.months):
        month = add_months(args.start, m)
        last = add_months(month, 1) - dt.timedelta(days=1)
        run(args.aduana, "model", "build", "-w", root, "--through",
            str(month - dt.timedelta(days=1)))
        run(args.aduana, "select", "-w", root, "--date", str(month), "--until", str(last),
            "--capacity", args.capacity, "--explore", str(explore), "--seed", str(args.seed),
            "--strategy", args.strategy, "--min-random", str(min(args.min_random, explore)))
        fraud, recovered, by = reveal(root, month, truth)
        frauds, loss, month_items = totals[(month.year, month.month)]
        model = [f for f, b in zip(fraud, by) if b == "model"]
        monthly.append({
            "month": str(month)[:7],
            "controls": len(fraud),
            "precision": sum(fraud) / max(len(fraud), 1),
            # Precision over the month's fraud rate: what selection adds to
            # chance, whatever the amount of fraud that month.
            "lift": sum(fraud) / max(len(fraud), 1) / max(frauds / month_items, 1e-12),
            "model_precision": sum(model) / max(len(model), 1),
            "recovered": sum(recovered),
            "revenue_share": sum(recovered) / loss if loss else 0.0,
        })
        print(f"  explore {explore}: {monthly[-1]['month']} precision "
              f"{monthly[-1]['precision']:.3f} revenue {monthly[-1]['revenue_share']:.3f}",
              file=sys.stderr, flush=True)
    estimate = None
    if explore > 0:
        text = run(args.aduana, "report", "fraud_rate_estimate", "-w", root,
                   "-p", "days=4000", "--format", "csv")
        estimate = next(csv.DictReader(io.StringIO(text)))
    return monthly, estimate


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("warehouses", nargs="+", metavar="warehouse")
    parser.add_argument("--start", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--capacity", default="red=15")
    parser.add_argument("--explore", default="0,0.05,0.1,0.2")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--strategy", default="random", choices=["random", "novelty", "proportional", "evidence"])
    parser.add_argument("--min-random", type=float, default=0.05)
    parser.add_argument("--aduana", default="target/release/aduana")
    parser.add_argument("--work", default="/tmp/aduana-selection-sim")
    args = parser.parse_args()
    # Checked up front: a bad path found after hours of replays of the
    # warehouses before it would waste them.
    for warehouse in args.warehouses:
        for part in ("declarations", "inspections", "_truth"):
            if not os.path.isdir(os.path.join(warehouse, part)):
                sys.exit(f"{warehouse}: no {part}/ folder; the replay needs a generated warehouse "
                         f"(aduana generate), whose _truth/ is the ground truth")
    if not (os.path.isfile(args.aduana) and os.access(args.aduana, os.X_OK)):
        sys.exit(f"--aduana {args.aduana}: no such executable (build it with cargo build --release)")
    started = time.time()
    # Each share once: a repeated one would replay twice into one folder.
    shares = list(dict.fromkeys(float(e) for e in args.explore.split(",")))
    recovered = []
    for n, warehouse in enumerate(args.warehouses):
        # One work folder per warehouse, so that each replay can be looked
        # at after the run.
        work = (args.work if len(args.warehouses) == 1
                else os.path.join(args.work, f"{n + 1}-{os.path.basename(os.path.normpath(warehouse))}"))
        os.makedirs(work, exist_ok=True)
        recovered.append(replay(args, warehouse, work, shares))
    if len(args.warehouses) > 1:
        summarize(args, shares, recovered)
    print(f"\n({time.time() - started:.0f} s)")


def summarize(args, shares, recovered):
    """Each share against the first, paired by warehouse."""
    table = np.array(recovered)
    base = table[:, 0]
    print(f"\nshare of the fraud revenue recovered in {args.months} months over {len(table)} "
          f"warehouses (capacity {args.capacity} a day, exploration {args.strategy}), "
          f"each share against {shares[0]:.2f}:")
    print(f"{'explore':>8} {'mean':>7} {'diff':>7} {'s.e.':>6} {'better':>7} {'tied':>5}")
    for i, share in enumerate(shares):
        if i == 0:
            print(f"{share:>8.2f} {base.mean():>7.3f}")
            continue
        diff = table[:, i] - base
        se = diff.std(ddof=1) / np.sqrt(len(diff))
        # Better or tied as the tables print them, to three decimals.
        shown = np.round(table[:, i], 3) - np.round(base, 3)
        better = f"{int((shown > 1e-9).sum())}/{len(diff)}"
        tied = int((np.abs(shown) <= 1e-9).sum())
        print(f"{share:>8.2f} {table[:, i].mean():>7.3f} {diff.mean():>+7.3f} {se:>6.3f} "
              f"{better:>7} {tied:>5}")


def replay(args, warehouse, work, shares):
    """Replays `warehouse` at every share, prints its table; returns each
    share's share of the fraud revenue recovered over the months."""
    truth = truth_by_key(warehouse)
    totals = {}
    end = add_months(args.start, args.months)
    items = {}
    for fraud, loss, _, day in truth.values():
        if args.start <= day < end:
            t = totals.setdefault((day.year, day.month), [0, 0.0])
            t[0] += fraud
            t[1] += loss
            items[(day.year, day.month)] = items.get((day.year, day.month), 0) + 1
    in_period = [v for v in truth.values() if args.start <= v[3] < end]
    true_rate = sum(v[0] for v in in_period) / len(in_period)

    results = {}
    for explore in shares:
        results[explore] = simulate(args, warehouse, work, explore, truth,
                                    {k: (*v, items[k]) for k, v in totals.items()})

    months = [m["month"] for m in next(iter(results.values()))[0]]
    print(f"\nselection replayed over {months[0]}..{months[-1]} on {warehouse}, "
          f"capacity {args.capacity} a day, exploration {args.strategy}; precision = frauds found / controls, "
          f"revenue = share of the month's fraud revenue recovered\n")
    shares_recovered = []
    print(f"{'explore':>8} " + " ".join(f"{m[2:]:>6}" for m in months)
          + f" {'P1-3':>6} {'P10-12':>6} {'L1-3':>6} {'L10-12':>6} {'revenue':>8}")
    for explore, (monthly, _) in results.items():
        p = [m["precision"] for m in monthly]
        lift = [m["lift"] for m in monthly]
        recovered = sum(m["recovered"] for m in monthly)
        loss = sum(totals[k][1] for k in totals)
        shares_recovered.append(recovered / loss)
        print(f"{explore:>8.2f} " + " ".join(f"{x:>6.3f}" for x in p)
              + f" {np.mean(p[:3]):>6.3f} {np.mean(p[-3:]):>6.3f}"
              + f" {np.mean(lift[:3]):>6.1f} {np.mean(lift[-3:]):>6.1f} {recovered / loss:>8.3f}")
    print("(P: precision, L: lift, precision over the month's fraud rate)")
    print(f"\ntrue fraud rate of all items in the period: {100 * true_rate:.2f}%")
    for explore, (_, estimate) in results.items():
        if estimate and int(estimate["inspected"] or 0) == 0:
            print(f"explore {explore:.2f}: no random control, no estimate of the fraud rate")
        elif estimate:
            low, mid, high = (float(estimate[c] or "nan") for c in
                              ("fraud_rate_low_pct", "fraud_rate_pct", "fraud_rate_high_pct"))
            inside = low <= 100 * true_rate <= high
            print(f"explore {explore:.2f}: estimated {mid:.2f}% [{low:.2f}, {high:.2f}] from "
                  f"{estimate['inspected']} random controls: {'inside' if inside else 'OUTSIDE'}")
    return shares_recovered


if __name__ == "__main__":
    main()
