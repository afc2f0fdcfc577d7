//! What the model knows of origins, for `origin_risk`: shares of origins
//! per HS6, importers' history, dispatch countries, tariff and trade
//! remedies.

use crate::*;

/// What the model knows of origins, for `origin_risk`.
#[derive(Debug, Default)]
pub struct OriginFacts {
    /// HS6 x origin: items and share of the HS6's items, overall and
    /// before / after the first trade remedy on the HS6 (when there is one).
    pub hs6_origin: hashbrown::HashMap<u64, OriginShare>,
    /// HS6: items (key with no origin).
    pub hs6_items: hashbrown::HashMap<u64, u64>,
    /// Per importer and HS6: items and origins.
    pub importers: ImporterHistory,
    /// Dispatch country: share of its consignments whose origin is another
    /// country (transshipment hubs score high).
    pub dispatch: hashbrown::HashMap<u64, f64>,
    pub remedies: Vec<Remedy>,
    /// Bit c set when a remedy may apply to HS chapter c: most products
    /// are under none, and this answers so without comparing codes.
    remedy_chapters: u128,
    /// The national tariff: (code prefix, duty rate %), sorted by code, so
    /// the lines under a code are one contiguous run.
    pub(crate) tariff: Vec<(Vec<u8>, f64)>,
    /// `duty_rate`'s answers by code (`tariff_key`), worked out once at load
    /// (`index_tariff`): scoring asks several times per item, and searching
    /// the sorted lines cost a dozen string comparisons each time.
    tariff_rates: flat::FlatTable<f64>,
    /// Per importer (`importer_hash`): its pricing record in the window.
    pub valuation_records: hashbrown::HashMap<u64, ValuationRecord>,
    /// All importers together: the usual pricing record.
    pub valuation_overall: ValuationRecord,
    /// Per importer: the log of `low_price_ratio`, worked out once at load
    /// because scoring asks for it on every declaration (and a map of
    /// plain floats stays in cache better than one of records).
    low_price_log_ratios: flat::FlatTable<f64>,
}

impl OriginFacts {
    /// How many times the usual share of markedly low items an importer's
    /// record shows, shrunk toward 1 for short records. 1 for an unknown
    /// importer or a model without records.
    pub fn low_price_ratio(&self, importer_hash: u64) -> (f64, ValuationRecord) {
        let record = self
            .valuation_records
            .get(&importer_hash)
            .copied()
            .unwrap_or_default();
        (low_price_ratio(record, self.valuation_overall), record)
    }

    /// `ln` of the importer's `low_price_ratio`: 0 for an unknown importer.
    #[inline]
    pub fn low_price_log_ratio(&self, importer_hash: u64) -> f64 {
        self.low_price_log_ratios
            .get(importer_hash | 1)
            .copied()
            .unwrap_or_else(|| {
                low_price_ratio(ValuationRecord::default(), self.valuation_overall).ln()
            })
    }

    /// Starts loading the importer's entry of `low_price_log_ratio`.
    #[inline]
    pub fn prefetch_low_price(&self, importer_hash: u64) {
        self.low_price_log_ratios.prefetch(importer_hash | 1);
    }

    pub(crate) fn index_records(&mut self) {
        let overall = self.valuation_overall;
        // Keys are importer hashes with the low bit set (0 marks an empty
        // slot); two importers differing only there share an entry, one
        // chance in 2^63 per pair.
        self.low_price_log_ratios = flat::FlatTable::build(
            self.valuation_records
                .iter()
                .map(|(&importer, &record)| (importer | 1, low_price_ratio(record, overall).ln())),
        );
    }
}

/// `tariff_rates` keys: the mean of the lines under a code, or a line's own
/// rate.
const UNDER: u8 = 1;
const EXACT: u8 = 2;

