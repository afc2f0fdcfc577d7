#!/usr/bin/env python3
"""A customs warehouse written from the warehouse contract alone
(../shared/contract/warehouse.md), not from Aduana's generator: its own
products, traders, fraud (undervaluing importers, whisky declared as rum,
screws routed through Malaysia after an anti-dumping duty), its own
inspection practice (mostly post-clearance audits of whole declarations,
which find more in fraudulent declarations) and the contract's latitude in
files (column order, string and decimal types, dotted and 10-digit codes).
It checks that a change to the model improves the method rather than its
fit to `aduana generate`.

Usage: independent_warehouse.py OUT_DIR [--items N] [--seed S]
The ground truth goes to OUT_DIR/_truth/ (where benches/quality/gbt_baseline.py
reads it; Aduana does not read it).
"""
import argparse, datetime as dt, math, os, random, shutil
from decimal import Decimal
import pyarrow as pa
import pyarrow.parquet as pq

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--items", type=int, default=45000)
ap.add_argument("--seed", type=int, default=11)
ap.add_argument("--odd-decimal", action="store_true", help="some files with customs_value Decimal128(20,4) / duties Decimal128(12,1)")
args = ap.parse_args()
R = random.Random(args.seed)
OUT = args.out
if os.path.exists(OUT):
    shutil.rmtree(OUT)

# --------------------------------------------------------------- products
# (national line 8 or 10 digits, description words, unit, base unit price per unit (local currency),
#  kg per unit, duty %, origins with shares)
P = [
    ("84713000", "PORTABLE COMPUTER LAPTOP 14 IN", "NAR", 4200, 1.6, 0, {"CN": .7, "US": .2, "MX": .1}),
    ("85171300", "SMARTPHONE 128GB", "NAR", 2600, 0.25, 0, {"CN": .6, "VN": .3, "KR": .1}),
    ("61091000", "T-SHIRT COTTON KNITTED MEN", "NAR", 38, 0.2, 20, {"CN": .4, "BD": .3, "HN": .3}),
    ("61099000", "T-SHIRT POLYESTER KNITTED", "NAR", 30, 0.18, 10, {"CN": .6, "BD": .2, "SV": .2}),
    ("40111000", "TYRE RADIAL PASSENGER CAR 205/55R16", "NAR", 520, 9.0, 15, {"CN": .5, "TH": .3, "JP": .2}),
    ("40112000", "TYRE RADIAL TRUCK BUS 295/80R22.5", "NAR", 2100, 60.0, 5, {"CN": .6, "TH": .4}),
    ("22083000", "WHISKY SCOTCH 70CL", "LTR", 210, 1.3, 40, {"GB": .9, "US": .1}),
    ("22089000", "RUM AGED 75CL", "LTR", 95, 1.3, 15, {"DO": .5, "NI": .5}),
    ("73181500", "BOLT SCREW STEEL HEX", "KGM", 22, 1.0, 10, {"CN": .75, "TW": .15, "IN": .1}),
    ("73181600", "NUT STEEL HEX", "KGM", 20, 1.0, 10, {"CN": .7, "TW": .3}),
    ("72104910", "STEEL SHEET GALVANIZED COIL 0.5MM", "KGM", 8.5, 1.0, 5, {"CN": .6, "KR": .2, "MX": .2}),
    ("72104990", "STEEL SHEET GALVANIZED OTHER", "KGM", 9.0, 1.0, 5, {"CN": .5, "MX": .5}),
    ("09011100", "COFFEE GREEN NOT ROASTED", "KGM", 30, 1.0, 15, {"HN": .5, "BR": .3, "CO": .2}),
    ("10063000", "RICE MILLED WHITE LONG GRAIN", "KGM", 6.5, 1.0, 30, {"US": .7, "VN": .2, "TH": .1}),
    ("17019900", "SUGAR REFINED WHITE", "KGM", 5.0, 1.0, 20, {"MX": .6, "BR": .4}),
    ("30049000", "MEDICAMENT TABLETS PACKAGED", "KGM", 900, 1.0, 0, {"IN": .4, "DE": .3, "MX": .3}),
    ("33049900", "CREAM COSMETIC SKIN CARE", "KGM", 260, 1.0, 15, {"FR": .3, "US": .4, "CN": .3}),
    ("39232100", "BAG POLYETHYLENE PLASTIC", "KGM", 18, 1.0, 10, {"CN": .6, "MX": .4}),
    ("48191000", "CARTON BOX CORRUGATED", "KGM", 9, 1.0, 10, {"MX": .5, "SV": .5}),
    ("69072100", "CERAMIC TILE FLOOR GLAZED", "MTK", 75, 20.0, 15, {"ES": .3, "CN": .5, "MX": .2}),
    ("73089000", "STEEL STRUCTURE PARTS", "KGM", 16, 1.0, 10, {"CN": .5, "US": .5}),
    ("84151000", "AIR CONDITIONER SPLIT WALL", "NAR", 2400, 35.0, 10, {"CN": .8, "KR": .2}),
    ("84182100", "REFRIGERATOR HOUSEHOLD COMPRESSION", "NAR", 3800, 60.0, 15, {"CN": .5, "MX": .3, "KR": .2}),
    ("85044000", "POWER SUPPLY CONVERTER", "NAR", 110, 0.4, 5, {"CN": .9, "TW": .1}),
    ("85287200", "TELEVISION LED 55 IN", "NAR", 3300, 16.0, 15, {"CN": .6, "MX": .3, "KR": .1}),
    ("87089900", "AUTO PARTS ACCESSORIES", "KGM", 70, 1.0, 10, {"CN": .4, "JP": .3, "US": .3}),
    ("94036000", "FURNITURE WOODEN", "NAR", 950, 25.0, 15, {"CN": .5, "MX": .3, "VN": .2}),
    ("95030000", "TOYS PLASTIC ASSORTED", "KGM", 60, 1.0, 15, {"CN": .9, "VN": .1}),
    ("27101990", "LUBRICATING OIL ENGINE", "LTR", 32, 0.9, 5, {"US": .7, "MX": .3}),
    ("22030000", "BEER MALT BOTTLES 355ML", "LTR", 14, 1.1, 20, {"MX": .6, "NL": .2, "US": .2}),
]
PRODUCTS = [dict(line=p[0], desc=p[1], unit=p[2], price=p[3], kg=p[4], duty=p[5], origins=p[6]) for p in P]
BY_LINE = {p["line"]: p for p in PRODUCTS}
# misclassification pairs: true (high duty) -> declared (low duty); description keeps the true goods' words
MISCLASS = {"61091000": "61099000", "40111000": "40112000", "22083000": "22089000"}
REMEDY_7318_FROM = dt.date(2026, 3, 1)       # antidumping on heading 7318, CN
REMEDY_721049_FROM = dt.date(2025, 12, 1)    # countervailing on national line 72104910, CN
REMEDY_721049_TO = dt.date(2026, 12, 31)

