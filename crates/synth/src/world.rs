//! The fixed facts of the synthetic administration, drawn once per seed:
//! countries, tariff lines, trade remedies and traders.

use chrono::NaiveDate;
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use crate::catalogue::{Catalogue, Group, Product};

/// The administration the data belongs to; never an origin.
pub const HOME_COUNTRY: &str = "GT";
/// Value-added tax on (customs value + duty), percent / 100.
pub const VAT_RATE: f64 = 0.12;

pub struct Country {
    pub code: &'static str,
    /// Price level relative to the world median for the same goods.
    pub price: f64,
    /// Preferential agreement whose origin this country can claim.
    pub agreement: Option<&'static str>,
    /// Trades with the home country over land.
    pub road: bool,
}

const fn country(
    code: &'static str,
    price: f64,
    agreement: Option<&'static str>,
    road: bool,
) -> Country {
    Country {
        code,
        price,
        agreement,
        road,
    }
}

pub const COUNTRIES: &[Country] = &[
    country("CN", 0.78, None, false),
    country("US", 1.10, Some("CAFTA-DR"), false),
    country("MX", 0.92, Some("TLC-MX"), true),
    country("HN", 0.90, Some("SIECA"), true),
    country("SV", 0.90, Some("SIECA"), true),
    country("NI", 0.85, Some("SIECA"), true),
    country("CR", 0.95, Some("SIECA"), true),
    country("PA", 1.00, Some("TLC-PA"), false),
    country("CO", 0.90, Some("TLC-CO"), false),
    country("BR", 0.90, None, false),
    country("CL", 0.95, Some("TLC-CL"), false),
    country("DE", 1.25, Some("AACUE"), false),
    country("ES", 1.10, Some("AACUE"), false),
    country("IT", 1.20, Some("AACUE"), false),
    country("CH", 1.35, None, false),
    country("JP", 1.15, None, false),
    country("KR", 1.00, Some("TLC-KR"), false),
    country("TW", 0.95, Some("TLC-TW"), false),
    country("VN", 0.75, None, false),
    country("TH", 0.80, None, false),
    country("MY", 0.85, None, false),
    country("IN", 0.80, None, false),
    country("BD", 0.70, None, false),
    country("PK", 0.72, None, false),
    country("TR", 0.85, None, false),
];

pub fn country_index(code: &str) -> usize {
    COUNTRIES
        .iter()
        .position(|c| c.code == code)
        .unwrap_or_else(|| panic!("country {code} not in COUNTRIES"))
}

/// Usual origins of each group of goods and their shares.
fn origin_pattern(group: Group) -> &'static [(&'static str, f64)] {
    match group {
        Group::Food => &[
            ("US", 0.30),
            ("MX", 0.20),
            ("HN", 0.10),
            ("SV", 0.08),
            ("NI", 0.08),
            ("CR", 0.07),
            ("BR", 0.07),
            ("CL", 0.05),
            ("CO", 0.05),
        ],
        Group::Textile => &[
            ("CN", 0.35),
            ("BD", 0.12),
            ("VN", 0.12),
            ("HN", 0.10),
            ("SV", 0.08),
            ("IN", 0.08),
            ("US", 0.07),
            ("MX", 0.05),
            ("PK", 0.03),
        ],
        Group::Steel => &[
            ("CN", 0.35),
            ("MX", 0.15),
            ("US", 0.10),
            ("BR", 0.10),
            ("KR", 0.08),
            ("TR", 0.08),
            ("IN", 0.07),
            ("JP", 0.04),
            ("VN", 0.03),
        ],
        Group::Chemical => &[
            ("US", 0.25),
            ("DE", 0.15),
            ("CN", 0.15),
            ("MX", 0.12),
            ("IN", 0.12),
            ("CO", 0.06),
            ("ES", 0.05),
            ("CH", 0.05),
            ("BR", 0.05),
        ],
        Group::Machinery => &[
            ("US", 0.25),
            ("CN", 0.25),
            ("DE", 0.12),
            ("JP", 0.10),
            ("MX", 0.08),
            ("IT", 0.07),
            ("KR", 0.06),
            ("BR", 0.04),
            ("ES", 0.03),
        ],
        Group::Electronics => &[
            ("CN", 0.45),
            ("US", 0.12),
            ("MX", 0.10),
            ("KR", 0.08),
            ("VN", 0.08),
            ("TW", 0.07),
            ("JP", 0.05),
            ("MY", 0.05),
        ],
        Group::Vehicles => &[
            ("JP", 0.30),
            ("US", 0.20),
            ("KR", 0.20),
            ("CN", 0.10),
            ("MX", 0.08),
            ("DE", 0.08),
            ("IN", 0.04),
        ],
        Group::Consumer => &[
            ("CN", 0.45),
            ("US", 0.15),
            ("MX", 0.10),
            ("VN", 0.06),
            ("IT", 0.05),
            ("ES", 0.05),
            ("IN", 0.05),
            ("CO", 0.05),
            ("BR", 0.04),
        ],
        Group::Building => &[
            ("CN", 0.30),
            ("MX", 0.20),
            ("ES", 0.12),
            ("US", 0.10),
            ("BR", 0.08),
            ("IT", 0.08),
            ("TR", 0.06),
            ("CO", 0.06),
        ],
    }
}

