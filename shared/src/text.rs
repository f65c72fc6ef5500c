//! Folding of what residents type or paste, shared by every field.
//!
//! The old system's FAQ blamed residents for spaces at the ends and for
//! copy-paste trouble. Here any field first goes through [`fold`], so those
//! differences never reach a comparison.

use unicode_normalization::UnicodeNormalization;

/// Characters that are invisible but survive copy-paste from PDFs, Word or
/// messengers: zero-width space/joiners, word joiner, BOM, soft hyphen.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}' | '\u{200E}' | '\u{200F}')
}

/// NFKC, invisible characters removed, every run of whitespace (tabs, NBSP,
/// line breaks) turned into one space, and the ends trimmed. Idempotent.
pub fn fold(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    let mut pending_space = false;
    for c in input.nfkc().filter(|c| !is_invisible(*c)) {
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
    // NFKC of a folded string can in rare cases compose further; a second pass
    // keeps the function idempotent.
    let again: String = out.nfkc().collect();
    if again == out { out } else { fold(&again) }
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

    proptest! {
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