# --------------------------------------------------------------- months
MONTHS = []
y, m = 2025, 8
while (y, m) <= (2026, 10):      # 15 months
    MONTHS.append((y, m))
    m += 1
    if m == 13:
        y, m = y + 1, 1

def month_days(y, m):
    nxt = dt.date(y + (m == 12), 1 if m == 12 else m + 1, 1)
    return (nxt - dt.date(y, m, 1)).days

# --------------------------------------------------------------- parties
N_IMP = 320
importers = []
for i in range(N_IMP):
    tin = f"{R.randint(1000000, 9999999)}-{R.choice('0123456789K')}"
    k = R.choice([1, 2, 2, 3, 3, 4])
    specialty = R.sample(range(len(PRODUCTS)), k)
    weight = 1.0 / (i + 3) ** 0.9          # Zipf-ish activity
    importers.append(dict(tin=tin, specialty=specialty, weight=weight, aeo=R.random() < 0.08,
                          price_factor=math.exp(R.gauss(0, 0.08))))
# a few fraudsters
undervaluers = R.sample(range(20, 200), 14)             # undervalue their main product by 40%
for i in undervaluers:
    importers[i]["underval_product"] = importers[i]["specialty"][0]
misclassifiers = []
for true_line, decl_line in MISCLASS.items():
    idx = PRODUCTS.index(BY_LINE[true_line])
    cands = [i for i in range(10, N_IMP) if idx in importers[i]["specialty"]]
    cands = cands or R.sample(range(10, N_IMP), 3)
    for i in R.sample(cands, min(4, len(cands))):
        if idx not in importers[i]["specialty"]:
            importers[i]["specialty"].append(idx)
        importers[i].setdefault("misclass", set()).add(true_line)
        misclassifiers.append(i)
