//! Entity risk profiles, as in DATE (Kim et al., KDD 2020): for each
//! importer, declarant, supplier, product, country, office and pair
//! such as declarant × importer, how many of its items were inspected and
//! how often an inspection found fraud, smoothed toward the overall rate so
//! that an entity with two inspections is not called certain.

use super::features::{ItemColumns, Text};
use crate::flat::FlatTable;
use crate::{FNV_OFFSET, fnv1a};

/// Whom or what a profile is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Importer,
    Declarant,
    Supplier,
    Hs6,
    Hs4,
    Origin,
    Dispatch,
    Office,
    Regime,
    Transport,
    DeclarantImporter,
    ImporterHs4,
    SupplierImporter,
}

pub const ENTITIES: [Entity; 13] = [
    Entity::Importer,
    Entity::Declarant,
    Entity::Supplier,
    Entity::Hs6,
    Entity::Hs4,
    Entity::Origin,
    Entity::Dispatch,
    Entity::Office,
    Entity::Regime,
    Entity::Transport,
    Entity::DeclarantImporter,
    Entity::ImporterHs4,
    Entity::SupplierImporter,
];

/// Prior strength of a smoothed fraud rate, in inspections.
pub const PRIOR_INSPECTIONS: f64 = 10.0;

impl Entity {
    pub fn name(self) -> &'static str {
        match self {
            Entity::Importer => "importer",
            Entity::Declarant => "declarant",
            Entity::Supplier => "supplier",
            Entity::Hs6 => "hs6",
            Entity::Hs4 => "hs4",
            Entity::Origin => "origin",
            Entity::Dispatch => "dispatch_country",
            Entity::Office => "office",
            Entity::Regime => "regime",
            Entity::Transport => "transport_mode",
            Entity::DeclarantImporter => "declarant_importer",
            Entity::ImporterHs4 => "importer_hs4",
            Entity::SupplierImporter => "supplier_importer",
        }
    }

    /// How an auditor reads the entity in a sentence.
    pub fn description(self) -> &'static str {
        match self {
            Entity::Importer => "the importer",
            Entity::Declarant => "the declarant",
            Entity::Supplier => "the supplier",
            Entity::Hs6 => "the HS6 subheading",
            Entity::Hs4 => "the HS4 heading",
            Entity::Origin => "the origin",
            Entity::Dispatch => "the dispatch country",
            Entity::Office => "the office",
            Entity::Regime => "the regime",
            Entity::Transport => "the transport mode",
            Entity::DeclarantImporter => "this declarant with this importer",
            Entity::ImporterHs4 => "the importer in this HS4",
            Entity::SupplierImporter => "this supplier with this importer",
        }
    }

    fn parts(self) -> &'static [Part] {
        use Part::*;
        match self {
            Entity::Importer => &[Field(Text::Importer)],
            Entity::Declarant => &[Field(Text::Declarant)],
            Entity::Supplier => &[Field(Text::Supplier)],
            Entity::Hs6 => &[Digits(6)],
            Entity::Hs4 => &[Digits(4)],
            Entity::Origin => &[Upper(Text::Origin)],
            Entity::Dispatch => &[Upper(Text::Dispatch)],
            Entity::Office => &[Field(Text::Office)],
            Entity::Regime => &[Upper(Text::Regime)],
            Entity::Transport => &[Upper(Text::Transport)],
            Entity::DeclarantImporter => &[Field(Text::Declarant), Field(Text::Importer)],
            Entity::ImporterHs4 => &[Field(Text::Importer), Digits(4)],
            Entity::SupplierImporter => &[Field(Text::Supplier), Field(Text::Importer)],
        }
    }
}

/// A piece of an entity's key.
#[derive(Debug, Clone, Copy)]
enum Part {
    Field(Text),
    /// A code, any case.
    Upper(Text),
    /// The first digits of the HS code (dots and spaces skipped).
    Digits(usize),
}

/// Each row's key for each entity (`None` where a part is NULL), entity by
/// entity.
#[derive(Debug)]
pub struct EntityKeys {
    keys: Vec<Option<u64>>,
    rows: usize,
}