/// Duty rates (percent) a line of each group may carry, in the spirit of
/// the Central American common external tariff.
fn duty_rates(group: Group) -> &'static [f64] {
    match group {
        Group::Food => &[5.0, 10.0, 15.0, 20.0, 40.0],
        Group::Textile => &[10.0, 15.0, 20.0],
        Group::Steel => &[0.0, 5.0, 10.0],
        Group::Chemical => &[0.0, 5.0, 10.0],
        Group::Machinery => &[0.0, 5.0, 10.0, 15.0],
        Group::Electronics => &[0.0, 5.0, 10.0, 15.0],
        Group::Vehicles => &[5.0, 10.0, 20.0, 30.0],
        Group::Consumer => &[5.0, 10.0, 15.0, 20.0],
        Group::Building => &[5.0, 10.0, 15.0],
    }
}

/// A national tariff line: HS6 plus two national digits.
pub struct TariffLine {
    pub code: String,
    pub product: usize,
    pub duty_rate: f64,
    /// Lines a fraudster could declare instead: same heading (else same
    /// chapter), strictly lower duty.
    pub lower_duty_alternatives: Vec<usize>,
}

pub struct Origin {
    pub country: usize,
    pub cumulative: f64,
    /// Median unit value of the product from this origin at month 0.
    pub unit_value: f64,
    /// Dispersion of log unit values.
    pub sigma: f64,
}

pub struct ProductTrade {
    pub lines: Vec<usize>,
    pub origins: Vec<Origin>,
    /// Monthly log drift of unit values.
    pub drift: f64,
    pub remedy: Option<usize>,
}

pub struct Remedy {
    pub product: usize,
    pub country: usize,
    pub measure: &'static str,
    pub rate: f64,
    pub valid_from: NaiveDate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FraudKind {
    Undervaluation,
    Misclassification,
    AntidumpingCircumvention,
    PreferenceAbuse,
    /// Goods short-declared, with value and masses to match: the unit
    /// value, code and origin are ordinary, so only a control shows it.
    QuantityUnderdeclared,
}

impl FraudKind {
    /// The inspection vocabulary (`inspections.fraud_type`).
    pub fn category(self) -> &'static str {
        match self {
            FraudKind::Undervaluation => "valuation",
            FraudKind::Misclassification => "classification",
            FraudKind::AntidumpingCircumvention | FraudKind::PreferenceAbuse => "origin",
            FraudKind::QuantityUnderdeclared => "other",
        }
    }
    pub fn detail(self) -> &'static str {
        match self {
            FraudKind::Undervaluation => "undervaluation",
            FraudKind::Misclassification => "misclassification",
            FraudKind::AntidumpingCircumvention => "antidumping_circumvention",
            FraudKind::PreferenceAbuse => "preference_abuse",
            FraudKind::QuantityUnderdeclared => "quantity_underdeclared",
        }
    }
}

