//! Generation of one chunk of declarations (a part file of one month), with
//! its inspections and ground truth. Chunks are independent: each has its
//! own random stream derived from (seed, month, chunk), so the output is the
//! same whatever the number of threads.

use std::fmt::Write as _;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int32Builder,
    RecordBatch, StringBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use chrono::NaiveDate;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::world::{
    COUNTRIES, FraudKind, VAT_RATE, World, country_index, sample_cumulative, sample_origin,
};

pub const MONEY: DataType = DataType::Decimal128(18, 2);

pub fn declarations_schema() -> SchemaRef {
    let text = |name, nullable| Field::new(name, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        text("declaration_id", false),
        Field::new("item_no", DataType::Int32, false),
        Field::new("declaration_date", DataType::Date32, false),
        text("office_code", true),
        text("regime", true),
        text("importer_id", false),
        text("declarant_id", true),
        text("supplier_id", true),
        text("hs_code", false),
        text("description", true),
        text("origin_country", true),
        text("export_country", true),
        text("preference_code", true),
        Field::new("quantity", DataType::Float64, true),
        text("quantity_unit", true),
        Field::new("net_mass_kg", DataType::Float64, true),
        Field::new("gross_mass_kg", DataType::Float64, true),
        Field::new("customs_value", MONEY, false),
        Field::new("duty_rate", DataType::Float64, true),
        Field::new("duties_paid", MONEY, true),
        text("transport_mode", true),
        text("lane", true),
    ]))
}

pub fn inspections_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("declaration_id", DataType::Utf8, false),
        Field::new("item_no", DataType::Int32, true),
        Field::new("inspected_on", DataType::Date32, false),
        Field::new("kind", DataType::Utf8, true),
        Field::new("result", DataType::Utf8, false),
        Field::new("fraud_type", DataType::Utf8, true),
        Field::new("additional_revenue", MONEY, true),
    ]))
}

/// Ground truth, one row per declaration item (`_truth/`).
pub fn truth_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("declaration_id", DataType::Utf8, false),
        Field::new("item_no", DataType::Int32, false),
        Field::new("fraud", DataType::Boolean, false),
        Field::new("fraud_type", DataType::Utf8, true),
        Field::new("fraud_detail", DataType::Utf8, true),
        Field::new("revenue_loss", MONEY, false),
        Field::new("true_hs_code", DataType::Utf8, false),
        Field::new("true_origin", DataType::Utf8, false),
        Field::new("true_customs_value", MONEY, false),
    ]))
}

pub struct ChunkSpec {
    pub year: i32,
    pub month: u32,
    pub month_index: u32,
    pub chunk: u32,
    pub rows: usize,
    pub seed: u64,
}

#[derive(Debug, Default, Clone)]
pub struct ChunkStats {
    pub declarations: u64,
    pub inspections: u64,
    pub fraud_items: [u64; 5],
}

pub struct ChunkOutput {
    pub declarations: RecordBatch,
    pub inspections: RecordBatch,
    pub truth: RecordBatch,
    pub stats: ChunkStats,
}

/// One generated item, before it is appended to the columns.
#[derive(Clone)]
struct Item {
    product: usize,
    true_line: usize,
    declared_line: usize,
    true_country: usize,
    declared_country: usize,
    export_country: usize,
    preference: Option<&'static str>,
    quantity: f64,
    net_mass: f64,
    gross_mass: f64,
    true_value: i128,
    declared_value: i128,
    duty_rate: f64,
    duties_paid: i128,
    fraud: Option<FraudKind>,
    revenue_loss: i128,
    description: usize,
}

/// A quantity as declared in `unit`: whole units, at least one, or
/// kilograms and litres to a tenth, at least a tenth.
fn declarable(quantity: f64, unit: &str) -> f64 {
    if unit != "KGM" && unit != "LTR" {
        quantity.round().max(1.0)
    } else {
        (quantity * 10.0).round().max(1.0) / 10.0
    }
}

fn cents(x: f64) -> i128 {
    (x * 100.0).round() as i128
}

/// Duty + VAT in cents on `value_cents`, and the duty rate applied.
fn assess(value_cents: i128, rate: f64) -> i128 {
    let value = value_cents as f64 / 100.0;
    let duty = value * rate / 100.0;
    cents(duty + VAT_RATE * (value + duty))
}

