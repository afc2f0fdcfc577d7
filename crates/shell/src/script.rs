//! Splitting typed or scripted text into meta commands and SQL statements.
//!
//! A line starting with `\` (outside a statement) is a meta command; SQL
//! runs up to a `;` that is not inside a quoted string or a comment. The
//! same scan tells the line editor whether a statement is complete, so
//! Enter inside a multi-line statement continues it.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A meta command line, without its leading backslash.
    Meta(String),
    /// One SQL statement, without the closing `;`.
    Sql(String),
}

#[derive(Clone, Copy, PartialEq)]
enum State {
    Code,
    Quoted(char),
    LineComment,
    BlockComment,
}

/// The items of `text`, and the text left after the last complete item
/// (an unfinished statement; empty when everything was complete).
pub fn split(text: &str) -> (Vec<Item>, String) {
    let mut items = Vec::new();
    let mut current = String::new();
    let mut has_code = false;
    let mut state = State::Code;
    let mut chars = text.chars().peekable();
    let mut at_line_start = true;
    while let Some(c) = chars.next() {
        if state == State::Code && !has_code && at_line_start && c == '\\' {
            let mut line = String::new();
            for next in chars.by_ref() {
                if next == '\n' {
                    break;
                }
                line.push(next);
            }
            items.push(Item::Meta(line.trim().to_string()));
            current.clear();
            at_line_start = true;
            continue;
        }
        at_line_start = c == '\n' || (at_line_start && c.is_whitespace());
        match state {
            State::Code => match c {
                ';' => {
                    if has_code {
                        items.push(Item::Sql(current.trim().to_string()));
                    }
                    current.clear();
                    has_code = false;
                    continue;
                }
                '\'' | '"' => {
                    state = State::Quoted(c);
                    has_code = true;
                }
                '-' if chars.peek() == Some(&'-') => state = State::LineComment,
                '/' if chars.peek() == Some(&'*') => {
                    state = State::BlockComment;
                    current.push(c);
                    current.push(chars.next().unwrap_or('*'));
                    continue;
                }
                c if !c.is_whitespace() => has_code = true,
                _ => {}
            },
            State::Quoted(q) => {
                if c == q {
                    state = State::Code;
                }
            }
            State::LineComment => {
                if c == '\n' {
                    state = State::Code;
                }
            }
            State::BlockComment => {
                if c == '*' && chars.peek() == Some(&'/') {
                    current.push(c);
                    current.push(chars.next().unwrap_or('/'));
                    state = State::Code;
                    continue;
                }
            }
        }
        current.push(c);
    }
    let rest = if has_code { current } else { String::new() };
    (items, rest)
}

/// Whether typed text is ready to run: a meta command, or SQL whose last
/// statement is closed by `;` (or nothing but whitespace and comments).
pub fn is_complete(text: &str) -> bool {
    split(text).1.trim().is_empty()
}

/// Splits a meta command's arguments on whitespace, keeping quoted
/// arguments (`'...'` or `"..."`) whole.
pub fn words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut in_word = false;
    for c in text.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => word.push(c),
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                in_word = true;
            }
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            None => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql(s: &str) -> Item {
        Item::Sql(s.into())
    }

    #[test]
    fn statements_end_at_semicolons_outside_strings_and_comments() {
        let (items, rest) =
            split("SELECT ';' AS a; -- c; d\nSELECT \"x;y\" /* ; */ FROM t;\nSELECT 3");
        assert_eq!(
            items,
            vec![
                sql("SELECT ';' AS a"),
                sql("-- c; d\nSELECT \"x;y\" /* ; */ FROM t")
            ]
        );
        assert_eq!(rest.trim(), "SELECT 3");
        assert!(!is_complete("SELECT 1\nFROM t"));
        assert!(is_complete("SELECT 1\nFROM t;"));
        assert!(is_complete("SELECT 1; -- done"));
        assert!(!is_complete("SELECT 'a;"));
        assert!(is_complete("-- just a comment"));
        assert!(is_complete("\\d declarations"));
    }

    #[test]
    fn meta_commands_take_their_line() {
        let (items, rest) =
            split("\\timing\nSELECT 1;\n  \\r audit_candidates limit=5\nSELECT '\\x';");
        assert_eq!(
            items,
            vec![
                Item::Meta("timing".into()),
                sql("SELECT 1"),
                Item::Meta("r audit_candidates limit=5".into()),
                sql("SELECT '\\x'"),
            ]
        );
        assert!(rest.is_empty());
    }

    #[test]
    fn words_keep_quoted_arguments() {
        assert_eq!(
            words("r trader_profile importer='IMP 001' x=\"a b\""),
            vec!["r", "trader_profile", "importer=IMP 001", "x=a b"]
        );
        assert_eq!(words("  "), Vec::<String>::new());
        assert_eq!(words("o ''"), vec!["o", ""]);
    }
}