pub struct Trader {
    pub id: String,
    pub name: String,
    pub aeo: bool,
    pub registered_on: NaiveDate,
    pub sector: &'static str,
    /// Products this trader imports and their cumulative weights.
    pub products: Vec<usize>,
    pub cumulative: Vec<f64>,
    /// Probability that one of its items is fraudulent.
    pub propensity: f64,
    pub preferred_fraud: FraudKind,
    pub broker: usize,
    /// Scales quantities: big importers ship big consignments.
    pub size: f64,
}

pub struct World {
    pub variant: crate::Variant,
    pub products: Vec<Product>,
    pub trade: Vec<ProductTrade>,
    pub lines: Vec<TariffLine>,
    pub remedies: Vec<Remedy>,
    pub traders: Vec<Trader>,
    /// Cumulative Zipf weights of trader activity.
    pub trader_cumulative: Vec<f64>,
    pub brokers: Vec<String>,
    pub catalogue_nomenclature: Vec<crate::catalogue::NomenclatureEntry>,
    pub start: NaiveDate,
    pub months: u32,
}

/// Subheadings given trade remedies against China in the built-in catalogue.
const BUILT_IN_REMEDIES: &[(&str, &str, f64)] = &[
    ("721420", "antidumping", 38.0),
    ("721049", "antidumping", 27.0),
    ("760429", "antidumping", 45.0),
    ("690721", "antidumping", 32.0),
    ("401110", "countervailing", 18.0),
];

/// Chapters whose goods attract trade remedies in the real nomenclature.
const REMEDY_CHAPTERS: &[&str] = &["72", "73", "76", "69", "40", "39", "25"];

pub fn sample_cumulative(cumulative: &[f64], u: f64) -> usize {
    let total = *cumulative.last().expect("non-empty weights");
    cumulative
        .partition_point(|&c| c <= u * total)
        .min(cumulative.len() - 1)
}

/// Samples an origin by its share of trade (no allocation per draw).
pub fn sample_origin(origins: &[Origin], u: f64) -> usize {
    let total = origins.last().expect("products have origins").cumulative;
    origins
        .partition_point(|o| o.cumulative <= u * total)
        .min(origins.len() - 1)
}

fn cumulative(weights: impl Iterator<Item = f64>) -> Vec<f64> {
    weights
        .scan(0.0, |sum, w| {
            *sum += w;
            Some(*sum)
        })
        .collect()
}

impl World {
    pub fn build(
        catalogue: Catalogue,
        rows: u64,
        start: NaiveDate,
        months: u32,
        rng: &mut ChaCha8Rng,
    ) -> World {
        let Catalogue {
            products,
            nomenclature,
        } = catalogue;
        let normal = Normal::new(0.0, 1.0).expect("valid normal");

        // Tariff lines: 1 to 3 per subheading.
        let mut lines: Vec<TariffLine> = Vec::new();
        let mut trade: Vec<ProductTrade> = Vec::with_capacity(products.len());
        for (p, product) in products.iter().enumerate() {
            let count = match rng.random::<f64>() {
                x if x < 0.6 => 1,
                x if x < 0.9 => 2,
                _ => 3,
            };
            let suffixes: &[&str] = match count {
                1 => &["00"],
                2 => &["10", "90"],
                _ => &["10", "20", "90"],
            };
            let rates = duty_rates(product.group);
            let mut line_ids = Vec::with_capacity(count);
            for suffix in suffixes {
                line_ids.push(lines.len());
                lines.push(TariffLine {
                    code: format!("{}{suffix}", product.hs6),
                    product: p,
                    duty_rate: rates[rng.random_range(0..rates.len())],
                    lower_duty_alternatives: vec![],
                });
            }
            let origins = draw_origins(product, rng, &normal);
            trade.push(ProductTrade {
                lines: line_ids,
                origins,
                drift: 0.002 + 0.006 * normal.sample(rng),
                remedy: None,
            });
        }
        ensure_sibling_rates_differ(&mut lines, &products);
        for i in 0..lines.len() {
            let (hs4, chapter) = {
                let code = &lines[i].code;
                (&code[..4], &code[..2])
            };
            // Other subheadings only: national lines of the same HS6 share
            // the goods, so no description could tell them apart.
            let lower = |same: &dyn Fn(&TariffLine) -> bool| -> Vec<usize> {
                lines
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| {
                        same(l) && l.product != lines[i].product && l.duty_rate < lines[i].duty_rate
                    })
                    .map(|(j, _)| j)
                    .collect()
            };
            let mut alternatives = lower(&|l: &TariffLine| &l.code[..4] == hs4);
            if alternatives.is_empty() {
                alternatives = lower(&|l: &TariffLine| &l.code[..2] == chapter);
            }
            lines[i].lower_duty_alternatives = alternatives;
        }