impl EntityKeys {
    pub fn of(items: &ItemColumns) -> EntityKeys {
        let rows = items.len();
        let mut keys = Vec::with_capacity(rows * ENTITIES.len());
        for (e, entity) in ENTITIES.iter().enumerate() {
            let repeats = |row: usize| {
                entity.parts().iter().all(|part| match part {
                    Part::Field(t) | Part::Upper(t) => items.same_as_previous(*t, row),
                    Part::Digits(_) => items.same_as_previous(Text::HsCode, row),
                })
            };
            for row in 0..rows {
                // Items of a declaration repeat the importer, declarant and
                // office: reuse the previous row's key.
                if row > 0 && repeats(row) {
                    let previous = keys[e * rows + row - 1];
                    keys.push(previous);
                } else {
                    keys.push(key(*entity, e, items, row));
                }
            }
        }
        EntityKeys { keys, rows }
    }

    #[inline]
    pub fn get(&self, entity: usize, row: usize) -> Option<u64> {
        self.keys[entity * self.rows + row]
    }
}

fn key(entity: Entity, index: usize, items: &ItemColumns, row: usize) -> Option<u64> {
    let mut hash = fnv1a(FNV_OFFSET, [index as u8]);
    for part in entity.parts() {
        hash = match *part {
            Part::Field(t) => fnv1a(hash, items.text(t, row)?.bytes()),
            Part::Upper(t) => fnv1a(
                hash,
                items.text(t, row)?.bytes().map(|b| b.to_ascii_uppercase()),
            ),
            Part::Digits(n) => {
                let code = items.text(Text::HsCode, row)?;
                let digits = code.bytes().filter(u8::is_ascii_digit);
                if digits.clone().count() < n {
                    return None;
                }
                fnv1a(hash, digits.take(n))
            }
        };
        hash = fnv1a(hash, [0xff]);
    }
    Some(hash)
}

/// Inspections, frauds found and revenue recovered.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Tally {
    pub inspections: f64,
    pub frauds: f64,
    pub revenue: f64,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.inspections += other.inspections;
        self.frauds += other.frauds;
        self.revenue += other.revenue;
    }

    /// A key's tallies over all folds.
    fn sum(folds: &[Tally]) -> Tally {
        folds.iter().fold(Tally::default(), |mut total, t| {
            total.add(*t);
            total
        })
    }

    fn minus(self, other: Tally) -> Tally {
        Tally {
            inspections: self.inspections - other.inspections,
            frauds: self.frauds - other.frauds,
            revenue: self.revenue - other.revenue,
        }
    }

    /// The fraud rate shrunk toward `overall` by [`PRIOR_INSPECTIONS`].
    pub fn smoothed_rate(self, overall: f64) -> f64 {
        (self.frauds + PRIOR_INSPECTIONS * overall) / (self.inspections + PRIOR_INSPECTIONS)
    }
}

/// The profile features of a tally: smoothed rate and `ln(1 + inspections)`;
/// an entity never inspected has the overall rate and 0; a NULL key (the
/// field is missing) gives NaN, the trees' missing value.
pub fn profile_features(tally: Option<Option<Tally>>, overall: f64) -> (f64, f64) {
    match tally {
        None => (f64::NAN, f64::NAN),
        Some(None) => (overall, 0.0),
        Some(Some(t)) => (t.smoothed_rate(overall), t.inspections.max(0.0).ln_1p()),
    }
}

/// The profiles of every entity seen in the labelled items.
#[derive(Debug, Default)]
pub struct Profiles {
    pub overall_rate: f64,
    pub tables: Vec<hashbrown::HashMap<u64, Tally>>,
    /// Each key's profile features, computed once: scoring looks them up
    /// for every row and entity (a division and a logarithm each saved).
    /// Flat tables, so that scoring can prefetch a row's slot ahead of it
    /// (the party and pair tables hold up to hundreds of thousands of keys,
    /// well past the caches). Keys as [`flat_key`].
    features: Vec<FlatTable<(f64, f64)>>,
}

/// An entity key in a [`FlatTable`], where 0 marks an empty slot: key 0
/// shares key 1's slot (one chance in 2^63 per key, as every hashed key).
#[inline]
fn flat_key(key: u64) -> u64 {
    key.max(1)
}

