//! Folding of what residents type or paste, shared by every field.
//!
//! The old system's FAQ blamed residents for spaces at the ends and for
//! copy-paste trouble. Here any field first goes through [`fold`], so those
//! differences never reach a comparison.

use std::borrow::Cow;

use unicode_normalization::UnicodeNormalization;

/// Characters that are invisible but survive copy-paste from PDFs, Word or
/// messengers: zero-width space/joiners, word joiner, BOM, soft hyphen.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}' | '\u{200E}' | '\u{200F}')
}

/// NFKC, invisible characters removed, every run of whitespace (tabs, NBSP,
/// line breaks) turned into one space, and the ends trimmed. Idempotent.
pub fn fold(input: &str) -> String {
    fold_cow(input).into_owned()
}

/// [`fold`], borrowing the input when it is folded already (the common case
/// for billing cells and typed fields), so nothing is allocated for it.
pub fn fold_cow(input: &str) -> Cow<'_, str> {
    if is_folded_ascii_or_cyrillic(input) {
        return Cow::Borrowed(input);
    }
    if !input.chars().all(is_plain) {
        return Cow::Owned(fold_normalizing(input));
    }
    if is_folded_plain(input) { Cow::Borrowed(input) } else { Cow::Owned(collapse(input.chars(), input.len())) }
}

/// Characters that NFKC leaves alone (or, for the whitespace among them,
/// turns into a space) and that never compose with a neighbour: ASCII, the
/// Cyrillic block up to U+045F, common typography of Russian text, the
/// invisible characters and Unicode spaces. A text of only these folds
/// without normalizing (`fast_fold_equals_the_normalizing_fold` checks it).
fn is_plain(c: char) -> bool {
    c.is_ascii()
        || matches!(
            c,
            '\u{0400}'..='\u{045F}'
                | '\u{00A0}'
                | '\u{00AB}'
                | '\u{00BB}'
                | '\u{2000}'..='\u{200A}'
                | '\u{2013}'
                | '\u{2014}'
                | '\u{2018}'..='\u{201E}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202F}'
                | '\u{205F}'
                | '\u{3000}'
                | '\u{20BD}'
        )
        || is_invisible(c)
}

/// The common case of [`is_folded_plain`], on bytes: ASCII without
/// controls and Cyrillic U+0400–U+045F (UTF-8 `D0 xx`, `D1 80`–`D1 9F`),
/// single spaces between words. False means "look closer", not "not folded".
fn is_folded_ascii_or_cyrillic(input: &str) -> bool {
    let bytes = input.as_bytes();
    let mut previous_space = true;
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        match byte {
            b' ' if previous_space => return false,
            b' ' => previous_space = true,
            0..0x20 | 0x7F => return false,
            0x21..0x7F => previous_space = false,
            0xD0 => {
                previous_space = false;
                at += 1;
            }
            0xD1 if bytes.get(at + 1).is_some_and(|next| *next <= 0x9F) => {
                previous_space = false;
                at += 1;
            }
            _ => return false,
        }
        at += 1;
    }
    !previous_space || bytes.is_empty()
}

/// A plain text that folding would not change: no invisible or control
/// character, no whitespace but single spaces between words.
fn is_folded_plain(input: &str) -> bool {
    let mut previous_space = true;
    for c in input.chars() {
        if c == ' ' {
            if previous_space {
                return false;
            }
            previous_space = true;
        } else if c.is_whitespace() || c.is_control() || is_invisible(c) {
            return false;
        } else {
            previous_space = false;
        }
    }
    !previous_space || input.is_empty()
}

/// Invisible characters removed, whitespace and control runs as one space,
/// ends trimmed.
fn collapse(chars: impl Iterator<Item = char>, capacity: usize) -> String {
    let mut out = String::with_capacity(capacity);
    let mut pending_space = false;
    for c in chars.filter(|c| !is_invisible(*c)) {
        if c.is_whitespace() || c.is_control() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c);
    }
    out
}

/// The fold of any text: NFKC first.
fn fold_normalizing(input: &str) -> String {
    let out = collapse_normalized(input);
    // NFKC of a folded string can in rare cases compose further; a second pass
    // keeps the function idempotent.
    let again: String = out.nfkc().collect();
    if again == out { out } else { fold_normalizing(&again) }
}

