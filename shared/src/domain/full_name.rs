//! ФИО как на квитанции: the payer's full name, and the rule that decides
//! whether what a resident typed names the payer on record.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::text;

const MAX_CHARS: usize = 200;

/// One word after the surname: a first name, a patronymic (or "оглы"), or
/// just its initial.
#[derive(Debug, Clone, PartialEq, Eq)]
enum GivenPart {
    Full(String),
    Initial(char),
}

impl GivenPart {
    fn initial(&self) -> Option<char> {
        match self {
            GivenPart::Full(word) => word.chars().next(),
            GivenPart::Initial(c) => Some(*c),
        }
    }

    /// Whether this part, typed by a resident, names `record`, the part of
    /// the billing record: equal words; an initial only where the record has
    /// an initial too (an initial typed against a full name is a guess among
    /// some 30 letters, not knowledge); a full word where the record has only
    /// its initial.
    fn matches(&self, record: &GivenPart) -> bool {
        match (self, record) {
            (GivenPart::Full(a), GivenPart::Full(b)) => a == b,
            (GivenPart::Initial(_), GivenPart::Full(_)) => false,
            _ => self.initial() == record.initial(),
        }
    }
}

/// A person's name in the order of a Russian bill: surname, then first name
/// and patronymic, either of which may be an initial. It keeps the text for
/// display; comparison (case, ё/е, dash variants and Latin look-alike
/// letters do not matter) reads the words from it when a name is matched,
/// which is rare next to the millions of names an import parses.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FullName {
    display: String,
}

/// A name as [`FullName::parse`] keeps it, borrowed from the input when the
/// input is that form already (as nearly every billing cell is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullNameRef<'a>(Cow<'a, str>);