struct Generator<'w> {
    world: &'w World,
    rng: ChaCha8Rng,
    date: NaiveDate,
    month_index: u32,
    /// First day after the generated period: later inspections are unknown.
    period_end: NaiveDate,
    hubs: [usize; 2],
    circumvention_routes: [usize; 4],
    /// The drift variant's second half (see `Variant::drift`).
    shifted: bool,
}

impl Generator<'_> {
    fn normal(&mut self) -> f64 {
        StandardNormal.sample(&mut self.rng)
    }

    fn remedy_rate(&self, product: usize, country: usize) -> f64 {
        match self.world.trade[product].remedy {
            Some(r) => {
                let remedy = &self.world.remedies[r];
                if remedy.country == country && self.date >= remedy.valid_from {
                    remedy.rate
                } else {
                    0.0
                }
            }
            None => 0.0,
        }
    }

    fn rate(&self, line: usize, country: usize, preference: bool) -> f64 {
        let tariff = if preference {
            0.0
        } else {
            self.world.lines[line].duty_rate
        };
        tariff + self.remedy_rate(self.world.lines[line].product, country)
    }

    fn item(&mut self, trader: usize) -> Item {
        let world = self.world;
        let t = &world.traders[trader];
        let product = t.products[sample_cumulative(&t.cumulative, self.rng.random())];
        let trade = &world.trade[product];
        let spec = &world.products[product];
        let true_line = trade.lines[self.rng.random_range(0..trade.lines.len())];
        let mut origin = sample_origin(&trade.origins, self.rng.random());
        // Importers turn away from origins hit by a trade remedy.
        if self.remedy_rate(product, trade.origins[origin].country) > 0.0
            && self.rng.random::<f64>() < 0.6
        {
            origin = sample_origin(&trade.origins, self.rng.random());
        }

        let supplier_no = (trader * 31 + product * 7) % 5000;
        let propensity = if world.variant.fraud_by_parties {
            // The importer's own inclination counts for little; the
            // declarant it works with and the supplier it buys from for much.
            t.propensity * 0.3
                + if crate::world::colluding(t.broker, trader) {
                    0.15
                } else {
                    0.0
                }
                + if crate::world::linked_supplier(supplier_no) {
                    0.25
                } else {
                    0.0
                }
        } else {
            t.propensity
        };
        let drifting = self.shifted && crate::world::drifting_product(product);
        let propensity = match (self.shifted && crate::world::new_trader(trader), drifting) {
            (true, _) => crate::world::NEW_TRADER_PROPENSITY,
            (false, true) => propensity.max(crate::world::DRIFTING_PRODUCT_PROPENSITY),
            (false, false) => propensity,
        };
        let fraud_roll = self.rng.random::<f64>() < propensity;
        // The hidden variant's new importers short-declare instead.
        let hidden = world.variant.hidden_fraud && self.shifted && crate::world::new_trader(trader);
        let remedy = trade
            .remedy
            .filter(|&r| self.date >= world.remedies[r].valid_from)
            .map(|r| &world.remedies[r]);
        // Circumvention is what a remedy invites: half the fraud on such
        // goods is goods from the country under the measure declared from
        // elsewhere.
        let circumvent =
            fraud_roll && !hidden && remedy.is_some() && self.rng.random::<f64>() < 0.5;
        if let (true, Some(remedy)) = (circumvent, remedy) {
            origin = trade
                .origins
                .iter()
                .position(|o| o.country == remedy.country)
                .unwrap_or(origin);
        }
        let o = &trade.origins[origin];
        let true_country = o.country;

        let mut quantity = declarable(
            (spec.typical_qty * t.size * (0.9 * self.normal()).exp()).max(0.01),
            spec.unit,
        );
        let unit_value = o.unit_value
            * (trade.drift * self.month_index as f64).exp()
            * (o.sigma * self.normal()).exp();
        let true_value = cents(quantity * unit_value).max(1);
        let mut net_mass = if spec.unit == "KGM" {
            quantity
        } else {
            ((quantity * spec.kg_per_unit * (0.05 * self.normal()).exp()) * 100.0).round() / 100.0
        };
        let mut gross_mass = (net_mass * self.rng.random_range(1.02..1.15) * 100.0).round() / 100.0;
        let mut export_country = if self.rng.random::<f64>() < 0.07 {
            if true_country == self.hubs[0] {
                self.hubs[1]
            } else {
                self.hubs[0]
            }
        } else {
            true_country
        };
        let true_agreement = COUNTRIES[true_country].agreement;
        let true_preference = true_agreement.filter(|_| self.rng.random::<f64>() < 0.85);

        // A fraudster uses the scheme that fits the goods: the preferred one
        // when it does, else the first that does.
        let feasible = |kind: FraudKind| match kind {
            FraudKind::Undervaluation | FraudKind::QuantityUnderdeclared => true,
            FraudKind::Misclassification => {
                !world.lines[true_line].lower_duty_alternatives.is_empty()
                    && true_preference.is_none()
            }
            FraudKind::AntidumpingCircumvention => {
                remedy.is_some_and(|r| r.country == true_country)
            }
            FraudKind::PreferenceAbuse => {
                true_agreement.is_none() && world.lines[true_line].duty_rate > 0.0
            }
        };
        let mut kind = if fraud_roll && hidden {
            Some(FraudKind::QuantityUnderdeclared)
        } else if circumvent && feasible(FraudKind::AntidumpingCircumvention) {
            Some(FraudKind::AntidumpingCircumvention)
        } else if fraud_roll {
            [
                if drifting {
                    FraudKind::Undervaluation
                } else {
                    t.preferred_fraud
                },
                FraudKind::Misclassification,
                FraudKind::PreferenceAbuse,
                FraudKind::Undervaluation,
            ]
            .into_iter()
            .find(|&k| feasible(k))
        } else {
            None
        };

        let mut declared_line = true_line;
        let mut declared_country = true_country;
        let mut declared_value = true_value;
        let mut preference = true_preference;
        let (true_quantity, true_net_mass, true_gross_mass) = (quantity, net_mass, gross_mass);
        match kind {
            Some(FraudKind::QuantityUnderdeclared) => {
                // Part of the goods declared, and value and masses in the
                // same proportion, so every ratio stays ordinary.
                let declared = declarable(quantity * self.rng.random_range(0.4..0.75), spec.unit);
                let share = declared / quantity;
                quantity = declared;
                net_mass = (net_mass * share * 100.0).round() / 100.0;
                gross_mass = (gross_mass * share * 100.0).round() / 100.0;
                declared_value = cents(true_value as f64 / 100.0 * share).max(1);
            }
            Some(FraudKind::Misclassification) => {
                let alts = &world.lines[true_line].lower_duty_alternatives;
                declared_line = alts[self.rng.random_range(0..alts.len())];
            }
            Some(FraudKind::AntidumpingCircumvention) => {
                declared_country = self.circumvention_routes[self.rng.random_range(0..4)];
                export_country = if self.rng.random::<f64>() < 0.5 {
                    self.hubs[0]
                } else {
                    declared_country
                };
                preference = COUNTRIES[declared_country]
                    .agreement
                    .filter(|_| self.rng.random::<f64>() < 0.5);
            }
            Some(FraudKind::PreferenceAbuse) => {
                let partners = trade
                    .origins
                    .iter()
                    .map(|o| o.country)
                    .filter(|&c| COUNTRIES[c].agreement.is_some());
                let count = partners.clone().count();
                declared_country = if count == 0 {
                    country_index("MX")
                } else {
                    partners
                        .clone()
                        .nth(self.rng.random_range(0..count))
                        .expect("index below count")
                };
                preference = COUNTRIES[declared_country].agreement;
                if self.rng.random::<f64>() < 0.5 {
                    export_country = declared_country;
                }
            }
            Some(FraudKind::Undervaluation) => {
                let share = if world.variant.fraud_by_parties {
                    self.rng.random_range(0.6..0.85)
                } else {
                    self.rng.random_range(0.3..0.7)
                };
                declared_value = cents(true_value as f64 / 100.0 * share).max(1);
            }
            None => {}
        }

        let true_rate = self.rate(true_line, true_country, true_preference.is_some());
        let true_duties = assess(true_value, true_rate);
        let duty_rate = self.rate(declared_line, declared_country, preference.is_some());
        let duties_paid = assess(declared_value, duty_rate);
        let mut revenue_loss = true_duties - duties_paid;
        if kind.is_some() && revenue_loss <= 0 {
            // No revenue at stake means no fraud worth the name: undo it.
            kind = None;
        }
        if kind.is_none() {
            (quantity, net_mass, gross_mass) = (true_quantity, true_net_mass, true_gross_mass);
            declared_line = true_line;
            declared_country = true_country;
            declared_value = true_value;
            preference = true_preference;
            revenue_loss = 0;
        }
        let duty_rate = self.rate(declared_line, declared_country, preference.is_some());
        let duties_paid = assess(declared_value, duty_rate);

        Item {
            product,
            true_line,
            declared_line,
            true_country,
            declared_country,
            export_country,
            preference,
            quantity,
            net_mass,
            gross_mass,
            true_value,
            declared_value,
            duty_rate,
            duties_paid,
            fraud: kind,
            revenue_loss,
            description: self.rng.random_range(0..spec.commercial.len()),
        }
    }
}

