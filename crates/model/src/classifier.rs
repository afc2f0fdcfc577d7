//! The goods-description → HS6 classifier: multinomial naive Bayes over the
//! words of declared descriptions (and, as extra documents, the HS
//! nomenclature's own descriptions).
//!
//! Scoring is sparse: only the classes that share a word with the
//! description are computed; every other class keeps its "no matching word"
//! score, whose sum over all classes is precomputed per description length,
//! so a posterior costs a few hash lookups, not a pass over 5,000 classes.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

use hashbrown::{HashMap, HashSet};

/// Laplace smoothing of word counts.
const ALPHA: f64 = 0.5;
/// A word in more than this share of the classes is a stop word...
const STOP_SHARE: f64 = 0.1;
/// ...and in more than this many: with few classes, a word shared by a
/// tenth of them still tells them apart.
const STOP_MIN_CLASSES: f64 = 30.0;
/// Classes scoring this far (in log) below the best add less than 1e-15
/// of the best's weight to the normaliser: not worth an `exp`.
const NEGLIGIBLE_LOG: f64 = 35.0;
/// Longest description (in words) the normaliser is precomputed for.
const MAX_WORDS: usize = 32;

/// Calls `f` with the hash of each word of `text`: runs of letters and
/// digits (any script), lower-cased, at least 2 characters long. Hashes
/// the UTF-8 of the lower-cased characters, so it agrees with `words`.
/// No allocation.
pub fn for_each_word(text: &str, mut f: impl FnMut(u64)) {
    const SEED: u64 = 0xcbf2_9ce4_8422_2325;
    let (mut hash, mut len) = (SEED, 0);
    let mut utf8 = [0u8; 4];
    let mix = |hash: u64, b: u8| (hash ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    for c in text.chars().chain(std::iter::once(' ')) {
        // ASCII, most descriptions, skips Unicode case mapping.
        if c.is_ascii() {
            if c.is_ascii_alphanumeric() {
                hash = mix(hash, (c as u8).to_ascii_lowercase());
                len += 1;
                continue;
            }
        } else if c.is_alphanumeric() {
            // Lower-casing may add combining marks ('İ' gives 'i' + U+0307),
            // which are not letters: both sides keep only letters and digits.
            for lower in c.to_lowercase().filter(|l| l.is_alphanumeric()) {
                for b in lower.encode_utf8(&mut utf8).as_bytes() {
                    hash = mix(hash, *b);
                }
            }
            len += 1;
            continue;
        }
        if len >= 2 {
            f(hash);
        }
        (hash, len) = (SEED, 0);
    }
}

/// The words of `text`, as `for_each_word` sees them (for training and for
/// people: `risk_reasons`).
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 2)
        .map(|w| {
            w.to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric())
                .collect()
        })
        .collect()
}

#[derive(Debug)]
pub struct Classifier {
    /// HS6 codes, the classes.
    pub classes: Vec<String>,
    /// Class index by the key of its code (`flat::bytes_key`): `class_index`
    /// runs for every item, and a search of the sorted codes cost a dozen
    /// string comparisons.
    class_of: crate::flat::FlatTable<u32>,
    /// Tells this classifier's memo entries from another's.
    id: u64,
    /// Hashes of the stop words.
    stop: HashSet<u64>,
    log_prior: Vec<f64>,
    /// log(ALPHA / (words in class + ALPHA * vocabulary)): a word the class
    /// never saw.
    log_unseen: Vec<f64>,
    /// Word hash → (class, log((count + ALPHA) / ALPHA)): the gain over
    /// an unseen word.
    postings: HashMap<u64, Vec<(u32, f32)>>,
    /// log of sum over classes of exp(prior + n * unseen), for n words.
    log_norm: Vec<f64>,
}

/// Per-call working memory of `predict`, reused across rows: the summed
/// gain of every class (dense, so adding a posting is one indexed add) and
/// the classes touched, to read and reset only those.
#[derive(Debug, Default)]
pub struct Scratch {
    gains: Vec<f64>,
    touched: Vec<u32>,
    /// The description's word hashes (stop words aside), hashed once.
    words: Vec<u64>,
}

static NEXT_CLASSIFIER_ID: AtomicU64 = AtomicU64::new(1);

/// Descriptions classified lately, per thread. Customs descriptions repeat
/// (the same goods, declaration after declaration), and a repeat then costs
/// one pass over its words instead of a pass over the postings of every
/// class its words touch: thousands with a full nomenclature.
struct Memo {
    owner: u64,
    slots: Vec<MemoEntry>,
}