impl<'a> FullNameRef<'a> {
    /// A name its reader found plain on its own bytes (as
    /// `is_plain_russian_name` would): its own display form.
    #[cfg(feature = "import")]
    pub(crate) fn plain(display: &'a str) -> Self {
        debug_assert!(is_plain_russian_name(display), "{display:?}");
        Self(Cow::Borrowed(display))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_owned(self) -> FullName {
        FullName { display: self.0.into_owned() }
    }

    /// The same name, owning its text.
    pub fn into_static(self) -> FullNameRef<'static> {
        FullNameRef(Cow::Owned(self.0.into_owned()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FullNameError {
    #[error("empty")]
    Empty,
    #[error("too long")]
    TooLong,
    #[error("only the surname")]
    SurnameOnly,
    #[error("has characters that are not letters")]
    BadCharacter,
    #[error("mixes Cyrillic and Latin letters")]
    MixedScripts,
}

fn is_dash(c: char) -> bool {
    matches!(c, '-' | '‐' | '‑' | '‒' | '–' | '—' | '―' | '−' | '﹣' | '－')
}

fn is_cyrillic(c: char) -> bool {
    matches!(c, '\u{0400}'..='\u{04FF}')
}

/// Latin letters that look like Cyrillic ones, as they end up in names typed
/// with the wrong keyboard layout active or copied from scanned bills.
fn cyrillic_lookalike(c: char) -> Option<char> {
    Some(match c {
        'a' => 'а',
        'c' => 'с',
        'e' => 'е',
        'o' => 'о',
        'p' => 'р',
        'x' => 'х',
        'y' => 'у',
        'A' => 'А',
        'B' => 'В',
        'C' => 'С',
        'E' => 'Е',
        'H' => 'Н',
        'K' => 'К',
        'M' => 'М',
        'O' => 'О',
        'P' => 'Р',
        'T' => 'Т',
        'X' => 'Х',
        _ => return None,
    })
}

/// Folded text, dashes unified with no spaces around them, look-alike Latin
/// letters read as Cyrillic inside a Cyrillic name.
fn canonical_text(input: &str) -> Result<String, FullNameError> {
    let folded = text::fold_cow(input);
    let needs_unifying = folded.chars().any(|c| is_dash(c) || c == '’' || c == 'ʼ' || c == '`');
    let mut unified = if needs_unifying {
        let mut unified = String::with_capacity(folded.len());
        for c in folded.chars() {
            if is_dash(c) {
                while unified.ends_with(' ') {
                    unified.pop();
                }
                unified.push('-');
            } else if c == ' ' && unified.ends_with('-') {
                continue;
            } else {
                unified.push(if c == '’' || c == 'ʼ' || c == '`' { '\'' } else { c });
            }
        }
        unified
    } else {
        folded.into_owned()
    };
    if unified.chars().any(is_cyrillic) {
        if unified.chars().any(|c| cyrillic_lookalike(c).is_some()) {
            unified = unified.chars().map(|c| cyrillic_lookalike(c).unwrap_or(c)).collect();
        }
        if unified.chars().any(|c| c.is_ascii_alphabetic()) {
            return Err(FullNameError::MixedScripts);
        }
    }
    Ok(unified)
}

/// The general path of [`FullName::canonical`]: the display form of any
/// input, checked word by word.
fn canonical_checked(input: &str) -> Result<String, FullNameError> {
    let display = canonical_text(input)?;
    if display.is_empty() {
        return Err(FullNameError::Empty);
    }
    if display.chars().count() > MAX_CHARS {
        return Err(FullNameError::TooLong);
    }
    words_of(&display)?;
    Ok(display)
}

fn fold_letter(c: char) -> impl Iterator<Item = char> {
    c.to_lowercase().map(|l| if l == 'ё' { 'е' } else { l })
}

fn comparison_key(word: &str) -> String {
    let mut key = String::with_capacity(word.len());
    for c in word.chars() {
        // The Cyrillic block up to U+045F and ASCII without the Unicode
        // tables (a billing file has millions of these letters).
        let lower = match c {
            'А'..='Я' => char::from_u32(u32::from(c) + 0x20),
            'Ѐ'..='Џ' => char::from_u32(u32::from(c) + 0x50),
            'а'..='я' | 'ѐ'..='џ' => Some(c),
            c if c.is_ascii() => Some(c.to_ascii_lowercase()),
            _ => None,
        };
        match lower {
            Some('ё') => key.push('е'),
            Some(lower) => key.push(lower),
            None => key.extend(fold_letter(c)),
        }
    }
    key
}

/// `char::is_alphabetic`, answered without the Unicode tables for ASCII and
/// the Cyrillic block up to U+045F (all letters).
fn is_letter(c: char) -> bool {
    matches!(c, '\u{0400}'..='\u{045F}') || c.is_alphabetic()
}

fn is_name_word(word: &str) -> bool {
    let mut chars = word.chars();
    let starts_with_letter = chars.next().is_some_and(is_letter);
    let ends_with_letter = word.chars().last().is_some_and(is_letter);
    starts_with_letter
        && ends_with_letter
        && word.chars().all(|c| is_letter(c) || c == '-' || c == '\'')
        && !word.contains("--")
}

/// Surname and given parts of a name's display form (see [`FullName::parse`]).
fn words_of(display: &str) -> Result<(String, Vec<GivenPart>), FullNameError> {
    let mut words = Vec::new();
    for token in display.split(' ') {
        // "И.И." and "И." are initials; a dot may also glue them to nothing.
        let mut pieces = token.split('.').filter(|p| !p.is_empty()).peekable();
        if pieces.peek().is_none() {
            return Err(FullNameError::BadCharacter);
        }
        let dotted = token.contains('.');
        for piece in pieces {
            if !is_name_word(piece) {
                return Err(FullNameError::BadCharacter);
            }
            let key = comparison_key(piece);
            let mut letters = key.chars();
            match (letters.next(), letters.next()) {
                (Some(only), None) => words.push(GivenPart::Initial(only)),
                _ if dotted => return Err(FullNameError::BadCharacter),
                _ => words.push(GivenPart::Full(key)),
            }
        }
    }
    let mut words = words.into_iter();
    let surname = match words.next() {
        Some(GivenPart::Full(surname)) => surname,
        Some(GivenPart::Initial(_)) => return Err(FullNameError::BadCharacter),
        None => return Err(FullNameError::Empty),
    };
    let given: Vec<GivenPart> = words.collect();
    if given.is_empty() {
        return Err(FullNameError::SurnameOnly);
    }
    Ok((surname, given))
}

/// The common case of [`FullName::canonical`], on bytes: Russian letters
/// (А–я, Ё, ё) in words of single spaces, dots only after initials, a
/// surname of two letters or more and at least one more word. Such a text
/// is its own display form and passes every check of the general path
/// (`the_plain_name_path_agrees_with_the_general_one` holds them equal).
/// False means "look closer", not "not a name".
pub(crate) fn is_plain_russian_name(input: &str) -> bool {
    let mut words = 0usize;
    let mut letters = 0usize;
    for token in input.as_bytes().split(|b| *b == b' ') {
        // An empty token is a space at an end or a double space: not folded.
        if token.is_empty() {
            return false;
        }
        let dotted = token.contains(&b'.');
        let mut pieces = 0;
        for piece in token.split(|b| *b == b'.').filter(|p| !p.is_empty()) {
            let Some(count) = russian_letters(piece) else {
                return false;
            };
            // A dotted word must be an initial, and the surname a whole word.
            if (dotted && count > 1) || (words == 0 && count < 2) {
                return false;
            }
            letters += count;
            words += 1;
            pieces += 1;
        }
        if pieces == 0 {
            return false;
        }
    }
    // Each letter is two bytes and one character; spaces and dots are one.
    words >= 2 && input.len() - letters <= MAX_CHARS
}

/// How many letters `piece` holds when it is only Russian letters (UTF-8
/// `D0 81`, `D0 90`–`D0 BF`, `D1 80`–`D1 8F`, `D1 91`).
fn russian_letters(piece: &[u8]) -> Option<usize> {
    let pairs = piece.chunks_exact(2);
    if !pairs.remainder().is_empty() {
        return None;
    }
    for pair in pairs {
        match pair {
            [0xD0, 0x81 | 0x90..=0xBF] | [0xD1, 0x80..=0x8F | 0x91] => {}
            _ => return None,
        }
    }
    Some(piece.len() / 2)
}

impl FullName {
    /// A display form an earlier [`FullName::canonical`] returned, read
    /// back from the import's spool of checked rows: not checked again.
    #[cfg(feature = "import")]
    pub(crate) fn checked_before(display: String) -> Self {
        Self { display }
    }

    pub fn parse(input: &str) -> Result<Self, FullNameError> {
        Self::canonical(input).map(FullNameRef::into_owned)
    }

    /// What [`FullName::parse`] checks and keeps, without copying the input
    /// when it is kept as it is.
    pub fn canonical(input: &str) -> Result<FullNameRef<'_>, FullNameError> {
        if is_plain_russian_name(input) {
            return Ok(FullNameRef(Cow::Borrowed(input)));
        }
        canonical_checked(input).map(|display| FullNameRef(Cow::Owned(display)))
    }

    /// Whether this name (typed by a resident) names the same person as
    /// `record` (the payer in the billing data). Initials typed match only
    /// initials on record: where the record has full names, the resident
    /// types full names. A full word typed matches an initial on record
    /// (the record knows no more). Nothing weaker matches.
    pub fn matches(&self, record: &FullName) -> bool {
        // Both display forms passed `words_of` when parsed, so neither fails.
        let (Ok((surname, given)), Ok((record_surname, record_given))) =
            (words_of(&self.display), words_of(&record.display))
        else {
            return false;
        };
        surname == record_surname
            && given.len() == record_given.len()
            && given.iter().zip(&record_given).all(|(a, b)| a.matches(b))
    }

    pub fn as_str(&self) -> &str {
        &self.display
    }
}

impl fmt::Display for FullName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

impl TryFrom<String> for FullName {
    type Error = FullNameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<FullName> for String {
    fn from(value: FullName) -> Self {
        value.display
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_letter_paths_agree_with_the_unicode_tables() {
        for c in (0u32..0x500).filter_map(char::from_u32) {
            assert_eq!(is_letter(c), c.is_alphabetic(), "{c:?}");
            let slow: String = fold_letter(c).collect();
            assert_eq!(comparison_key(&c.to_string()), slow, "{c:?}");
        }
    }
    use proptest::prelude::*;

    fn name(s: &str) -> FullName {
        FullName::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn matches(typed: &str, record: &str) -> bool {
        name(typed).matches(&name(record))
    }

    #[test]
    fn case_spaces_and_yo_do_not_matter() {
        assert!(matches("  ФЁДОРОВ   пётр\u{00A0}Семёнович ", "Федоров Петр Семенович"));
    }

    #[test]
    fn latin_lookalikes_inside_a_cyrillic_name_read_as_cyrillic() {
        // "Сорокин" with Latin C, o, p and "Oлег" with Latin O.
        assert!(matches("Coрoкин Oлег Петрович", "Сорокин Олег Петрович"));
    }

    #[test]
    fn dash_variants_and_spaces_around_them_fold() {
        assert!(matches("Салтыков - Щедрин Михаил Евграфович", "Салтыков-Щедрин Михаил Евграфович"));
        assert!(matches("Салтыков—Щедрин Михаил Евграфович", "Салтыков-Щедрин Михаил Евграфович"));
    }

    #[test]
    fn initials_typed_match_only_initials_on_record() {
        for typed in ["Иванов И.И.", "Иванов И. И.", "Иванов И И", "иванов и.и"] {
            assert!(!matches(typed, "Иванов Иван Иванович"), "{typed}");
            assert!(matches(typed, "Иванов И. И."), "{typed}");
            assert!(matches("Иванов Иван Иванович", typed), "{typed}");
        }
        assert!(!matches("Иванов Иван И.", "Иванов Иван Иванович"));
        assert!(matches("Иванов Иван И.", "Иванов Иван Иванович".replace("Иванович", "И.").as_str()));
        assert!(!matches("Иванов П. И.", "Иванов И. И."));
    }

    #[test]
    fn nothing_weaker_matches() {
        assert_eq!(FullName::parse("Иванов").unwrap_err(), FullNameError::SurnameOnly);
        assert!(!matches("Иванов Пётр Иванович", "Иванов Иван Иванович"));
        assert!(!matches("Иванов Иван Петрович", "Иванов Иван Иванович"));
        assert!(!matches("Иванов П.И.", "Иванов Иван Иванович"));
        assert!(!matches("Иванов Иван", "Иванов Иван Иванович"));
        assert!(!matches("Ivanov Ivan Ivanovich", "Иванов Иван Иванович"));
        assert!(!matches("Петров Иван Иванович", "Иванов Иван Иванович"));
    }

    #[test]
    fn latin_names_are_names_of_their_own() {
        assert!(matches("SMITH John", "Smith John"));
    }

    #[test]
    fn refuses_digits_mixed_scripts_and_stray_punctuation() {
        assert_eq!(FullName::parse("Иванов Иван 2").unwrap_err(), FullNameError::BadCharacter);
        assert_eq!(FullName::parse("Иванов Ivan").unwrap_err(), FullNameError::MixedScripts);
        assert_eq!(FullName::parse("").unwrap_err(), FullNameError::Empty);
        assert_eq!(FullName::parse("И. Иванов").unwrap_err(), FullNameError::BadCharacter);
    }

    #[test]
    fn keeps_a_readable_display_form() {
        assert_eq!(name(" Салтыков -  Щедрин  М.Е. ").as_str(), "Салтыков-Щедрин М.Е.");
    }

    #[test]
    fn plain_russian_names_take_the_byte_path() {
        for plain in ["Иванов Иван Иванович", "Иванов И.И.", "Иванов И. И.", "Ёлкин Пётр", "Иванов Иван И."]
        {
            assert!(is_plain_russian_name(plain), "{plain:?}");
        }
        for other in ["Иванов", "И. Иванов", "Ив.Ив Иван", " Иванов Иван", "Иванов  Иван", "Иванов Иван ", "Smith John"]
        {
            assert!(!is_plain_russian_name(other), "{other:?}");
        }
    }

    /// Texts near names: Russian letters, spaces and dots, with characters
    /// that must send a text down the general path (Latin look-alikes,
    /// dashes, digits, NBSP, Ukrainian letters, apostrophes).
    fn near_names() -> impl Strategy<Value = String> {
        let alphabet: Vec<char> = "АаБбЯяЁёЙйИиЖжЪъ    ...-aeoCX1\u{a0}Ї’".chars().collect();
        proptest::collection::vec(proptest::sample::select(alphabet), 0..20).prop_map(|v| v.into_iter().collect())
    }

    fn general_path(s: &str) -> Result<String, FullNameError> {
        canonical_checked(s)
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_display_reparses_to_an_equal_name(s in any::<String>()) {
            if let Ok(n) = FullName::parse(&s) {
                let again = FullName::parse(n.as_str()).expect("display form parses");
                prop_assert!(again.matches(&n) && n.matches(&again));
                prop_assert!(n.matches(&n));
                prop_assert_eq!(again.as_str(), n.as_str());
            }
        }

        #[test]
        fn the_plain_name_path_agrees_with_the_general_one(s in near_names()) {
            if is_plain_russian_name(&s) {
                prop_assert_eq!(general_path(&s), Ok(s.clone()));
            }
            let canonical = FullName::canonical(&s).map(|n| n.as_str().to_owned());
            prop_assert_eq!(canonical, general_path(&s));
        }

        #[test]
        fn the_plain_name_path_agrees_on_name_shaped_text(
            s in "[А-Яа-яЁё]{1,14}( [А-Яа-яЁё]{1,12}\\.?){0,3}|[А-Яа-яЁё]{2,9} [А-Яа-яЁё]\\.[А-Яа-яЁё]\\.?"
        ) {
            if is_plain_russian_name(&s) {
                prop_assert_eq!(general_path(&s), Ok(s.clone()));
            }
            let canonical = FullName::canonical(&s).map(|n| n.as_str().to_owned());
            prop_assert_eq!(canonical, general_path(&s));
        }

        #[test]
        fn cyrillic_names_match_themselves(s in "[А-Яа-яЁё]{2,12} [А-Яа-яЁё]{1,12}( [А-Яа-яЁё]{1,12})?") {
            let n = FullName::parse(&s).expect("letters and spaces parse");
            prop_assert!(n.matches(&FullName::parse(&s.to_uppercase()).expect("upper parses")));
        }
    }
}