        // Trade remedies against China, in force from 40% of the period.
        let cn = country_index("CN");
        let remedy_from = add_months(start, (months * 2 / 5) as i32);
        let mut remedies = Vec::new();
        let mut remedy_products: Vec<(usize, &'static str, f64)> = products
            .iter()
            .enumerate()
            .filter_map(|(p, product)| {
                BUILT_IN_REMEDIES
                    .iter()
                    .find(|(code, _, _)| *code == product.hs6)
                    .map(|(_, measure, rate)| (p, *measure, *rate))
            })
            .collect();
        if remedy_products.is_empty() {
            let mut candidates: Vec<usize> = (0..products.len())
                .filter(|&p| REMEDY_CHAPTERS.contains(&products[p].chapter()))
                .collect();
            candidates.shuffle(rng);
            remedy_products = candidates
                .into_iter()
                .take(8)
                .map(|p| (p, "antidumping", [25.0, 35.0, 45.0][rng.random_range(0..3)]))
                .collect();
        }
        for (p, measure, rate) in remedy_products {
            ensure_origin(&mut trade[p].origins, cn, &products[p], 0.4);
            trade[p].remedy = Some(remedies.len());
            remedies.push(Remedy {
                product: p,
                country: cn,
                measure,
                rate,
                valid_from: remedy_from,
            });
        }

        // Product popularity: Zipf over a seeded order.
        let mut order: Vec<usize> = (0..products.len()).collect();
        order.shuffle(rng);
        let mut popularity = vec![0.0; products.len()];
        for (rank, &p) in order.iter().enumerate() {
            popularity[p] = 1.0 / (rank as f64 + 1.0).powf(0.9);
        }

        let trader_count = (rows / 400).clamp(50, 50_000) as usize;
        let broker_count = (trader_count / 25).max(5);
        let brokers = (0..broker_count)
            .map(|b| format!("DEC{:05}", 10_000 + b * 37 % 90_000))
            .collect();
        let traders = draw_traders(trader_count, broker_count, &products, &popularity, rng);
        let trader_cumulative =
            cumulative((0..trader_count).map(|rank| 1.0 / (rank as f64 + 1.0).powf(1.05)));

        World {
            variant: crate::Variant::default(),
            products,
            trade,
            lines,
            remedies,
            traders,
            trader_cumulative,
            brokers,
            catalogue_nomenclature: nomenclature,
            start,
            months,
        }
    }
}

fn draw_origins(product: &Product, rng: &mut ChaCha8Rng, normal: &Normal<f64>) -> Vec<Origin> {
    let pattern = origin_pattern(product.group);
    let mut chosen: Vec<(usize, f64)> = pattern
        .iter()
        .filter(|(code, _)| *code != crate::world::HOME_COUNTRY)
        .map(|(code, share)| {
            (
                country_index(code),
                share * (0.6 * normal.sample(rng)).exp(),
            )
        })
        .collect();
    // Keep the bigger suppliers; small shares below 3% drop out, but never
    // fewer than three origins per product.
    chosen.sort_by(|a, b| b.1.total_cmp(&a.1));
    let total: f64 = chosen.iter().map(|c| c.1).sum();
    let keep = chosen
        .iter()
        .take_while(|c| c.1 / total >= 0.03)
        .count()
        .max(3);
    chosen.truncate(keep);
    let mut sum = 0.0;
    chosen
        .into_iter()
        .map(|(country, share)| {
            sum += share;
            Origin {
                country,
                cumulative: sum,
                unit_value: product.unit_value
                    * COUNTRIES[country].price
                    * (0.1 * normal.sample(rng)).exp(),
                sigma: rng.random_range(0.22..0.42),
            }
        })
        .collect()
}