struct DeclarationColumns {
    declaration_id: StringBuilder,
    item_no: Int32Builder,
    declaration_date: Date32Builder,
    office_code: StringBuilder,
    regime: StringBuilder,
    importer_id: StringBuilder,
    declarant_id: StringBuilder,
    supplier_id: StringBuilder,
    hs_code: StringBuilder,
    description: StringBuilder,
    origin_country: StringBuilder,
    export_country: StringBuilder,
    preference_code: StringBuilder,
    quantity: Float64Builder,
    quantity_unit: StringBuilder,
    net_mass_kg: Float64Builder,
    gross_mass_kg: Float64Builder,
    customs_value: Decimal128Builder,
    duty_rate: Float64Builder,
    duties_paid: Decimal128Builder,
    transport_mode: StringBuilder,
    lane: StringBuilder,
}

fn strings(rows: usize, bytes_per_row: usize) -> StringBuilder {
    StringBuilder::with_capacity(rows, rows * bytes_per_row)
}

fn money(rows: usize) -> Decimal128Builder {
    Decimal128Builder::with_capacity(rows).with_data_type(MONEY)
}

impl DeclarationColumns {
    fn new(rows: usize) -> Self {
        DeclarationColumns {
            declaration_id: strings(rows, 18),
            item_no: Int32Builder::with_capacity(rows),
            declaration_date: Date32Builder::with_capacity(rows),
            office_code: strings(rows, 6),
            regime: strings(rows, 3),
            importer_id: strings(rows, 9),
            declarant_id: strings(rows, 8),
            supplier_id: strings(rows, 6),
            hs_code: strings(rows, 8),
            description: strings(rows, 28),
            origin_country: strings(rows, 2),
            export_country: strings(rows, 2),
            preference_code: strings(rows, 6),
            quantity: Float64Builder::with_capacity(rows),
            quantity_unit: strings(rows, 3),
            net_mass_kg: Float64Builder::with_capacity(rows),
            gross_mass_kg: Float64Builder::with_capacity(rows),
            customs_value: money(rows),
            duty_rate: Float64Builder::with_capacity(rows),
            duties_paid: money(rows),
            transport_mode: strings(rows, 4),
            lane: strings(rows, 5),
        }
    }

