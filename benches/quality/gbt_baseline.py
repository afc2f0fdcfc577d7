#!/usr/bin/env python3
"""Aduana's published risk_score against the gradient-boosted-trees baseline
of the DATE paper (Kim et al., KDD 2020: XGBoost over transaction fields and
entity risk profiles), on a backtest.

    benches/quality/gbt_baseline.py WAREHOUSE [--as-of DAY] [--aduana BIN]

1. Runs `aduana refresh --as-of DAY` (default: the first day of the month
   three months before the warehouse's last month), so the published scores
   use only what was known before DAY.
2. Trains scikit-learn's HistGradientBoostingClassifier (the same family as
   XGBoost: histogram-based boosted trees) on the items inspected before DAY,
   labelled by the inspections' outcome, with:
   - transaction fields: log value, quantity, masses, unit value, value per
     kg, duty rate, items in the declaration, transport mode, regime,
     preference claimed, origin differs from dispatch;
   - entity risk profiles, as in DATE: for importer, declarant, HS6, origin
     and office, the fraud rate among their inspected items (smoothed
     towards the overall rate) and how many were inspected. On the training
     rows these are computed out of fold, so a row never sees its own label.
3. Scores every item declared on or after DAY with both and reports AUC,
   Pre@n% and Rev@n% against the generator's ground truth (_truth/), with
   the definitions of `aduana evaluate` (top ceil(n% of items); revenue is
   the share of the revenue lost that the selection covers).

Needs the packages of benches/quality/requirements.txt (a virtualenv:
python3 -m venv .venv-bench && .venv-bench/bin/pip install -r
benches/quality/requirements.txt).
"""

import argparse
import datetime as dt
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

ENTITIES = ["importer_id", "declarant_id", "hs6", "origin_country", "office_code"]
CATEGORIES = ["transport_mode", "regime"]
PRIOR_INSPECTIONS = 10.0


def read(path):
    """Every file of a table, each brought to one plain type per column: the
    contract lets files of a table differ (dictionary or plain strings,
    decimals of any scale, dates or timestamps, int32 or int64), which one
    pyarrow dataset refuses to unify."""
    files = ds.dataset(path, format="parquet", partitioning="hive").files
    return pa.concat_tables(
        [plain(ds.dataset(f, format="parquet").to_table()) for f in sorted(files)],
        promote_options="permissive",
    )


def plain(table):
    columns = []
    for column in table.columns:
        t = column.type
        if pa.types.is_dictionary(t):
            column, t = column.cast(t.value_type), t.value_type
        if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
            column = column.cast(pa.string())
        elif pa.types.is_decimal(t) or pa.types.is_floating(t):
            column = column.cast(pa.float64())
        elif pa.types.is_integer(t):
            column = column.cast(pa.int64())
        elif pa.types.is_timestamp(t):
            column = column.cast(pa.date32())
        columns.append(column)
    return pa.table(columns, names=table.column_names)


def default_as_of(declarations):
    last = pc.max(declarations["declaration_date"]).as_py()
    year, month = last.year, last.month - 2
    while month < 1:
        month += 12
        year -= 1
    return dt.date(year, month, 1)


def run_backtest(aduana, warehouse, as_of):
    started = time.time()
    out = subprocess.run(
        [aduana, "refresh", "-w", warehouse, "--as-of", as_of.isoformat()],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        sys.exit(f"aduana refresh --as-of failed ({out.returncode}):\n{out.stderr}")
    print(out.stdout.splitlines()[0], f"({time.time() - started:.1f} s)")
    root = os.path.join(warehouse, "risk", "backtests", f"as_of={as_of.isoformat()}")
    with open(os.path.join(root, "risk", "_published.json")) as f:
        snapshot = json.load(f)
    files = [os.path.join(root, p["scores"]) for p in snapshot["partitions"].values()]
    scores = ds.dataset(files, format="parquet").to_table(
        columns=["declaration_id", "item_no", "risk_score", "expected_revenue"]
    )
    return scores, snapshot["model_version"]


def learned_weight(warehouse, as_of, version):
    """The `[learned] weight` of the backtest's model manifest (how far
    risk_score is the learned probability rather than the evidence)."""
    manifest = os.path.join(warehouse, "risk", "backtests", f"as_of={as_of.isoformat()}",
                            "risk", "model", version, "manifest.toml")
    try:
        with open(manifest) as f:
            for line in f:
                if line.startswith("weight = "):
                    return line.split("=", 1)[1].strip()
    except OSError:
        pass
    return "none (no learned model)"


def keys(table):
    """declaration_id + item_no as one string per row, for joins in numpy."""
    ids = table["declaration_id"].cast(pa.string()).to_numpy(zero_copy_only=False)
    items = table["item_no"].to_numpy(zero_copy_only=False)
    return np.char.add(np.char.add(ids.astype(str), "#"), items.astype(str))


def column(table, name):
    return table[name].cast(pa.string()).fill_null("").to_numpy(zero_copy_only=False).astype(str)


def numeric(table, name):
    return table[name].cast(pa.float64()).to_numpy(zero_copy_only=False).astype(float)


def safe_log(x):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > 0, np.log(x), np.nan)