screw_idx = PRODUCTS.index(BY_LINE["73181500"])
screw_buyers = [i for i in range(N_IMP) if screw_idx in importers[i]["specialty"]]
extra = R.sample([i for i in range(5, 150) if i not in screw_buyers], 6)
for i in extra:
    importers[i]["specialty"].append(screw_idx)
transshippers = R.sample(screw_buyers + extra, min(7, len(screw_buyers + extra)))
for i in transshippers:
    importers[i]["transship"] = True
declarants = [f"BRK{R.randint(100, 999)}" for _ in range(25)]
offices = ["GT01", "GT02", "GT05", "GT11", "GT14"]
suppliers = {}

# --------------------------------------------------------------- declarations
items = []
truth = []
items_per_month = args.items // len(MONTHS)
imp_weights = [im["weight"] for im in importers]
seq = 0
for (y, m) in MONTHS:
    n = 0
    nd = month_days(y, m)
    while n < items_per_month:
        imp_i = R.choices(range(N_IMP), imp_weights)[0]
        im = importers[imp_i]
        seq += 1
        decl_id = f"{y}{m:02d}-{R.choice(offices)[2:]}-{seq:07d}"
        day = dt.date(y, m, R.randint(1, nd))
        office = R.choice(offices)
        regime = R.choices(["IM4", "IM7", "IM5"], [0.9, 0.08, 0.02])[0]
        declarant = R.choice(declarants)
        transport = R.choices(["SEA", "ROAD", "AIR", "POST", "RAIL"], [.55, .3, .1, .04, .01])[0]
        lane = R.choices(["green", "yellow", "red", "blue"], [.7, .15, .1, .05])[0]
        n_items = R.choices([1, 2, 3, 4, 6], [.45, .25, .15, .1, .05])[0]
        for it in range(1, n_items + 1):
            pi = R.choice(im["specialty"])
            p = PRODUCTS[pi]
            origin = R.choices(list(p["origins"]), list(p["origins"].values()))[0]
            export = origin
            fraud = None; detail = None
            true_line = p["line"]; decl_line = p["line"]; true_origin = origin
            # post-remedy diversion of screws through Malaysia (true CN)
            if p["line"].startswith("7318") and day >= REMEDY_7318_FROM and im.get("transship") and origin == "CN":
                origin = "MY"; export = "MY"; fraud = "origin"; detail = "antidumping_circumvention"
            elif p["line"].startswith("7318") and day >= REMEDY_7318_FROM and origin == "CN" and R.random() < 0.35:
                origin = R.choice(["TW", "IN"]); export = origin; true_origin = origin  # legitimate diversion
            if R.random() < 0.06 and origin not in ("US", "MX"):
                export = "PA"     # legitimate routing via Panama
            if true_line in im.get("misclass", ()) and R.random() < 0.7:
                decl_line = MISCLASS[true_line]; fraud = "classification"; detail = "misclassification"
            qty = max(1.0, round(math.exp(R.gauss(math.log(200 if p["unit"] in ("KGM", "LTR", "MTK") else 25), 0.9)), 0))
            unit_price = p["price"] * im["price_factor"] * math.exp(R.gauss(0, 0.18))
            if true_origin in ("CN", "VN", "BD", "IN"):
                unit_price *= 0.85
            # slow drift of prices over time
            unit_price *= 1 + 0.004 * MONTHS.index((y, m))
            true_value = round(qty * unit_price, 2)
            value = true_value
            if im.get("underval_product") == pi and fraud is None and R.random() < 0.8:
                value = round(true_value * 0.6, 2); fraud = "valuation"; detail = "undervaluation"
            duty_rate = BY_LINE[decl_line]["duty"]
            true_duty = BY_LINE[true_line]["duty"]
            add = 0.0
            if true_line.startswith("7318") and true_origin == "CN" and day >= REMEDY_7318_FROM:
                add = 35.0
            if true_line == "72104910" and true_origin == "CN" and REMEDY_721049_FROM <= day <= REMEDY_721049_TO:
                add = 18.0
            declared_add = add if fraud != "origin" else 0.0
            duties = round(value * (duty_rate + declared_add) / 100 * 1.12, 2)  # + 12% VAT-ish
            true_duties = round(true_value * (true_duty + add) / 100 * 1.12, 2)
            net_kg = round(qty * p["kg"] * math.exp(R.gauss(0, 0.05)), 3) if p["unit"] != "KGM" else qty
            # national line written in several ways
            d = decl_line
            style = R.random()
            if style < 0.45:
                hs = f"{d[:4]}.{d[4:6]}.{d[6:]}"
            elif style < 0.6:
                hs = f"{d[:4]} {d[4:6]} {d[6:]}"
            elif style < 0.7:
                hs = d + "00"          # 10-digit statistical suffix
            else:
                hs = d
            desc = p["desc"] if true_line == decl_line else BY_LINE[true_line]["desc"]
            desc = R.choice([desc, desc.lower(), desc.title(), desc + " " + R.choice(["NEW", "NUEVO", "MARCA X", "MODELO 2025"])])
            pref = None
            if origin in ("HN", "SV", "NI") and R.random() < 0.8:
                pref = "SIECA"
            elif origin in ("US", "DO") and R.random() < 0.6:
                pref = "CAFTA"
            elif origin == "MX" and R.random() < 0.5:
                pref = "TLC-MX"
            items.append(dict(
                declaration_id=decl_id, item_no=it, declaration_date=day, office_code=office, regime=regime,
                importer_id=im["tin"], declarant_id=declarant, supplier_id=None,
                hs_code=hs, description=desc, origin_country=origin, export_country=export, preference_code=pref,
                quantity=float(qty), quantity_unit=p["unit"], net_mass_kg=float(net_kg),
                gross_mass_kg=None, customs_value=value, duty_rate=float(duty_rate),
                duties_paid=duties, transport_mode=transport, lane=lane, year=y, month=m))
            truth.append(dict(declaration_id=decl_id, item_no=it, fraud=fraud is not None, fraud_type=fraud,
                              fraud_detail=detail, true_hs=true_line, true_origin=true_origin,
                              true_value=true_value, revenue_loss=max(0.0, round(true_duties - duties, 2)),
                              importer_id=im["tin"]))
            n += 1