    fn finish(mut self) -> RecordBatch {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.declaration_id.finish()),
            Arc::new(self.item_no.finish()),
            Arc::new(self.declaration_date.finish()),
            Arc::new(self.office_code.finish()),
            Arc::new(self.regime.finish()),
            Arc::new(self.importer_id.finish()),
            Arc::new(self.declarant_id.finish()),
            Arc::new(self.supplier_id.finish()),
            Arc::new(self.hs_code.finish()),
            Arc::new(self.description.finish()),
            Arc::new(self.origin_country.finish()),
            Arc::new(self.export_country.finish()),
            Arc::new(self.preference_code.finish()),
            Arc::new(self.quantity.finish()),
            Arc::new(self.quantity_unit.finish()),
            Arc::new(self.net_mass_kg.finish()),
            Arc::new(self.gross_mass_kg.finish()),
            Arc::new(self.customs_value.finish()),
            Arc::new(self.duty_rate.finish()),
            Arc::new(self.duties_paid.finish()),
            Arc::new(self.transport_mode.finish()),
            Arc::new(self.lane.finish()),
        ];
        RecordBatch::try_new(declarations_schema(), columns).expect("columns match the schema")
    }
}

struct InspectionColumns {
    declaration_id: StringBuilder,
    item_no: Int32Builder,
    inspected_on: Date32Builder,
    kind: StringBuilder,
    result: StringBuilder,
    fraud_type: StringBuilder,
    additional_revenue: Decimal128Builder,
}

