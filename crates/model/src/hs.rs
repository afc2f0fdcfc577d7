//! Parsing of declared HS codes, shared by the HS functions.
//!
//! Declarants write national tariff lines in many ways: `84713000`,
//! `8471.30.00`, `8471 30 00`, `8471.30`. A code is valid when, once the
//! separators (`.`, ` `, `-`) are removed, it is 6 to 10 digits whose chapter
//! exists: 01 to 97 without the reserved 77, or 98 and 99, which the HS leaves
//! to national use (special provisions, unclassified goods).

/// The longest national line the contract allows.
pub const MAX_DIGITS: usize = 10;

/// The digits of `code` without separators, written into `out`; `None`
/// when the code is malformed. No allocation: callers pass a stack buffer.
pub fn normalize<'a>(code: &str, out: &'a mut [u8; MAX_DIGITS]) -> Option<&'a [u8]> {
    let digits = digits(code, out)?;
    if digits.len() < 6 || !valid_chapter(digits) {
        return None;
    }
    Some(digits)
}

/// The digits of a code of any length (a chapter, a heading, a line), the
/// separators between them removed; `None` when it is empty, longer than a
/// national line or holds anything else.
pub fn digits<'a>(code: &str, out: &'a mut [u8; MAX_DIGITS]) -> Option<&'a [u8]> {
    let mut len = 0;
    for &b in code.as_bytes() {
        match b {
            b'0'..=b'9' => {
                if len == MAX_DIGITS {
                    return None;
                }
                out[len] = b;
                len += 1;
            }
            // Separators only between digits: " 8471" or "8471." are typos
            // a person would still read, but a leading/trailing separator
            // next to nothing is not a code.
            b'.' | b' ' | b'-' if len > 0 => {}
            _ => return None,
        }
    }
    (len > 0).then(|| &out[..len])
}

fn valid_chapter(digits: &[u8]) -> bool {
    let chapter = (digits[0] - b'0') * 10 + (digits[1] - b'0');
    (1..=99).contains(&chapter) && chapter != 77
}

/// The first `n` digits of a valid code, as text.
pub fn prefix<'a>(code: &str, n: usize, buffer: &'a mut [u8; MAX_DIGITS]) -> Option<&'a str> {
    let digits = normalize(code, buffer)?;
    // Digits are ASCII, so any prefix is valid UTF-8.
    std::str::from_utf8(&digits[..n]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(code: &str) -> Option<String> {
        let mut b = [0; MAX_DIGITS];
        normalize(code, &mut b).map(|d| String::from_utf8(d.to_vec()).unwrap())
    }

    #[test]
    fn accepts_the_usual_spellings() {
        assert_eq!(norm("84713000").as_deref(), Some("84713000"));
        assert_eq!(norm("8471.30.00").as_deref(), Some("84713000"));
        assert_eq!(norm("8471 30 00").as_deref(), Some("84713000"));
        assert_eq!(norm("8471-30").as_deref(), Some("847130"));
        assert_eq!(norm("0101210000").as_deref(), Some("0101210000"));
        assert_eq!(norm("999999").as_deref(), Some("999999"));
    }

    #[test]
    fn refuses_malformed_codes() {
        for bad in [
            "",
            "8471",
            "84713",
            "847130000000",
            "8471x30",
            " 847130",
            "-847130",
            "770000",
            "000000",
            "8471.30.00a",
            "８４７１３０",
        ] {
            assert_eq!(norm(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn prefixes() {
        let mut b = [0; MAX_DIGITS];
        assert_eq!(prefix("8471.30.00", 4, &mut b), Some("8471"));
        assert_eq!(prefix("8471.30.00", 6, &mut b), Some("847130"));
        assert_eq!(prefix("84", 2, &mut b), None);
    }

    /// Property: normalize never panics and, when it succeeds, returns
    /// 6 to 10 ASCII digits of a real chapter, whatever the input.
    #[test]
    fn never_panics_on_arbitrary_input() {
        let alphabet: Vec<char> = "0123456789 .-x/é٣".chars().collect();
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..50_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 16) as usize;
            let code: String = (0..len)
                .map(|i| alphabet[((state >> (i * 4)) as usize) % alphabet.len()])
                .collect();
            let mut b = [0; MAX_DIGITS];
            if let Some(d) = normalize(&code, &mut b) {
                assert!(
                    (6..=MAX_DIGITS).contains(&d.len()) && d.iter().all(u8::is_ascii_digit),
                    "{code:?}"
                );
            }
        }
    }
}