/// Makes `country` an origin of the product with at least `share` of trade.
fn ensure_origin(origins: &mut Vec<Origin>, country: usize, product: &Product, share: f64) {
    if origins.iter().any(|o| o.country == country) {
        return;
    }
    let total = origins.last().map_or(0.0, |o| o.cumulative);
    origins.push(Origin {
        country,
        cumulative: total + total * share / (1.0 - share),
        unit_value: product.unit_value * COUNTRIES[country].price,
        sigma: 0.3,
    });
}

/// Misclassification needs siblings with different duties: within a
/// heading with several lines, lines that all share one rate are spread.
fn ensure_sibling_rates_differ(lines: &mut [TariffLine], products: &[Product]) {
    let mut start = 0;
    while start < lines.len() {
        let hs4 = lines[start].code[..4].to_string();
        let end = start
            + lines[start..]
                .iter()
                .take_while(|l| l.code[..4] == hs4)
                .count();
        let first = lines[start].duty_rate;
        if end - start > 1 && lines[start..end].iter().all(|l| l.duty_rate == first) {
            let rates = duty_rates(products[lines[start].product].group);
            let other = rates
                .iter()
                .copied()
                .find(|&r| r != first)
                .unwrap_or(first + 5.0);
            lines[end - 1].duty_rate = other;
        }
        start = end;
    }
}

fn draw_traders(
    count: usize,
    broker_count: usize,
    products: &[Product],
    popularity: &[f64],
    rng: &mut ChaCha8Rng,
) -> Vec<Trader> {
    const PREFIXES: &[&str] = &[
        "Importadora",
        "Comercial",
        "Distribuidora",
        "Grupo",
        "Inversiones",
        "Industrias",
        "Corporación",
        "Almacenes",
    ];
    const CORES: &[&str] = &[
        "del Valle",
        "Maya",
        "Quetzal",
        "Atlántico",
        "Pacífico",
        "Central",
        "Los Altos",
        "Jade",
        "Ceiba",
        "Volcán",
        "Itzá",
        "San Marcos",
        "El Progreso",
        "La Unión",
        "Tikal",
        "Izabal",
    ];
    const SUFFIXES: &[&str] = &["S.A.", "Ltda.", "S.A. de C.V.", "y Cía."];
    let mut headings: Vec<&str> = products.iter().map(|p| p.hs4()).collect();
    headings.dedup();
    let heading_weight: Vec<f64> = headings
        .iter()
        .map(|h| {
            products
                .iter()
                .zip(popularity)
                .filter(|(p, _)| p.hs4() == *h)
                .map(|(_, w)| w)
                .sum()
        })
        .collect();
    let heading_cumulative = cumulative(heading_weight.iter().copied());
    let all_products: Vec<usize> = (0..products.len()).collect();
    let all_cumulative = cumulative(popularity.iter().copied());
    let registered_base = NaiveDate::from_ymd_opt(2005, 1, 1).expect("valid date");
    let fraud_kinds = [
        FraudKind::Undervaluation,
        FraudKind::Undervaluation,
        FraudKind::Misclassification,
        FraudKind::AntidumpingCircumvention,
        FraudKind::PreferenceAbuse,
    ];

    (0..count)
        .map(|rank| {
            // A TIN-like id; the multiplier is coprime with 9,000,000 so
            // ids are a permutation and never collide.
            let id = format!(
                "{:07}-{}",
                1_000_000 + (rank as u64 * 7_654_321) % 9_000_000,
                rank % 10
            );
            let name = format!(
                "{} {} {}",
                PREFIXES[rng.random_range(0..PREFIXES.len())],
                CORES[rng.random_range(0..CORES.len())],
                SUFFIXES[rng.random_range(0..SUFFIXES.len())]
            );
            let big = rank < count / 10;
            let aeo = rng.random::<f64>() < if big { 0.25 } else { 0.02 };
            let (products_of_trader, cumulative_of_trader) = if rng.random::<f64>() < 0.1 {
                (all_products.clone(), all_cumulative.clone())
            } else {
                let n_headings = rng.random_range(1..=4);
                let chosen: Vec<&str> = (0..n_headings)
                    .map(|_| headings[sample_cumulative(&heading_cumulative, rng.random())])
                    .collect();
                let list: Vec<usize> = (0..products.len())
                    .filter(|&p| chosen.contains(&products[p].hs4()))
                    .collect();
                let weights = cumulative(list.iter().map(|&p| popularity[p]));
                (list, weights)
            };
            let main_group =
                products[products_of_trader[sample_cumulative(&cumulative_of_trader, 0.5)]].group;
            let propensity = match rng.random::<f64>() {
                x if x < 0.05 => 0.20,
                x if x < 0.25 => 0.03,
                _ => 0.002,
            } * if aeo { 0.1 } else { 1.0 };
            Trader {
                id,
                name,
                aeo,
                registered_on: registered_base + chrono::Days::new(rng.random_range(0..7300)),
                sector: main_group.sector(),
                products: products_of_trader,
                cumulative: cumulative_of_trader,
                propensity,
                preferred_fraud: fraud_kinds[rng.random_range(0..fraud_kinds.len())],
                broker: rng.random_range(0..broker_count),
                size: if big { 2.0 } else { 1.0 } * (0.5 * rng.random::<f64>()).exp(),
            }
        })
        .collect()
}