print("items", len(items), "fraud", sum(t["fraud"] for t in truth))

# --------------------------------------------------------------- write declarations
ORDER = list(items[0].keys())[:-2]

def dec(v, scale):
    return None if v is None else Decimal(str(v)).quantize(Decimal(1).scaleb(-scale))

def build_table(rows, variant, rng):
    """variant: how this file spells the contract."""
    cols = {}
    str_t = {"large": pa.large_string(), "view": pa.string_view(), "plain": pa.string(), "dict": pa.dictionary(pa.int32(), pa.string())}[variant["strings"]]
    for c in ORDER:
        vals = [r[c] for r in rows]
        if c in ("declaration_id", "office_code", "regime", "importer_id", "declarant_id", "supplier_id", "hs_code",
                 "description", "origin_country", "export_country", "preference_code", "quantity_unit",
                 "transport_mode", "lane"):
            if c == "lane" and variant.get("no_lane"):
                vals = [None] * len(vals)
            if variant["strings"] == "dict":
                arr = pa.array(vals, pa.string()).dictionary_encode()
            else:
                arr = pa.array(vals, str_t)
        elif c == "item_no":
            arr = pa.array(vals, variant.get("item_type", pa.int32()))
        elif c == "declaration_date":
            if variant.get("ts"):
                arr = pa.array([dt.datetime(d.year, d.month, d.day) for d in vals], pa.timestamp("ms"))
                if variant["ts"] == "tz":
                    arr = pa.array([dt.datetime(d.year, d.month, d.day, tzinfo=dt.timezone.utc) for d in vals], pa.timestamp("us", tz="UTC"))
            else:
                arr = pa.array(vals, pa.date32())
        elif c in ("customs_value", "duties_paid"):
            money = variant.get("money", "dec")
            if money == "float":
                arr = pa.array(vals, pa.float64())
            elif money == "odd":
                t = pa.decimal128(20, 4) if c == "customs_value" else pa.decimal128(12, 1)
                arr = pa.array([dec(v, t.scale) for v in vals], t)
            else:
                arr = pa.array([dec(v, 2) for v in vals], pa.decimal128(18, 2))
        else:
            arr = pa.array(vals, pa.float64())
        cols[c] = arr
    names = list(ORDER)
    rng.shuffle(names)        # column order differs between files
    if variant.get("drop_declarant_nulls"):
        pass
    t = pa.table({n: cols[n] for n in names})
    if variant.get("extra"):
        t = t.append_column("source_system", pa.array(["SIDUNEA-W"] * len(rows), pa.string()))
        t = t.append_column("exchange_rate", pa.array([7.75] * len(rows), pa.float64()))
    return t