#[derive(Clone, Copy, Default)]
struct MemoEntry {
    key: u64,
    known: u32,
    best: u32,
    best_log: f64,
    log_z: f64,
}

const MEMO_SLOTS: usize = 8192;

thread_local! {
    static MEMO: RefCell<Memo> = const { RefCell::new(Memo { owner: 0, slots: Vec::new() }) };
}

impl Default for Classifier {
    fn default() -> Self {
        Classifier::new(Vec::new(), Vec::new(), &[])
    }
}

/// The best class and the posterior of the declared one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    pub best: u32,
    pub best_probability: f64,
    /// Posterior of the class asked about (0 when unknown).
    pub declared_probability: f64,
    /// Words of the description the classifier knows.
    pub known_words: usize,
}

impl Classifier {
    /// Builds from (class, word, count) triples and per-class document
    /// counts.
    pub fn new(classes: Vec<String>, documents: Vec<f64>, counts: &[(u32, String, f64)]) -> Self {
        let n = classes.len();
        let mut per_word: HashMap<u64, Vec<(u32, f64)>> = HashMap::new();
        // Only positive counts: a posting's gain must be positive (see
        // `predict`).
        for (class, word, count) in counts.iter().filter(|c| c.2 > 0.0) {
            let mut hash = 0;
            for_each_word(word, |h| hash = h);
            per_word.entry(hash).or_default().push((*class, *count));
        }
        // Words of a large share of the classes ("or", "of", "other" in the
        // nomenclature) say little about any class and would make every
        // description touch thousands: they are stop words, left out of
        // training and of scoring alike.
        let stop_above = (STOP_SHARE * n as f64).max(STOP_MIN_CLASSES);
        let stop: HashSet<u64> = per_word
            .iter()
            .filter(|(_, list)| list.len() as f64 > stop_above)
            .map(|(hash, _)| *hash)
            .collect();
        per_word.retain(|hash, _| !stop.contains(hash));
        let mut words_in_class = vec![0.0; n];
        for list in per_word.values() {
            for &(class, count) in list {
                words_in_class[class as usize] += count;
            }
        }
        let vocabulary = per_word.len().max(1) as f64;
        let total_documents: f64 = documents.iter().sum::<f64>().max(1.0);
        let log_prior: Vec<f64> = documents
            .iter()
            .map(|d| ((d + 1.0) / (total_documents + n as f64)).ln())
            .collect();
        let log_unseen: Vec<f64> = words_in_class
            .iter()
            .map(|w| (ALPHA / (w + ALPHA * vocabulary)).ln())
            .collect();
        let postings = per_word
            .into_iter()
            .map(|(hash, list)| {
                let mut list: Vec<(u32, f32)> = list
                    .into_iter()
                    .map(|(class, count)| (class, ((count + ALPHA) / ALPHA).ln() as f32))
                    .collect();
                // By class, for `declared_gain`'s binary search.
                list.sort_by_key(|p| p.0);
                (hash, list)
            })
            .collect();
        let log_norm = (0..=MAX_WORDS)
            .map(|words| log_sum_exp((0..n).map(|c| log_prior[c] + words as f64 * log_unseen[c])))
            .collect();
        let mut keys: Vec<(u64, u32)> = Vec::with_capacity(n);
        let mut seen = HashSet::new();
        for (i, class) in classes.iter().enumerate() {
            let key = crate::flat::bytes_key(class.bytes());
            // A code listed twice: its first index.
            if seen.insert(key) {
                keys.push((key, i as u32));
            }
        }
        Classifier {
            id: NEXT_CLASSIFIER_ID.fetch_add(1, Ordering::Relaxed),
            class_of: crate::flat::FlatTable::build(keys.into_iter()),
            classes,
            stop,
            log_prior,
            log_unseen,
            postings,
            log_norm,
        }
    }

    pub fn class_index(&self, hs6: &str) -> Option<u32> {
        let i = *self.class_of.get(crate::flat::bytes_key(hs6.bytes()))?;
        // Two codes sharing a hash: the table holds one, the other is not
        // taken for it.
        (self.classes[i as usize] == hs6).then_some(i)
    }

    /// Classifies the description of goods declared under `digits` (a
    /// normalized code: its HS6 is the class asked about).
    pub fn predict_declared(
        &self,
        description: &str,
        digits: &[u8],
        scratch: &mut Scratch,
    ) -> Option<Prediction> {
        let hs6 = std::str::from_utf8(digits.get(..6)?).ok()?;
        self.predict(description, self.class_index(hs6), scratch)
    }