impl Profiles {
    pub fn new(overall_rate: f64, tables: Vec<hashbrown::HashMap<u64, Tally>>) -> Profiles {
        let features =
            tables
                .iter()
                .map(|table| {
                    FlatTable::build(table.iter().map(|(k, t)| {
                        (flat_key(*k), profile_features(Some(Some(*t)), overall_rate))
                    }))
                })
                .collect();
        Profiles {
            overall_rate,
            tables,
            features,
        }
    }

    #[inline]
    pub fn tally(&self, entity: usize, key: u64) -> Option<Tally> {
        self.tables.get(entity)?.get(&key).copied()
    }

    /// The profile features of one key (see [`profile_features`]).
    #[inline]
    pub fn features(&self, entity: usize, key: Option<u64>) -> (f64, f64) {
        match key {
            None => profile_features(None, self.overall_rate),
            Some(k) => match self.features.get(entity).and_then(|t| t.get(flat_key(k))) {
                Some(f) => *f,
                None => profile_features(Some(None), self.overall_rate),
            },
        }
    }

    /// Starts loading the slot of `key`'s profile features (a hint).
    #[inline]
    pub fn prefetch(&self, entity: usize, key: u64) {
        if let Some(table) = self.features.get(entity) {
            table.prefetch(flat_key(key));
        }
    }

    pub fn entries(&self) -> usize {
        self.tables.iter().map(|t| t.len()).sum()
    }
}

/// Folds of the out-of-fold profiles of the training rows.
pub const FOLDS: usize = 5;

/// Tallies per fold, so each training row's profile can leave out its own
/// fold (its own declaration and the others of that fold): a row never
/// sees its own label.
#[derive(Debug)]
pub struct ProfileBuilder {
    tables: Vec<hashbrown::HashMap<u64, [Tally; FOLDS]>>,
    overall: Tally,
    fold_totals: [Tally; FOLDS],
}

impl Default for ProfileBuilder {
    fn default() -> Self {
        ProfileBuilder {
            tables: vec![hashbrown::HashMap::new(); ENTITIES.len()],
            overall: Tally::default(),
            fold_totals: [Tally::default(); FOLDS],
        }
    }
}

/// The fold of a declaration: from its id, so all its items share one.
pub fn fold_of(declaration_id: &str) -> usize {
    (fnv1a(FNV_OFFSET, declaration_id.bytes()) % FOLDS as u64) as usize
}

impl ProfileBuilder {
    pub fn add(&mut self, keys: &EntityKeys, row: usize, fold: usize, tally: Tally) {
        for (e, table) in self.tables.iter_mut().enumerate() {
            if let Some(key) = keys.get(e, row) {
                table.entry(key).or_default()[fold].add(tally);
            }
        }
        self.overall.add(tally);
        self.fold_totals[fold].add(tally);
    }

    fn rate(tally: Tally) -> f64 {
        if tally.inspections > 0.0 {
            tally.frauds / tally.inspections
        } else {
            0.0
        }
    }

    /// The profile features of a row from the tallies added so far, leaving
    /// out `fold` (a training row's own fold: never its own label) or none
    /// (a held-out row, whose label was never added).
    pub fn out_of_fold(&self, entity: usize, key: Option<u64>, fold: Option<usize>) -> (f64, f64) {
        let left_out = |folds: &[Tally; FOLDS]| fold.map_or(Tally::default(), |f| folds[f]);
        let overall = Self::rate(self.overall.minus(left_out(&self.fold_totals)));
        let tally = key.map(|k| {
            self.tables[entity].get(&k).and_then(|folds| {
                let other = Tally::sum(folds).minus(left_out(folds));
                (other.inspections > 0.0).then_some(other)
            })
        });
        profile_features(tally, overall)
    }

    pub fn finish(self) -> Profiles {
        Profiles::new(
            Self::rate(self.overall),
            self.tables
                .into_iter()
                .map(|table| {
                    table
                        .into_iter()
                        .map(|(k, folds)| (k, Tally::sum(&folds)))
                        .collect()
                })
                .collect(),
        )
    }
}