VARIANTS = [
    dict(strings="large", money="dec"),
    dict(strings="view", money="float", ts="naive", item_type=pa.int16()),
    dict(strings="dict", money="dec", extra=True),
    dict(strings="plain", money="float", no_lane=True),
    dict(strings="view", money="dec", ts="naive"),
]
if args.odd_decimal:
    VARIANTS.append(dict(strings="plain", money="odd"))

rngf = random.Random(args.seed + 1)
by_month = {}
for r in items:
    by_month.setdefault((r["year"], r["month"]), []).append(r)
files = 0
for (y, m), rows in by_month.items():
    rngf.shuffle(rows)
    # keep items of a declaration in the same file? not required: split arbitrarily
    k = rngf.choice([2, 3, 4])
    cuts = sorted(rngf.sample(range(1, len(rows)), k - 1))
    parts = [rows[a:b] for a, b in zip([0] + cuts, cuts + [len(rows)])]
    d = os.path.join(OUT, "declarations", f"year={y}", f"month={m}")
    os.makedirs(d, exist_ok=True)
    for j, part in enumerate(parts):
        v = rngf.choice(VARIANTS)
        t = build_table(part, v, rngf)
        rg = rngf.choice([97, 500, 1333, 100000])
        pq.write_table(t, os.path.join(d, f"sgd-export-{y}{m:02d}-part{j}.parquet"), row_group_size=rg,
                       compression=rngf.choice(["snappy", "zstd", "gzip", "none"]))
        files += 1
print("declaration files", files)

# --------------------------------------------------------------- inspections
truth_by_key = {(t["declaration_id"], t["item_no"]): t for t in truth}
decls = {}
for r in items:
    decls.setdefault(r["declaration_id"], []).append(r)
last_day = dt.date(2026, 10, 31)
insp = []
for did, rows in decls.items():
    ts = [truth_by_key[(did, r["item_no"])] for r in rows]
    any_fraud = any(t["fraud"] for t in ts)
    day = rows[0]["declaration_date"]
    lane = rows[0]["lane"]
    # item-level controls at clearance for red/yellow lanes (a sample of items)
    if lane in ("red", "yellow"):
        for r, t in zip(rows, ts):
            if R.random() < 0.85:
                continue
            found = t["fraud"] and R.random() < (0.75 if lane == "red" else 0.45)
            kind = "physical" if lane == "red" else "documentary"
            insp.append(dict(declaration_id=did, item_no=r["item_no"], inspected_on=day + dt.timedelta(days=R.randint(0, 2)),
                             kind=kind, result="fraud" if found else "compliant",
                             fraud_type=t["fraud_type"] if found else None,
                             additional_revenue=t["revenue_loss"] if found else None))
            # a second control of the same item: documentary then physical
            if kind == "documentary" and R.random() < 0.3:
                found2 = t["fraud"] and R.random() < 0.8
                insp.append(dict(declaration_id=did, item_no=r["item_no"], inspected_on=day + dt.timedelta(days=R.randint(3, 6)),
                                 kind="physical", result="fraud" if found2 else "compliant",
                                 fraud_type=t["fraud_type"] if found2 else None,
                                 additional_revenue=t["revenue_loss"] if found2 else None))
    # post-clearance audits of whole declarations (most of the labels)
    p_audit = 0.45 if any_fraud else 0.12
    audit_day = day + dt.timedelta(days=R.randint(30, 150))
    if R.random() < p_audit and audit_day <= last_day:
        found = any_fraud and R.random() < 0.85
        ft = next((t["fraud_type"] for t in ts if t["fraud"]), None) if found else None
        rev = round(sum(t["revenue_loss"] for t in ts), 2) if found else None
        insp.append(dict(declaration_id=did, item_no=None, inspected_on=audit_day,
                         kind=R.choice(["pca", "pca", "pca", None]),
                         result="fraud" if found else "compliant", fraud_type=ft, additional_revenue=rev))