    /// Classifies `description`; `declared` is the class whose posterior is
    /// wanted. `scratch` is reused across rows to avoid allocating.
    pub fn predict(
        &self,
        description: &str,
        declared: Option<u32>,
        scratch: &mut Scratch,
    ) -> Option<Prediction> {
        if self.classes.is_empty() {
            return None;
        }
        // The description's key: its words (stop words aside), in order.
        scratch.words.clear();
        for_each_word(description, |hash| {
            if !self.stop.contains(&hash) {
                scratch.words.push(hash);
            }
        });
        let key = scratch
            .words
            .iter()
            .fold(0x243F_6A88_85A3_08D3u64, |key, hash| {
                (key.rotate_left(23) ^ hash).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            });
        let words = scratch.words.len();
        let slot = (key as usize) % MEMO_SLOTS;
        let memo = MEMO.with_borrow(|memo| {
            (memo.owner == self.id)
                .then(|| memo.slots[slot])
                .filter(|e| e.key == key)
        });
        let entry = match memo {
            Some(entry) => entry,
            None => {
                let entry = self.score(key, scratch);
                MEMO.with_borrow_mut(|memo| {
                    if memo.owner != self.id {
                        memo.owner = self.id;
                        memo.slots.clear();
                        memo.slots.resize(MEMO_SLOTS, MemoEntry::default());
                    }
                    memo.slots[slot] = entry;
                });
                entry
            }
        };
        if entry.known == 0 {
            return None;
        }
        let words = words.min(MAX_WORDS);
        let declared_probability = match declared {
            Some(d) => {
                let base = self.log_prior[d as usize] + words as f64 * self.log_unseen[d as usize];
                (base + self.declared_gain(&scratch.words, d) - entry.log_z).exp()
            }
            None => 0.0,
        };
        Some(Prediction {
            best: entry.best,
            best_probability: (entry.best_log - entry.log_z).exp().min(1.0),
            declared_probability: declared_probability.min(1.0),
            known_words: entry.known as usize,
        })
    }

    /// The summed gain of `class` over the words.
    fn declared_gain(&self, words: &[u64], class: u32) -> f64 {
        words
            .iter()
            .filter_map(|hash| {
                let list = self.postings.get(hash)?;
                let i = list.binary_search_by_key(&class, |p| p.0).ok()?;
                Some(list[i].1 as f64)
            })
            .sum()
    }

    /// Scores every class the words in `scratch` touch: the best class and
    /// the log normaliser. `known == 0` when no word is known.
    fn score(&self, key: u64, scratch: &mut Scratch) -> MemoEntry {
        let Scratch {
            gains,
            touched,
            words: hashes,
        } = scratch;
        if gains.len() != self.classes.len() {
            gains.clear();
            gains.resize(self.classes.len(), 0.0);
        }
        let words = hashes.len();
        let mut known = 0usize;
        for hash in hashes.iter() {
            if let Some(list) = self.postings.get(hash) {
                known += 1;
                for &(class, gain) in list {
                    let slot = &mut gains[class as usize];
                    // Gains are positive: a zero slot is an untouched class.
                    if *slot == 0.0 {
                        touched.push(class);
                    }
                    *slot += gain as f64;
                }
            }
        }
        if known == 0 {
            return MemoEntry {
                key,
                ..MemoEntry::default()
            };
        }
        let words = words.min(MAX_WORDS);
        let base = |c: u32| self.log_prior[c as usize] + words as f64 * self.log_unseen[c as usize];
        // Z = sum over all classes of exp(base) + over candidates of
        // (exp(base + gain) - exp(base)), in a numerically safe form.
        let mut best = (touched[0], f64::NEG_INFINITY);
        let mut max_log = self.log_norm[words];
        for &class in touched.iter() {
            let score = base(class) + gains[class as usize];
            max_log = max_log.max(score);
            if score > best.1 {
                best = (class, score);
            }
        }
        let mut z = (self.log_norm[words] - max_log).exp();
        for &class in touched.iter() {
            let b = base(class);
            let with_gain = b + gains[class as usize] - max_log;
            if with_gain > -NEGLIGIBLE_LOG {
                z += with_gain.exp() - (b - max_log).exp();
            }
        }
        for &c in touched.iter() {
            gains[c as usize] = 0.0;
        }
        touched.clear();
        MemoEntry {
            key,
            known: known as u32,
            best: best.0,
            best_log: best.1,
            log_z: max_log + z.max(f64::MIN_POSITIVE).ln(),
        }
    }
}