struct TruthColumns {
    declaration_id: StringBuilder,
    item_no: Int32Builder,
    fraud: BooleanBuilder,
    fraud_type: StringBuilder,
    fraud_detail: StringBuilder,
    revenue_loss: Decimal128Builder,
    true_hs_code: StringBuilder,
    true_origin: StringBuilder,
    true_customs_value: Decimal128Builder,
}

const EPOCH: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");

pub fn days_since_epoch(date: NaiveDate) -> i32 {
    (date - EPOCH).num_days() as i32
}

/// Share of inspected fraud that each kind of control finds, by fraud
/// category (valuation, classification, origin, other: short-declared
/// goods, which counting finds and consistent documents hide).
fn detection_rate(kind: &str, category: &str) -> f64 {
    match (kind, category) {
        ("physical", "valuation") => 0.45,
        ("physical", "classification") => 0.85,
        ("physical", "other") => 0.85,
        ("documentary", "other") => 0.20,
        ("pca", "other") => 0.60,
        ("physical", _) => 0.35,
        ("documentary", "valuation") => 0.35,
        ("documentary", "classification") => 0.50,
        ("documentary", _) => 0.55,
        (_, "valuation") => 0.80,
        (_, "classification") => 0.75,
        _ => 0.85,
    }
}

pub fn generate_chunk(world: &World, spec: &ChunkSpec) -> ChunkOutput {
    let month_start = NaiveDate::from_ymd_opt(spec.year, spec.month, 1).expect("valid month");
    let next_month = crate::world::add_months(month_start, 1);
    let days_in_month = (next_month - month_start).num_days() as u64;
    let period_end = crate::world::add_months(world.start, world.months as i32);
    let seed = spec
        .seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(((spec.month_index as u64) << 32) | spec.chunk as u64);
    let shifted = world.variant.drift && spec.month_index >= world.months / 2;
    let mut g = Generator {
        world,
        rng: ChaCha8Rng::seed_from_u64(seed),
        date: month_start,
        month_index: spec.month_index,
        period_end,
        hubs: [country_index("PA"), country_index("US")],
        circumvention_routes: if shifted {
            // New routes the first half never showed.
            [
                country_index("BD"),
                country_index("PK"),
                country_index("TR"),
                country_index("IN"),
            ]
        } else {
            [
                country_index("VN"),
                country_index("MY"),
                country_index("TH"),
                country_index("PA"),
            ]
        },
        shifted,
    };

    let rows = spec.rows;
    let mut d = DeclarationColumns::new(rows);
    let inspected_guess = rows / 4;
    let mut ins = InspectionColumns {
        declaration_id: strings(inspected_guess, 18),
        item_no: Int32Builder::with_capacity(inspected_guess),
        inspected_on: Date32Builder::with_capacity(inspected_guess),
        kind: strings(inspected_guess, 8),
        result: strings(inspected_guess, 9),
        fraud_type: strings(inspected_guess, 4),
        additional_revenue: money(inspected_guess),
    };
    let mut truth = TruthColumns {
        declaration_id: strings(rows, 18),
        item_no: Int32Builder::with_capacity(rows),
        fraud: BooleanBuilder::with_capacity(rows),
        fraud_type: strings(rows, 2),
        fraud_detail: strings(rows, 2),
        revenue_loss: money(rows),
        true_hs_code: strings(rows, 8),
        true_origin: strings(rows, 2),
        true_customs_value: money(rows),
    };
    let mut stats = ChunkStats::default();
    let mut id = String::with_capacity(24);
    let mut supplier = String::with_capacity(8);
    let mut items: Vec<Item> = Vec::with_capacity(20);
    let mut written = 0usize;
    let mut sequence = 0u32;

    while written < rows {
        sequence += 1;
        id.clear();
        write!(
            id,
            "{:04}{:02}-{:03}-{:06}",
            spec.year, spec.month, spec.chunk, sequence
        )
        .expect("write to String");
        let mut trader_index = sample_cumulative(&world.trader_cumulative, g.rng.random());
        if world.variant.drift && !shifted {
            // New traders are not there yet.
            while crate::world::new_trader(trader_index) {
                trader_index = sample_cumulative(&world.trader_cumulative, g.rng.random());
            }
        }
        let trader = &world.traders[trader_index];
        g.date = month_start + chrono::Days::new(g.rng.random_range(0..days_in_month));
        let date = days_since_epoch(g.date);
        // Items per declaration: 1 + geometric, mean about 2.2.
        let mut n_items = 1;
        while n_items < 20 && g.rng.random::<f64>() < 0.55 {
            n_items += 1;
        }
        let n_items = n_items.min(rows - written);
        items.clear();
        for _ in 0..n_items {
            let item = g.item(trader_index);
            items.push(item);
        }

        let first = &items[0];
        let (transport, office) = route(
            &mut g,
            first.export_country,
            world.products[first.product].group,
        );
        let regime = match g.rng.random::<f64>() {
            x if x < 0.90 => "IM4",
            x if x < 0.97 => "IM7",
            _ => "IM5",
        };
        let any_fraud = items.iter().any(|i| i.fraud.is_some());
        let (mut red, mut yellow, blue) = if trader.aeo {
            (0.02, 0.05, 0.01)
        } else {
            (0.10, 0.15, 0.03)
        };
        if any_fraud {
            // The existing selectivity has some skill, not much.
            red *= 2.0;
            yellow *= 1.3;
        }
        let scale = world
            .variant
            .inspection_rate
            .map_or(1.0, |r| r / crate::world::DEFAULT_INSPECTION_RATE);
        red *= scale;
        yellow *= scale;
        let blue = blue * scale;
        let lane = match g.rng.random::<f64>() {
            x if x < red => "red",
            x if x < red + yellow => "yellow",
            x if x < red + yellow + blue => "blue",
            _ => "green",
        };
        let inspection_kind = match lane {
            "red" => Some("physical"),
            "yellow" => Some("documentary"),
            "blue" => Some("pca"),
            _ => (g.rng.random::<f64>() < 0.004 * scale).then_some("pca"),
        };
        let declarant = &world.brokers[trader.broker];
        stats.declarations += 1;

        for (n, item) in items.iter().enumerate() {
            let item_no = n as i32 + 1;
            let product = &world.products[item.product];
            d.declaration_id.append_value(&id);
            d.item_no.append_value(item_no);
            d.declaration_date.append_value(date);
            d.office_code.append_value(office);
            d.regime.append_value(regime);
            d.importer_id.append_value(&trader.id);
            d.declarant_id.append_value(declarant);
            supplier.clear();
            write!(
                supplier,
                "{}{:04}",
                COUNTRIES[item.export_country].code,
                (trader_index * 31 + item.product * 7) % 5000
            )
            .expect("write to String");
            d.supplier_id.append_value(&supplier);
            d.hs_code
                .append_value(&world.lines[item.declared_line].code);
            let shaped = world.variant.export_shaped;
            d.description
                .append_option((!shaped).then(|| &product.commercial[item.description]));
            d.origin_country
                .append_value(COUNTRIES[item.declared_country].code);
            d.export_country
                .append_value(COUNTRIES[item.export_country].code);
            d.preference_code.append_option(item.preference);
            d.quantity.append_option((!shaped).then_some(item.quantity));
            d.quantity_unit
                .append_option((!shaped).then_some(product.unit));
            d.net_mass_kg.append_value(item.net_mass);
            d.gross_mass_kg.append_value(item.gross_mass);
            d.customs_value.append_value(item.declared_value);
            d.duty_rate.append_value(item.duty_rate);
            d.duties_paid.append_value(item.duties_paid);
            d.transport_mode.append_value(transport);
            d.lane.append_value(lane);

            truth.declaration_id.append_value(&id);
            truth.item_no.append_value(item_no);
            truth.fraud.append_value(item.fraud.is_some());
            truth
                .fraud_type
                .append_option(item.fraud.map(FraudKind::category));
            truth
                .fraud_detail
                .append_option(item.fraud.map(FraudKind::detail));
            truth.revenue_loss.append_value(item.revenue_loss);
            truth
                .true_hs_code
                .append_value(&world.lines[item.true_line].code);
            truth
                .true_origin
                .append_value(COUNTRIES[item.true_country].code);
            truth.true_customs_value.append_value(item.true_value);
            if let Some(fraud) = item.fraud {
                stats.fraud_items[fraud as usize] += 1;
            }

            if let Some(kind) = inspection_kind {
                let delay = if kind == "pca" {
                    g.rng.random_range(45..360)
                } else {
                    g.rng.random_range(0..3)
                };
                let inspected_on = g.date + chrono::Days::new(delay);
                // Outcomes after the end of the data are not known yet.
                if inspected_on < g.period_end {
                    let found = item
                        .fraud
                        .filter(|f| g.rng.random::<f64>() < detection_rate(kind, f.category()));
                    ins.declaration_id.append_value(&id);
                    ins.item_no.append_value(item_no);
                    ins.inspected_on
                        .append_value(days_since_epoch(inspected_on));
                    ins.kind.append_value(kind);
                    ins.result.append_value(if found.is_some() {
                        "fraud"
                    } else {
                        "compliant"
                    });
                    ins.fraud_type.append_option(found.map(FraudKind::category));
                    ins.additional_revenue
                        .append_option(found.map(|_| item.revenue_loss));
                    stats.inspections += 1;
                }
            }
        }
        written += n_items;
    }

    let inspections = RecordBatch::try_new(
        inspections_schema(),
        vec![
            Arc::new(ins.declaration_id.finish()),
            Arc::new(ins.item_no.finish()),
            Arc::new(ins.inspected_on.finish()),
            Arc::new(ins.kind.finish()),
            Arc::new(ins.result.finish()),
            Arc::new(ins.fraud_type.finish()),
            Arc::new(ins.additional_revenue.finish()),
        ],
    )
    .expect("columns match the schema");
    let truth = RecordBatch::try_new(
        truth_schema(),
        vec![
            Arc::new(truth.declaration_id.finish()),
            Arc::new(truth.item_no.finish()),
            Arc::new(truth.fraud.finish()),
            Arc::new(truth.fraud_type.finish()),
            Arc::new(truth.fraud_detail.finish()),
            Arc::new(truth.revenue_loss.finish()),
            Arc::new(truth.true_hs_code.finish()),
            Arc::new(truth.true_origin.finish()),
            Arc::new(truth.true_customs_value.finish()),
        ],
    )
    .expect("columns match the schema");
    ChunkOutput {
        declarations: d.finish(),
        inspections,
        truth,
        stats,
    }
}

/// Transport mode and office of clearance, from where the goods come.
fn route(
    g: &mut Generator,
    export_country: usize,
    group: crate::catalogue::Group,
) -> (&'static str, &'static str) {
    use crate::catalogue::Group;
    let country = COUNTRIES[export_country].code;
    let u = g.rng.random::<f64>();
    if COUNTRIES[export_country].road && u < 0.85 {
        let office = match country {
            "MX" => "GT-TUM",
            "SV" => "GT-PDA",
            "HN" => "GT-AGC",
            _ => "GT-PDA",
        };
        return ("ROAD", office);
    }
    let air_share = match group {
        Group::Electronics | Group::Chemical => 0.30,
        Group::Steel | Group::Building | Group::Vehicles => 0.01,
        _ => 0.10,
    };
    let v = g.rng.random::<f64>();
    if v < air_share {
        ("AIR", "GT-AUR")
    } else if v < air_share + 0.03 {
        ("POST", "GT-CEN")
    } else {
        let port = match g.rng.random::<f64>() {
            x if x < 0.55 => "GT-PQZ",
            x if x < 0.85 => "GT-STO",
            _ => "GT-PBA",
        };
        ("SEA", port)
    }
}