fn collapse_normalized(input: &str) -> String {
    collapse(input.nfkc(), input.len())
}

/// Whitespace that copy-paste brings along besides spaces: tab, line feed,
/// vertical tab, form feed, carriage return and the Unicode line and
/// paragraph separators. In every field they fold like spaces (a password
/// keeps them as typed).
pub const WHITESPACE_CONTROLS: [char; 7] = ['\t', '\n', '\u{0B}', '\u{0C}', '\r', '\u{2028}', '\u{2029}'];

/// True for the characters of [`WHITESPACE_CONTROLS`].
pub fn is_whitespace_control(c: char) -> bool {
    WHITESPACE_CONTROLS.contains(&c)
}

/// The first control character that is not whitespace (NUL, escape, NEL...);
/// such input is refused rather than folded into a field.
pub fn forbidden_control(input: &str) -> Option<char> {
    input.chars().find(|c| c.is_control() && !is_whitespace_control(*c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn trims_and_collapses_whitespace_of_every_kind() {
        assert_eq!(fold("  Иванов\u{00A0}\u{00A0}Иван\tИванович \n"), "Иванов Иван Иванович");
    }

    #[test]
    fn removes_zero_width_characters() {
        assert_eq!(fold("12\u{200B}34\u{FEFF}5\u{2060}6\u{200D}"), "123456");
    }

    #[test]
    fn applies_nfkc_to_full_width_digits() {
        assert_eq!(fold("１２３"), "123");
    }

    #[test]
    fn every_whitespace_control_folds_like_a_space() {
        for c in WHITESPACE_CONTROLS {
            assert_eq!(fold(&format!("{c}Белова{c}{c}Надежда {c}Ивановна{c}")), "Белова Надежда Ивановна", "{c:?}");
        }
    }

    #[test]
    fn other_controls_are_found_and_whitespace_is_not() {
        assert_eq!(forbidden_control("Белова\tНадежда\r\nИвановна\u{2028}\u{0B}\u{0C}\u{2029}"), None);
        for c in ['\u{0}', '\u{1B}', '\u{7F}', '\u{85}', '\u{9F}'] {
            assert_eq!(forbidden_control(&format!("a{c}b")), Some(c), "{c:?}");
        }
    }

    #[test]
    fn plain_characters_are_their_own_nfkc_or_a_space() {
        for c in (0u32..0x3001).filter_map(char::from_u32).filter(|c| is_plain(*c)) {
            let normalized: String = c.to_string().nfkc().collect();
            let one = normalized.chars().count() == 1;
            assert!(
                normalized == c.to_string() || (one && normalized.chars().all(char::is_whitespace)),
                "{c:?} -> {normalized:?}"
            );
        }
    }

    /// Texts of plain characters with some that are not (combining marks,
    /// compatibility forms), to reach both paths.
    fn mixed_text() -> impl Strategy<Value = String> {
        let alphabet: Vec<char> = "aZ09 .,;-'\"ЁёЙйИиАяЯ\u{a0}\u{2009}\u{202f}\u{200b}\u{feff}\u{ad}\t\r\n«»–—’₽\u{306}\u{308}\u{301}№１ﬁ\u{1b}"
            .chars()
            .collect();
        proptest::collection::vec(proptest::sample::select(alphabet), 0..24).prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        #[test]
        fn fast_fold_equals_the_normalizing_fold(s in mixed_text()) {
            prop_assert_eq!(fold_cow(&s).into_owned(), fold_normalizing(&s));
        }

        #[test]
        fn fast_fold_equals_the_normalizing_fold_on_any_text(s in any::<String>()) {
            prop_assert_eq!(fold(&s), fold_normalizing(&s));
        }

        #[test]
        fn fold_is_idempotent(s in any::<String>()) {
            let once = fold(&s);
            prop_assert_eq!(fold(&once), once.clone());
        }

        #[test]
        fn fold_never_leaves_edge_or_double_spaces(s in any::<String>()) {
            let f = fold(&s);
            prop_assert!(!f.starts_with(' ') && !f.ends_with(' ') && !f.contains("  "));
        }
    }
}