def recovered_revenue(known, key, decl_ids):
    """The fraud revenue the inspections before the backtest day recovered
    per item: an item's own, plus an even share of its declaration's
    (a control of the whole declaration), as `aduana evaluate` counts it."""
    fraud = pc.equal(known["result"], "fraud").to_numpy(zero_copy_only=False)
    revenue = np.nan_to_num(numeric(known, "additional_revenue")) * fraud
    ids = column(known, "declaration_id")
    whole = pc.is_null(known["item_no"]).to_numpy(zero_copy_only=False)
    items = known["item_no"].cast(pa.string()).fill_null("").to_numpy(zero_copy_only=False).astype(str)
    own, by_declaration = {}, {}
    for k, r in zip(np.char.add(np.char.add(ids, "#"), items)[~whole], revenue[~whole]):
        own[k] = own.get(k, 0.0) + r
    for d, r in zip(ids[whole], revenue[whole]):
        by_declaration[d] = by_declaration.get(d, 0.0) + r
    _, inverse, counts = np.unique(decl_ids, return_inverse=True, return_counts=True)
    size = counts[inverse]
    return np.array([own.get(k, 0.0) + by_declaration.get(d, 0.0) / n for k, d, n in zip(key, decl_ids, size)])


def transaction_features(decl):
    value = numeric(decl, "customs_value")
    quantity = numeric(decl, "quantity")
    net = numeric(decl, "net_mass_kg")
    gross = numeric(decl, "gross_mass_kg")
    ids = column(decl, "declaration_id")
    _, inverse, counts = np.unique(ids, return_inverse=True, return_counts=True)
    features = {
        "log_value": safe_log(value),
        "log_quantity": safe_log(quantity),
        "log_net_mass": safe_log(net),
        "log_gross_mass": safe_log(gross),
        "log_unit_value": safe_log(value) - safe_log(quantity),
        "log_value_per_kg": safe_log(value) - safe_log(net),
        "duty_rate": numeric(decl, "duty_rate"),
        "items_in_declaration": counts[inverse].astype(float),
        "preference_claimed": (~pc.is_null(decl["preference_code"]).to_numpy(zero_copy_only=False)).astype(float),
        "origin_is_not_dispatch": (column(decl, "origin_country") != column(decl, "export_country")).astype(float),
    }
    for name in CATEGORIES:
        values = column(decl, name)
        levels = {v: i for i, v in enumerate(sorted(set(values)))}
        features[name] = np.array([levels[v] for v in values], dtype=float)
    return features


def profile(train_entity, train_label, apply_entity, overall):
    """Smoothed fraud rate and inspection count of each entity."""
    names, inverse = np.unique(train_entity, return_inverse=True)
    frauds = np.bincount(inverse, weights=train_label, minlength=len(names))
    counts = np.bincount(inverse, minlength=len(names)).astype(float)
    rate = (frauds + PRIOR_INSPECTIONS * overall) / (counts + PRIOR_INSPECTIONS)
    position = np.searchsorted(names, apply_entity)
    position = np.clip(position, 0, max(len(names) - 1, 0))
    known = (len(names) > 0) & (names[position] == apply_entity)
    return np.where(known, rate[position], overall), np.where(known, counts[position], 0.0)


def entity_profiles(entities, train_rows, labels, apply_rows, folds=5, seed=7):
    """Profiles for `apply_rows` from all training rows, and out-of-fold
    profiles for the training rows themselves."""
    overall = labels.mean()
    rng = np.random.default_rng(seed)
    fold = rng.integers(0, folds, size=len(train_rows))
    train_features, apply_features = {}, {}
    for name, values in entities.items():
        rate, count = profile(values[train_rows], labels, values[apply_rows], overall)
        apply_features[f"{name}_fraud_rate"] = rate
        apply_features[f"{name}_inspected"] = count
        oof_rate = np.empty(len(train_rows))
        oof_count = np.empty(len(train_rows))
        for k in range(folds):
            held = fold == k
            r, c = profile(values[train_rows][~held], labels[~held], values[train_rows][held], overall)
            oof_rate[held], oof_count[held] = r, c
        train_features[f"{name}_fraud_rate"] = oof_rate
        train_features[f"{name}_inspected"] = oof_count
    return train_features, apply_features