/// About the share of items the default selectivity inspects.
pub const DEFAULT_INSPECTION_RATE: f64 = 0.24;

/// Whether a declarant colludes with an importer (fraud by parties): a
/// seventh of the declarants, with a third of their clients.
pub fn colluding(broker: usize, trader: usize) -> bool {
    broker % 7 == 2 && trader % 3 == 0
}

/// Whether a supplier (its number) is linked to fraud: one in nineteen.
pub fn linked_supplier(supplier: usize) -> bool {
    supplier % 19 == 4
}

/// Drift: importers that declare nothing in the first half of the period
/// and defraud at [`NEW_TRADER_PROPENSITY`] in the second (a fortieth).
pub fn new_trader(trader: usize) -> bool {
    trader % 40 == 11
}

pub const NEW_TRADER_PROPENSITY: f64 = 0.25;

/// Drift: products clean in the first half, undervalued at
/// [`DRIFTING_PRODUCT_PROPENSITY`] in the second (one in 53).
pub fn drifting_product(product: usize) -> bool {
    product % 53 == 5
}

pub const DRIFTING_PRODUCT_PROPENSITY: f64 = 0.3;

pub fn add_months(date: NaiveDate, months: i32) -> NaiveDate {
    use chrono::Datelike;
    let total = date.year() * 12 + date.month0() as i32 + months;
    NaiveDate::from_ymd_opt(total.div_euclid(12), total.rem_euclid(12) as u32 + 1, 1)
        .expect("valid month start")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn world_has_misclassification_targets_and_remedies() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let start = NaiveDate::from_ymd_opt(2025, 11, 1).unwrap();
        let world = World::build(crate::catalogue::built_in(), 100_000, start, 12, &mut rng);
        let with_targets = world
            .lines
            .iter()
            .filter(|l| !l.lower_duty_alternatives.is_empty())
            .count();
        assert!(
            with_targets * 3 >= world.lines.len(),
            "{with_targets} of {}",
            world.lines.len()
        );
        for line in &world.lines {
            for &alt in &line.lower_duty_alternatives {
                assert!(world.lines[alt].duty_rate < line.duty_rate);
                assert_eq!(world.lines[alt].code[..2], line.code[..2]);
                assert_ne!(world.lines[alt].code[..6], line.code[..6]);
            }
        }
        assert_eq!(world.remedies.len(), BUILT_IN_REMEDIES.len());
        assert_eq!(
            world.remedies[0].valid_from,
            NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()
        );
        let mut ids: Vec<&str> = world.traders.iter().map(|t| t.id.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), world.traders.len());
    }

    #[test]
    fn month_arithmetic() {
        let d = NaiveDate::from_ymd_opt(2025, 11, 1).unwrap();
        assert_eq!(
            add_months(d, 2),
            NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()
        );
        assert_eq!(
            add_months(d, -11),
            NaiveDate::from_ymd_opt(2024, 12, 1).unwrap()
        );
    }
}
