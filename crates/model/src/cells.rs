//! Price cells and the keys everything is looked up by: HS codes, units
//! and countries packed into integers, and stable hashes of identifiers.

/// Granularity of a price cell, finest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Level {
    LineOrigin = 0,
    Hs6Origin = 1,
    Hs6 = 2,
    Hs4 = 3,
}

impl Level {
    pub const ALL: [Level; 4] = [Level::LineOrigin, Level::Hs6Origin, Level::Hs6, Level::Hs4];

    pub fn name(self) -> &'static str {
        match self {
            Level::LineOrigin => "line_origin",
            Level::Hs6Origin => "hs6_origin",
            Level::Hs6 => "hs6",
            Level::Hs4 => "hs4",
        }
    }

    pub(crate) fn from_i32(v: i32) -> Option<Level> {
        Level::ALL.get(usize::try_from(v).ok()?).copied()
    }

    /// How many digits of the code the level keys on (`None`: all).
    pub(crate) fn digits(self) -> Option<usize> {
        match self {
            Level::LineOrigin => None,
            Level::Hs6Origin | Level::Hs6 => Some(6),
            Level::Hs4 => Some(4),
        }
    }

    pub(crate) fn with_origin(self) -> bool {
        matches!(self, Level::LineOrigin | Level::Hs6Origin)
    }
}

/// Robust profile of log unit values in one cell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    pub n: u64,
    pub median: f64,
    pub mad: f64,
    pub q1: f64,
    pub q3: f64,
}

/// A price cell: log unit value per declared quantity unit (for the cell's
/// dominant unit) and per kilogram of net mass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PriceCell {
    /// The quantity unit the per-unit profile is for, packed (`pack_unit`).
    pub unit: u32,
    pub per_unit: Option<Profile>,
    pub per_kg: Option<Profile>,
    /// Trend of the log unit value per month (a regression slope), and the
    /// month (year * 12 + month - 1) the median is centred on.
    pub drift: f64,
    pub center_month: f64,
}

/// Packs a quantity unit code (`KGM`, `NAR`, `PR`) into an integer; `None`
/// for codes longer than 4 bytes or empty.
pub fn pack_unit(unit: &str) -> Option<u32> {
    let bytes = unit.trim().as_bytes();
    if bytes.is_empty() || bytes.len() > 4 {
        return None;
    }
    Some(
        bytes
            .iter()
            .fold(0u32, |acc, b| (acc << 8) | b.to_ascii_uppercase() as u32),
    )
}

/// Packs an ISO 3166-1 alpha-2 code (any case) into 10 bits; `None` if it
/// is not two letters.
pub fn pack_country(code: &[u8]) -> Option<u64> {
    match code {
        [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
            let letter = |c: u8| (c.to_ascii_uppercase() - b'A' + 1) as u64;
            Some(letter(*a) << 5 | letter(*b))
        }
        _ => None,
    }
}

/// The letters of a packed country code (`pack_country`'s inverse).
pub fn unpack_country(code: u64) -> String {
    let letter = |v: u64| (b'A' + (v & 31) as u8 - 1) as char;
    [letter(code >> 5), letter(code)].iter().collect()
}

/// The key of a cell: the code's digits as a number and their count, the
/// origin and the level, in one `u64` (34 + 4 + 10 + 2 bits), so a lookup
/// hashes one integer and allocates nothing.
pub fn cell_key(level: Level, digits: &[u8], origin: Option<u64>) -> Option<u64> {
    let digits = match level.digits() {
        Some(n) if digits.len() >= n => &digits[..n],
        Some(_) => return None,
        None => digits,
    };
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let number = digits
        .iter()
        .fold(0u64, |acc, d| acc * 10 + (d - b'0') as u64);
    let origin = if level.with_origin() { origin? } else { 0 };
    Some(number | (digits.len() as u64) << 34 | origin << 38 | (level as u64) << 48)
}

/// The HS6 × origin cell key of a product given by its HS6 `cell_key`
/// (`cell_key(Level::Hs6Origin, ..)` without re-reading the digits).
#[inline]
pub fn hs6_origin_key(hs6: u64, origin: u64) -> u64 {
    (hs6 & ((1 << 38) - 1)) | origin << 38 | (Level::Hs6Origin as u64) << 48
}

/// FNV-1a's 64-bit offset basis: where a hash starts.
pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a, 64 bits, continued from `hash` over `bytes`: stable across
/// processes (unlike a seeded hasher), so keys written by the model builder
/// are found by every reader.
#[inline]
pub fn fnv1a(hash: u64, bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes
        .into_iter()
        .fold(hash, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// The stable hash of an importer id.
pub fn importer_hash(importer: &str) -> u64 {
    fnv1a(FNV_OFFSET, importer.bytes())
}