def measure(score, fraud, revenue, rates):
    """AUC (ties share their rank) and Pre/Rec/Rev at each rate, as
    `aduana evaluate` computes them."""
    order = np.argsort(-score, kind="stable")
    fraud, revenue = fraud[order], revenue[order]
    n, positives = len(score), fraud.sum()
    ranks = np.empty(n)
    # average ranks (ascending) for the AUC
    asc = np.argsort(score, kind="stable")
    s = score[asc]
    r = np.empty(n)
    i = 0
    while i < n:
        j = i
        while j < n and s[j] == s[i]:
            j += 1
        r[i:j] = (i + j + 1) / 2.0
        i = j
    ranks[asc] = r
    fraud_by_row = np.empty(n, dtype=bool)
    fraud_by_row[order] = fraud
    negatives = n - positives
    auc = (ranks[fraud_by_row].sum() - positives * (positives + 1) / 2) / (positives * negatives)
    total_revenue = revenue.sum()
    out = {"auc": auc}
    for rate in rates:
        k = min(max(math.ceil(n * rate / 100.0), 1), n)
        out[f"pre@{rate:g}%"] = fraud[:k].mean()
        out[f"rec@{rate:g}%"] = fraud[:k].sum() / positives
        out[f"rev@{rate:g}%"] = revenue[:k].sum() / total_revenue
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("warehouse")
    parser.add_argument("--as-of", type=dt.date.fromisoformat)
    parser.add_argument("--aduana", default="target/release/aduana")
    parser.add_argument("--rates", default="1,2,5,10")
    parser.add_argument("--skip-refresh", action="store_true", help="use the backtest already published")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]

    started = time.time()
    decl = read(os.path.join(args.warehouse, "declarations"))
    inspections = read(os.path.join(args.warehouse, "inspections"))
    truth = read(os.path.join(args.warehouse, "_truth"))
    as_of = args.as_of or default_as_of(decl)
    print(f"warehouse {args.warehouse}: {decl.num_rows} items; backtest as of {as_of}")

    if args.skip_refresh:
        root = os.path.join(args.warehouse, "risk", "backtests", f"as_of={as_of.isoformat()}")
        with open(os.path.join(root, "risk", "_published.json")) as f:
            snapshot = json.load(f)
        files = [os.path.join(root, p["scores"]) for p in snapshot["partitions"].values()]
        published = ds.dataset(files, format="parquet").to_table(columns=["declaration_id", "item_no", "risk_score", "expected_revenue"])
        model_version = snapshot["model_version"]
    else:
        published, model_version = run_backtest(args.aduana, args.warehouse, as_of)
    print(f"risk_score's weight of the learned probability: {learned_weight(args.warehouse, as_of, model_version)}")

    key = keys(decl)
    dates = decl["declaration_date"].to_numpy(zero_copy_only=False).astype("datetime64[D]")
    cutoff = np.datetime64(as_of.isoformat(), "D")
    before, after = dates < cutoff, dates >= cutoff

    # Labels: what the inspections before DAY found, per item (a
    # declaration-level inspection, item_no null, covers all its items).
    known = inspections.filter(pc.less(inspections["inspected_on"], pa.scalar(as_of, pa.date32())))
    is_fraud = pc.equal(known["result"], "fraud").to_numpy(zero_copy_only=False)
    # As strings from Arrow: with NULLs (controls of whole declarations)
    # numpy would make the column float and the keys "2.0", matching no item.
    item_no = known["item_no"].cast(pa.string()).fill_null("").to_numpy(zero_copy_only=False).astype(str)
    ids = column(known, "declaration_id")
    whole = pc.is_null(known["item_no"]).to_numpy(zero_copy_only=False)
    item_keys = np.char.add(np.char.add(ids, "#"), item_no)
    label = {}
    for k, f in zip(item_keys[~whole], is_fraud[~whole]):
        label[k] = label.get(k, False) or bool(f)
    declaration_fraud = {}
    for d, f in zip(ids[whole], is_fraud[whole]):
        declaration_fraud[d] = declaration_fraud.get(d, False) or bool(f)
    decl_ids = column(decl, "declaration_id")
    inspected = np.array(
        [(k in label or d in declaration_fraud) for k, d in zip(key, decl_ids)]
    )
    labels_all = np.array(
        [label.get(k, False) or declaration_fraud.get(d, False) for k, d in zip(key, decl_ids)]
    )
    train_rows = np.flatnonzero(before & inspected)
    test_rows = np.flatnonzero(after)
    y = labels_all[train_rows].astype(float)
    print(f"training: {len(train_rows)} items inspected before {as_of} ({int(y.sum())} fraud); "
          f"testing: {len(test_rows)} items declared from {as_of}")

    features = transaction_features(decl)
    entities = {name: column(decl, name) for name in ["importer_id", "declarant_id", "origin_country", "office_code"]}
    entities["hs6"] = np.array([h[:6] for h in column(decl, "hs_code")])
    entities = {name: entities[name] for name in ENTITIES}
    train_profiles, test_profiles = entity_profiles(entities, train_rows, y, test_rows)
    names = list(features) + list(train_profiles)
    X_train = np.column_stack([features[n][train_rows] for n in features] + [train_profiles[n] for n in train_profiles])
    X_test = np.column_stack([features[n][test_rows] for n in features] + [test_profiles[n] for n in test_profiles])
    categorical = [names.index(c) for c in CATEGORIES]
    fit_started = time.time()
    model = HistGradientBoostingClassifier(
        max_iter=300,
        learning_rate=0.05,
        max_leaf_nodes=31,
        l2_regularization=1.0,
        categorical_features=categorical,
        early_stopping=True,
        validation_fraction=0.15,
        random_state=7,
    )
    model.fit(X_train, y)
    gbt = model.predict_proba(X_test)[:, 1]
    print(f"GBT: {model.n_iter_} trees on {len(names)} features in {time.time() - fit_started:.1f} s")
    # DATE's second head: the revenue an inspection recovers when it finds
    # fraud (log scale, on the frauds that recovered some), so that
    # probability x revenue is the baseline's expected revenue.
    recovered = recovered_revenue(known, key, decl_ids)[train_rows]
    paying = (y > 0) & (recovered > 0)
    regressor = HistGradientBoostingRegressor(
        max_iter=200, learning_rate=0.05, max_leaf_nodes=31, l2_regularization=1.0,
        categorical_features=categorical, early_stopping=True, validation_fraction=0.15, random_state=7,
    )
    if paying.sum() >= 2:
        regressor.fit(X_train[paying], np.log(recovered[paying]))
        gbt_revenue = gbt * np.exp(regressor.predict(X_test))
    else:
        gbt_revenue = gbt

    # Ground truth of the test items.
    truth_key = keys(truth)
    truth_index = {k: i for i, k in enumerate(truth_key)}
    truth_fraud = truth["fraud"].to_numpy(zero_copy_only=False)
    truth_loss = truth["revenue_loss"].cast(pa.float64()).to_numpy(zero_copy_only=False)
    rows = np.array([truth_index[k] for k in key[test_rows]])
    fraud = truth_fraud[rows].astype(bool)
    loss = np.where(fraud, np.maximum(truth_loss[rows], 0.0), 0.0)

    published_index = dict(zip(keys(published), published["risk_score"].to_numpy(zero_copy_only=False)))
    risk_score = np.array([published_index.get(k, -np.inf) for k in key[test_rows]], dtype=float)
    revenue_index = dict(zip(keys(published), published["expected_revenue"].to_numpy(zero_copy_only=False)))
    expected_revenue = np.nan_to_num(
        np.array([revenue_index.get(k, np.nan) for k in key[test_rows]], dtype=float), nan=-np.inf
    )
    missing = int(np.isinf(risk_score).sum())
    if missing:
        print(f"warning: {missing} test items have no published score (rejected); they rank last")

    results = {
        f"aduana risk_score (model {model_version})": measure(risk_score, fraud, loss, rates),
        "GBT baseline (DATE-style profiles)": measure(gbt, fraud, loss, rates),
        "aduana expected_revenue": measure(expected_revenue, fraud, loss, rates),
        "GBT probability x GBT revenue": measure(gbt_revenue, fraud, loss, rates),
    }
    metrics = ["auc"] + [f"{m}@{r:g}%" for r in rates for m in ("pre", "rev")]
    print(f"\ntest items {len(test_rows)}, fraudulent {int(fraud.sum())}, revenue lost {loss.sum():,.0f}")
    print(f"{'score':<48}" + "".join(f"{m:>10}" for m in metrics))
    for name, values in results.items():
        print(f"{name:<48}" + "".join(f"{values[m]:>10.4f}" for m in metrics))
    ours, theirs = list(results.values())[:2]
    verdict = all(ours[m] >= theirs[m] for m in ("pre@1%", "rev@1%"))
    revenue_verdict = results["aduana expected_revenue"]["rev@1%"] >= results["GBT probability x GBT revenue"]["rev@1%"]
    print(f"\nrisk_score reaches the baseline's Pre@1% and Rev@1%: {'yes' if verdict else 'NO'}")
    print(f"expected_revenue reaches the baseline's (probability x revenue) Rev@1%: "
          f"{'yes' if revenue_verdict else 'NO'}  ({time.time() - started:.0f} s in all)")
    return 0 if verdict else 1


if __name__ == "__main__":
    sys.exit(main())