/// A code's key in `tariff_rates`.
fn tariff_key(kind: u8, code: &[u8]) -> u64 {
    flat::bytes_key(std::iter::once(kind).chain(code.iter().copied()))
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OriginShare {
    pub items: u64,
    pub share: f64,
    pub share_before: Option<f64>,
    pub share_after: Option<f64>,
}

/// A trade remedy: additional duty on goods whose code starts with `prefix`
/// from `country`, between two dates (days since 1970; `to` open if None).
#[derive(Debug, Clone, PartialEq)]
pub struct Remedy {
    pub prefix: Vec<u8>,
    pub country: u64,
    pub rate: f64,
    pub from: i32,
    pub to: Option<i32>,
}

impl OriginFacts {
    /// The duty rate of a code. Lines at or under the code (a full line
    /// matches itself; an HS6 has national lines under it, and nothing says
    /// which applies) give their mean; otherwise the longest tariff prefix
    /// of the code applies.
    pub fn duty_rate(&self, digits: &[u8]) -> Option<f64> {
        if let Some(rate) = self.tariff_rates.get(tariff_key(UNDER, digits)) {
            return Some(*rate);
        }
        (1..digits.len())
            .rev()
            .find_map(|len| self.tariff_rates.get(tariff_key(EXACT, &digits[..len])))
            .copied()
    }

    /// Builds `duty_rate`'s table from the sorted `tariff`: for every
    /// prefix of a line, the mean of the lines under it (summed in code
    /// order, as a search of the sorted lines would), and every line's own
    /// rate.
    pub(crate) fn index_tariff(&mut self) {
        let mut under: hashbrown::HashMap<u64, (f64, u32)> = hashbrown::HashMap::new();
        let mut rates = Vec::new();
        for (code, rate) in &self.tariff {
            for len in 0..=code.len() {
                let (sum, n) = under.entry(tariff_key(UNDER, &code[..len])).or_default();
                *sum += rate;
                *n += 1;
            }
            rates.push((tariff_key(EXACT, code), *rate));
        }
        // A code listed twice (two spellings of one line in the reference
        // tariff) keeps its first line, the lowest rate as the model build
        // orders them; a search of the sorted lines found either.
        rates.dedup_by_key(|(key, _)| *key);
        let means = under
            .into_iter()
            .map(|(key, (sum, n))| (key, sum / f64::from(n)));
        let entries: Vec<(u64, f64)> = means.chain(rates).collect();
        self.tariff_rates = flat::FlatTable::build(entries.into_iter());
    }

    pub(crate) fn index_remedies(&mut self) {
        self.remedy_chapters = self.remedies.iter().fold(0, |bits, r| match r.prefix[..] {
            [a, b, ..] if a.is_ascii_digit() && b.is_ascii_digit() => {
                bits | 1u128 << ((a - b'0') * 10 + (b - b'0'))
            }
            // A remedy on a whole section (one digit) may apply anywhere.
            _ => u128::MAX,
        });
    }

    /// Whether any remedy may apply to the product (an HS6 `cell_key`):
    /// false means `remedies_on` finds none for its codes.
    #[inline]
    pub fn remedy_possible(&self, hs6: u64) -> bool {
        let chapter = (hs6 & ((1 << 34) - 1)) / 10_000;
        chapter < 100 && self.remedy_chapters & (1 << chapter) != 0
    }

    /// Remedies in force on `day` for a code, against any country.
    pub fn remedies_on<'a>(
        &'a self,
        digits: &'a [u8],
        day: i32,
    ) -> impl Iterator<Item = &'a Remedy> + 'a {
        self.remedies.iter().filter(move |r| {
            digits.starts_with(&r.prefix) && r.from <= day && r.to.is_none_or(|to| day <= to)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `duty_rate` as a search of the sorted lines answers it.
    fn searched(tariff: &[(Vec<u8>, f64)], digits: &[u8]) -> Option<f64> {
        let first = tariff.partition_point(|(code, _)| code.as_slice() < digits);
        let (sum, n) = tariff[first..]
            .iter()
            .take_while(|(code, _)| code.starts_with(digits))
            .fold((0.0, 0), |(s, n), (_, r)| (s + r, n + 1));
        if n > 0 {
            return Some(sum / n as f64);
        }
        (1..digits.len()).rev().find_map(|len| {
            let found = tariff.partition_point(|(code, _)| code.as_slice() < &digits[..len]);
            tariff
                .get(found)
                .filter(|(code, _)| code == &digits[..len])
                .map(|l| l.1)
        })
    }

    /// Every code over a tariff of headings, HS6 lines and national lines
    /// at uneven rates (sums that round differently in another order):
    /// the table gives the search's answer bit for bit.
    #[test]
    fn the_tariff_table_answers_as_the_sorted_search() {
        let mut facts = OriginFacts::default();
        let mut next = crate::tests::xorshift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..400 {
            let len = [4, 6, 8, 10][(next() % 4) as usize];
            let code: Vec<u8> = (0..len).map(|_| b'0' + (next() % 3) as u8).collect();
            facts.tariff.push((code, (next() % 10_000) as f64 / 7.0));
        }
        facts.tariff.sort_by(|a, b| a.0.cmp(&b.0));
        facts.tariff.dedup_by(|a, b| a.0 == b.0);
        facts.index_tariff();
        let mut asked = 0;
        for len in [0, 2, 4, 6, 8, 10, 11] {
            for _ in 0..300 {
                let code: Vec<u8> = (0..len).map(|_| b'0' + (next() % 4) as u8).collect();
                let (want, got) = (searched(&facts.tariff, &code), facts.duty_rate(&code));
                assert_eq!(want.map(f64::to_bits), got.map(f64::to_bits), "{code:?}");
                asked += usize::from(got.is_some());
            }
        }
        assert!(asked > 500, "most codes have a rate: {asked}");
    }
}