fn log_sum_exp(values: impl Iterator<Item = f64> + Clone) -> f64 {
    let max = values.clone().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return max;
    }
    max + values.map(|v| (v - max).exp()).sum::<f64>().ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trained() -> Classifier {
        let classes = vec![
            "610910".to_string(),
            "847130".to_string(),
            "851713".to_string(),
        ];
        let counts = vec![
            (0, "cotton".to_string(), 50.0),
            (0, "shirts".to_string(), 50.0),
            (1, "laptop".to_string(), 40.0),
            (1, "computer".to_string(), 40.0),
            (1, "portable".to_string(), 20.0),
            (2, "smartphones".to_string(), 30.0),
            (2, "phones".to_string(), 30.0),
            (2, "mobile".to_string(), 30.0),
        ];
        Classifier::new(classes, vec![50.0, 40.0, 30.0], &counts)
    }

    #[test]
    fn words_are_lowercased_and_split() {
        let mut a = vec![];
        for_each_word("LAPTOP Computer-15.6IN", |h| a.push(h));
        let mut b = vec![];
        for_each_word("laptop computer 15 6in", |h| b.push(h));
        assert_eq!(a, b);
        assert_eq!(words("CAFÉ tostado, 500g"), vec!["café", "tostado", "500g"]);
        let (mut upper, mut lower) = (vec![], vec![]);
        for_each_word("RON AÑEJO", |h| upper.push(h));
        for_each_word("ron añejo", |h| lower.push(h));
        assert_eq!(upper, lower);
        // Training words hash like query words.
        let mut trained = vec![];
        for w in words("RON AÑEJO") {
            for_each_word(&w, |h| trained.push(h));
        }
        assert_eq!(trained, lower);
    }

    #[test]
    fn predicts_the_class_the_words_belong_to() {
        let c = trained();
        let mut scratch = Scratch::default();
        let p = c
            .predict(
                "PORTABLE LAPTOP COMPUTER",
                c.class_index("610910"),
                &mut scratch,
            )
            .unwrap();
        assert_eq!(c.classes[p.best as usize], "847130");
        assert!(p.best_probability > 0.95, "{p:?}");
        assert!(p.declared_probability < 0.05, "{p:?}");
        let q = c
            .predict("cotton shirts", c.class_index("610910"), &mut scratch)
            .unwrap();
        assert!(q.declared_probability > 0.95);
        assert!(c.predict("xyzzy", None, &mut scratch).is_none());
    }

    /// Property: on arbitrary text (any script, controls, separators) the
    /// word functions never panic, and hashing the training words gives the
    /// hashes scoring sees.
    #[test]
    fn words_agree_on_arbitrary_text() {
        let alphabet: Vec<char> = "aZ09 .,-/ÉéÑñ日本ß\u{0}\u{301}\t\nİı".chars().collect();
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let text: String = (0..(state % 24) as usize)
                .map(|i| alphabet[((state >> (i % 16 * 4)) as usize + i) % alphabet.len()])
                .collect();
            let mut direct = vec![];
            for_each_word(&text, |h| direct.push(h));
            let mut trained = vec![];
            for word in words(&text) {
                for_each_word(&word, |h| trained.push(h));
            }
            assert_eq!(direct, trained, "{text:?}");
        }
    }

    #[test]
    fn repeats_answer_as_the_first_time() {
        let c = trained();
        let other = trained();
        let mut scratch = Scratch::default();
        for text in [
            "portable laptop",
            "mobile computer",
            "cotton shirts",
            "xyzzy",
        ] {
            let first = c.predict(text, c.class_index("847130"), &mut scratch);
            // Another classifier on the same thread must not read c's memo.
            let from_other = other.predict(text, other.class_index("610910"), &mut scratch);
            let again = c.predict(text, c.class_index("847130"), &mut scratch);
            assert_eq!(first, again, "{text}");
            let fresh = trained().predict(text, Some(0), &mut scratch);
            assert_eq!(
                from_other.map(|p| p.declared_probability),
                fresh.map(|p| p.declared_probability)
            );
            // The declared class changes the answer though the text is memoised.
            let declared_other = c.predict(text, c.class_index("610910"), &mut scratch);
            if let (Some(a), Some(b)) = (first, declared_other) {
                assert_eq!(a.best, b.best);
                assert!(
                    text.contains("cotton") || a.declared_probability != b.declared_probability
                );
            }
        }
    }

    #[test]
    fn posteriors_sum_to_one() {
        let c = trained();
        let mut scratch = Scratch::default();
        let total: f64 = (0..3)
            .map(|k| {
                c.predict("mobile computer", Some(k), &mut scratch)
                    .unwrap()
                    .declared_probability
            })
            .sum();
        assert!((total - 1.0).abs() < 1e-9, "{total}");
    }
}