print("inspections", len(insp), "fraud", sum(i["result"] == "fraud" for i in insp),
      "whole-declaration", sum(i["item_no"] is None for i in insp))

ins_by_month = {}
for i in insp:
    d = i["inspected_on"]
    ins_by_month.setdefault((d.year, d.month), []).append(i)
for (y, m), rows in ins_by_month.items():
    d = os.path.join(OUT, "inspections", f"year={y}", f"month={m}")
    os.makedirs(d, exist_ok=True)
    names = ["result", "declaration_id", "inspected_on", "item_no", "kind", "fraud_type", "additional_revenue"]
    if (y * 12 + m) % 2:
        names.reverse()
    st = pa.large_string() if m % 3 == 0 else pa.string()
    types = dict(declaration_id=st, item_no=pa.int32(), inspected_on=pa.date32(), kind=st, result=st, fraud_type=st,
                 additional_revenue=pa.decimal128(18, 2))
    t = pa.table({c: pa.array([dec(r[c], 2) if c == "additional_revenue" else r[c] for r in rows], types[c]) for c in names})
    pq.write_table(t, os.path.join(d, f"controls-{y}-{m:02d}.parquet"), row_group_size=R.choice([50, 400, 5000]))

# --------------------------------------------------------------- reference
ref = os.path.join(OUT, "reference")
os.makedirs(ref, exist_ok=True)
tariff = []
for p in PRODUCTS:
    tariff.append((p["line"], float(p["duty"])))
# heading / HS6 level fallbacks (longest prefix applies)
for h, rate in [("6109", 15.0), ("4011", 10.0), ("2208", 25.0), ("7318", 10.0), ("721049", 5.0), ("8471", 0.0), ("9503", 15.0)]:
    tariff.append((h, rate))
pq.write_table(pa.table({"hs_code": pa.array([t[0] for t in tariff], pa.large_string()),
                         "duty_rate": pa.array([t[1] for t in tariff], pa.float64())}),
               os.path.join(ref, "tariff.parquet"))
rem = pa.table({
    "hs_code": pa.array(["7318", "72104910"], pa.string()),
    "origin_country": pa.array(["CN", "CN"], pa.string()),
    "measure": pa.array(["antidumping", "countervailing"], pa.string()),
    "additional_duty_rate": pa.array([35.0, 18.0], pa.float64()),
    "valid_from": pa.array([REMEDY_7318_FROM, REMEDY_721049_FROM], pa.date32()),
    "valid_to": pa.array([None, REMEDY_721049_TO], pa.date32()),
})
pq.write_table(rem, os.path.join(ref, "trade_remedies.parquet"))
tr = [im for im in importers if R.random() < 0.85]   # some importers have no trader record
pq.write_table(pa.table({
    "importer_id": pa.array([im["tin"] for im in tr], pa.string_view()),
    "name": pa.array([f"IMPORTADORA {i} S.A." for i, _ in enumerate(tr)], pa.string()),
    "aeo": pa.array([im["aeo"] if R.random() < 0.9 else None for im in tr], pa.bool_()),
    "registered_on": pa.array([dt.date(2010, 1, 1) + dt.timedelta(days=R.randint(0, 5000)) for _ in tr], pa.date32()),
    "sector": pa.array([None] * len(tr), pa.string()),
}), os.path.join(ref, "traders.parquet"))
print("traders", len(tr), "of", N_IMP)

# --------------------------------------------------------------- truth
os.makedirs(os.path.join(OUT, "_truth"), exist_ok=True)
tp = os.path.join(OUT, "_truth", "truth.parquet")
pq.write_table(pa.Table.from_pylist(truth), tp)
print("truth", tp)
print("undervaluers", [importers[i]["tin"] for i in undervaluers][:5], "transshippers", [importers[i]["tin"] for i in transshippers])
