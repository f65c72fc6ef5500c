//! Cells as spreadsheet programs leave them: account numbers that Excel
//! turned into numbers, balances in every local notation.

use std::borrow::Cow;

use crate::domain::Money;
use crate::text;

/// Why an account cell cannot be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MangledAccount {
    /// `1.002003E+08`: Excel shows a number this way when the column is too
    /// narrow and writes what it shows, so digits may be gone (100200312
    /// looks the same). Guessing would attach a payer to someone else's
    /// account, so such a cell is refused with instructions.
    Exponent,
    /// `100200300.5`, `100,000`: a fraction, or a thousands separator that
    /// reads as one; the number cannot be told for sure.
    Fraction,
}

/// The account cell with what Excel added undone: a leading apostrophe
/// (text marker), a `.0` or `,00` fraction (a number cell saved as CSV,
/// with or without spaces between thousands), and an exponent when no digit
/// can have been lost (`1.23E+02`). Anything else is passed on unchanged
/// for [`crate::domain::AccountNumber::parse`].
pub fn account_text(cell: &str) -> Result<Cow<'_, str>, MangledAccount> {
    // Most cells are plain digits: nothing to undo.
    if is_digits(cell) {
        return Ok(Cow::Borrowed(cell));
    }
    let trimmed = cell.trim();
    let unquoted = trimmed.strip_prefix(['\'', '’', '`']).unwrap_or(trimmed).trim();
    let compact: String = unquoted.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.bytes().filter(|b| matches!(b, b'.' | b',')).count() == 1 {
        if let Some((whole, fraction)) = compact.split_once(['.', ',']) {
            if is_digits(whole) && is_digits(fraction) {
                if fraction.len() <= 2 && fraction.bytes().all(|b| b == b'0') {
                    return Ok(Cow::Owned(whole.to_owned()));
                }
                return Err(MangledAccount::Fraction);
            }
        }
    }
    if let Some((mantissa, exponent)) = compact.split_once(['e', 'E']) {
        let exponent = exponent.strip_prefix('+').unwrap_or(exponent);
        let (whole, fraction) = mantissa.split_once(['.', ',']).unwrap_or((mantissa, ""));
        if is_digits(whole) && (fraction.is_empty() || is_digits(fraction)) && is_digits(exponent) {
            let shift: usize = exponent.parse().map_err(|_| MangledAccount::Exponent)?;
            // Every digit of the number is written out only when the
            // exponent does not reach past the fraction.
            if shift == fraction.len() {
                return Ok(Cow::Owned(format!("{whole}{fraction}")));
            }
            return Err(MangledAccount::Exponent);
        }
    }
    Ok(Cow::Borrowed(unquoted))
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// A balance cell that is not an amount of money.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not an amount of money")]
pub struct NotAnAmount;

const CURRENCY_MARKS: [&str; 9] = ["руб.", "руб", "р.", "р", "₽", "rub", "rur", "rub.", "rur."];

/// A balance as billing programs and Excel write it, in kopecks:
/// `1 234,56`, `1234.56`, `1 234,56 руб.`, `-150,00`, `(150,00)` (negative),
/// `150,00-`, NBSP or thin space between thousands, `1,234.56` or `1.234,56`.
/// An empty cell or a dash means zero, as in 1C's printed forms.
pub fn parse_balance(input: &str) -> Result<Money, NotAnAmount> {
    match parse_plain_balance(input.as_bytes()) {
        Some(balance) => balance,
        None => amount(clean_any(input).as_bytes()),
    }
}

/// [`parse_balance`] of a cell of the bytes of a short ASCII text without
/// letters (see [`clean_plain`]), read from its bytes; `None` for any
/// other cell.
pub(super) fn parse_plain_balance(input: &[u8]) -> Option<Result<Money, NotAnAmount>> {
    clean_plain(input).map(|(buffer, len)| amount(buffer.get(..len).unwrap_or_default()))
}

/// The longest cell [`clean_plain`] takes; a balance is far shorter.
const PLAIN_BALANCE_BYTES: usize = 64;

/// What [`clean_any`] gives for a short ASCII cell without letters, as
/// nearly every balance is, without allocating: folding changes nothing in
/// such text but whitespace and controls (which the cleaning drops), there
/// is nothing to lower-case, no dash variant, and no currency mark (each
/// has a letter or is `₽`). `None` when the cell is not such text.
fn clean_plain(input: &[u8]) -> Option<([u8; PLAIN_BALANCE_BYTES], usize)> {
    let mut out = [0u8; PLAIN_BALANCE_BYTES];
    if input.len() > out.len() {
        return None;
    }
    let mut len = 0;
    for &byte in input {
        match byte {
            0..=b' ' | 0x7F | b'\'' => {}
            byte if !byte.is_ascii() || byte.is_ascii_alphabetic() => return None,
            byte => {
                *out.get_mut(len)? = byte;
                len += 1;
            }
        }
    }
    Some((out, len))
}

/// The cell folded and lower-cased, without whitespace and apostrophes,
/// dashes as minus, and a currency mark at the end taken off.
fn clean_any(input: &str) -> String {
    let mut cleaned: String = match text::fold_cow(input) {
        // Folded already, so plain: lower case per character is the same as
        // for the whole text (they differ only for a final Σ, not plain).
        Cow::Borrowed(folded) => folded
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '\'')
            .flat_map(char::to_lowercase)
            .map(dash_as_minus)
            .collect(),
        Cow::Owned(folded) => {
            folded.to_lowercase().chars().filter(|c| !c.is_whitespace() && *c != '\'').map(dash_as_minus).collect()
        }
    };
    for mark in CURRENCY_MARKS {
        if let Some(stripped) = cleaned.strip_suffix(mark) {
            cleaned = stripped.to_owned();
            break;
        }
    }
    cleaned
}

/// The amount of a cleaned cell (see [`clean_any`]); bytes, so that the
/// common case needs no `String`.
fn amount(cleaned: &[u8]) -> Result<Money, NotAnAmount> {
    if let Some(money) = simple_amount(cleaned) {
        return Ok(money);
    }
    if cleaned.is_empty() || cleaned == b"-" {
        return Ok(Money(0));
    }
    let mut negative = false;
    let mut body = cleaned;
    if let Some(inner) = body.strip_prefix(b"(").and_then(|b| b.strip_suffix(b")")) {
        negative = true;
        body = inner;
    }
    if let Some(rest) = body.strip_prefix(b"-") {
        negative = !negative;
        body = rest;
    } else if let Some(rest) = body.strip_suffix(b"-") {
        negative = !negative;
        body = rest;
    }
    let (rubles, fraction) = split_decimal(body)?;
    let kopecks: i64 = match fraction {
        [] => 0,
        [tenths] => i64::from(digit(*tenths)?) * 10,
        [tenths, hundredths] => i64::from(digit(*tenths)?) * 10 + i64::from(digit(*hundredths)?),
        _ => return Err(NotAnAmount),
    };
    let total = rubles.checked_mul(100).and_then(|r| r.checked_add(kopecks)).ok_or(NotAnAmount)?;
    Ok(Money(if negative { -total } else { total }))
}

/// The shape nearly every balance has once cleaned, `-?\d{1,15}([.,]\d{1,2})?`,
/// read in one pass (the general reading takes six over it); `None` for
/// any other shape. It gives what the general reading gives.
fn simple_amount(cleaned: &[u8]) -> Option<Money> {
    let (negative, body) = match cleaned.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, cleaned),
    };
    let (whole, fraction) = match body.iter().position(|b| matches!(b, b',' | b'.')) {
        Some(at) => (body.get(..at)?, body.get(at + 1..).filter(|f| matches!(f.len(), 1 | 2))?),
        None => (body, &b""[..]),
    };
    // 15 digits and a fraction stay far from i64's limit.
    if whole.is_empty() || whole.len() > 15 {
        return None;
    }
    let number = |digits: &[u8]| {
        digits.iter().try_fold(0i64, |value, byte| byte.is_ascii_digit().then(|| value * 10 + i64::from(byte - b'0')))
    };
    let kopecks = match fraction {
        [] => 0,
        [tenths] => number(&[*tenths])? * 10,
        _ => number(fraction)?,
    };
    let total = number(whole)? * 100 + kopecks;
    Some(Money(if negative { -total } else { total }))
}

fn dash_as_minus(c: char) -> char {
    if matches!(c, '−' | '–' | '—' | '‒' | '‐' | '‑') { '-' } else { c }
}

fn is_separator(byte: &u8) -> bool {
    matches!(byte, b',' | b'.')
}

fn digit(byte: u8) -> Result<u8, NotAnAmount> {
    if byte.is_ascii_digit() { Ok(byte - b'0') } else { Err(NotAnAmount) }
}

/// The value of a run of digits (0 when empty); more than `i64` holds is
/// not an amount.
fn digits_value(digits: &[u8]) -> Result<i64, NotAnAmount> {
    digits.iter().try_fold(0i64, |value, &byte| {
        value.checked_mul(10).and_then(|v| v.checked_add(i64::from(digit(byte).ok()?))).ok_or(NotAnAmount)
    })
}

/// Splits `1.234,56`, `1,234.56`, `1234,5` or `1 234` into whole rubles and
/// the fraction's digits. A lone separator followed by three digits
/// (`12,345`) is refused: it could be thousands or a typo.
fn split_decimal(body: &[u8]) -> Result<(i64, &[u8]), NotAnAmount> {
    let separators = body.iter().filter(|b| is_separator(b)).count();
    let (whole, fraction) = match body.iter().rposition(is_separator) {
        None => (body, &b""[..]),
        Some(at) => {
            let (whole, rest) = body.split_at(at);
            let fraction = rest.get(1..).unwrap_or_default();
            let last = rest.first().copied();
            let other_kind_before = whole.iter().any(|b| is_separator(b) && Some(*b) != last);
            if separators > 1 && !other_kind_before {
                // `1.234.567`: every separator groups thousands.
                return grouped(body, last).map(|rubles| (rubles, &b""[..]));
            }
            if fraction.len() == 3 && separators == 1 {
                return Err(NotAnAmount);
            }
            (whole, fraction)
        }
    };
    let rubles = match whole.iter().find(|b| is_separator(b)) {
        Some(&separator) => grouped(whole, Some(separator))?,
        None => digits_value(whole)?,
    };
    if (whole.is_empty() && fraction.is_empty()) || !fraction.iter().all(u8::is_ascii_digit) {
        return Err(NotAnAmount);
    }
    Ok((rubles, fraction))
}

/// `1,234,567` with `,` as the thousands separator → 1234567; every group
/// after the first must have three digits.
fn grouped(digits: &[u8], separator: Option<u8>) -> Result<i64, NotAnAmount> {
    let separator = separator.ok_or(NotAnAmount)?;
    let mut groups = digits.split(|b| *b == separator);
    let first = groups.next().unwrap_or_default();
    if first.is_empty() || first.len() > 3 {
        return Err(NotAnAmount);
    }
    let mut value = digits_value(first)?;
    for group in groups {
        if group.len() != 3 {
            return Err(NotAnAmount);
        }
        value = value.checked_mul(1000).and_then(|v| v.checked_add(digits_value(group).ok()?)).ok_or(NotAnAmount)?;
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn account_cells_as_excel_leaves_them() {
        for (cell, expected) in [
            ("100200300", "100200300"),
            ("100200300.0", "100200300"),
            ("100200300,00", "100200300"),
            ("'0012345", "0012345"),
            (" '100200300 ", "100200300"),
            ("1.23E+02", "123"),
            ("1,0020030E+07", "10020030"),
            ("00 123-456", "00 123-456"),
            ("100 200 300.00", "100200300"),
            ("100\u{a0}200\u{a0}300,00", "100200300"),
            ("100.200.300", "100.200.300"),
            ("12a", "12a"),
        ] {
            assert_eq!(account_text(cell).as_deref(), Ok(expected), "{cell:?}");
        }
        for lossy in ["1.002003E+08", "1E+8", "1.5e10", "1.23456789012345E16"] {
            assert_eq!(account_text(lossy), Err(MangledAccount::Exponent), "{lossy:?}");
        }
        for fraction in ["100,000", "100.000", "100200300.5", "100 200 300,50", "100.0000"] {
            assert_eq!(account_text(fraction), Err(MangledAccount::Fraction), "{fraction:?}");
        }
    }

    #[test]
    fn balances_as_billing_programs_and_excel_write_them() {
        let cases = [
            ("1 234,56", 123456),
            ("1\u{a0}234,56", 123456),
            ("1\u{2009}234,56", 123456),
            ("1\u{202f}234,56", 123456),
            ("1234.56", 123456),
            ("1 234,56 руб.", 123456),
            ("1 234,56 ₽", 123456),
            ("-150,00", -15000),
            ("−150,5", -15050),
            ("(150,00)", -15000),
            ("150,00-", -15000),
            ("1,234.56", 123456),
            ("1.234,56", 123456),
            ("1.234.567", 123456700),
            ("0", 0),
            ("12", 1200),
            ("1 234 руб.", 123400),
            ("", 0),
            ("  ", 0),
            ("-", 0),
            ("—", 0),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_balance(input), Ok(Money(expected)), "{input:?}");
        }
        for bad in ["abc", "1,2,3", "12,345", "--5", ",", "1e5", "1.234,5.6", "(5", "1,23,45"] {
            assert_eq!(parse_balance(bad), Err(NotAnAmount), "{bad:?}");
        }
    }

    /// The balance reader as it was before the byte paths (allocating,
    /// on `String`s): the reference the fast paths must agree with.
    mod reference {
        use super::super::{CURRENCY_MARKS, NotAnAmount};
        use crate::domain::Money;
        use crate::text;
        use std::borrow::Cow;

        pub fn parse_balance(input: &str) -> Result<Money, NotAnAmount> {
            let mut cleaned: String = match text::fold_cow(input) {
                // Folded already, so plain: lower case per character is the same as
                // for the whole text (they differ only for a final Σ, not plain).
                Cow::Borrowed(folded) => folded
                    .chars()
                    .filter(|c| !c.is_whitespace() && *c != '\'')
                    .flat_map(char::to_lowercase)
                    .map(dash_as_minus)
                    .collect(),
                Cow::Owned(folded) => folded
                    .to_lowercase()
                    .chars()
                    .filter(|c| !c.is_whitespace() && *c != '\'')
                    .map(dash_as_minus)
                    .collect(),
            };
            for mark in CURRENCY_MARKS {
                if let Some(stripped) = cleaned.strip_suffix(mark) {
                    cleaned = stripped.to_owned();
                    break;
                }
            }
            if cleaned.is_empty() || cleaned == "-" {
                return Ok(Money(0));
            }
            let mut negative = false;
            let mut body = cleaned.as_str();
            if let Some(inner) = body.strip_prefix('(').and_then(|b| b.strip_suffix(')')) {
                negative = true;
                body = inner;
            }
            if let Some(rest) = body.strip_prefix('-') {
                negative = !negative;
                body = rest;
            } else if let Some(rest) = body.strip_suffix('-') {
                negative = !negative;
                body = rest;
            }
            let (whole, fraction) = split_decimal(body)?;
            let rubles: i64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| NotAnAmount)? };
            let kopecks: i64 = match fraction.len() {
                0 => 0,
                1 => fraction.parse::<i64>().map_err(|_| NotAnAmount)? * 10,
                2 => fraction.parse().map_err(|_| NotAnAmount)?,
                _ => return Err(NotAnAmount),
            };
            let total = rubles.checked_mul(100).and_then(|r| r.checked_add(kopecks)).ok_or(NotAnAmount)?;
            Ok(Money(if negative { -total } else { total }))
        }

        fn dash_as_minus(c: char) -> char {
            if matches!(c, '−' | '–' | '—' | '‒' | '‐' | '‑') { '-' } else { c }
        }

        /// Splits `1.234,56`, `1,234.56`, `1234,5` or `1 234` into whole digits and
        /// the fraction. A lone separator followed by three digits (`12,345`) is
        /// refused: it could be thousands or a typo.
        fn split_decimal(body: &str) -> Result<(String, &str), NotAnAmount> {
            let plain = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
            let separators = body.bytes().filter(|b| matches!(b, b',' | b'.')).count();
            let (whole, fraction) = match body.rfind([',', '.']) {
                None => (body, ""),
                Some(at) => {
                    let (whole, rest) = body.split_at(at);
                    let fraction = rest.get(1..).unwrap_or("");
                    let last = rest.as_bytes().first().copied();
                    let other_kind_before = whole.bytes().any(|b| matches!(b, b',' | b'.') && Some(b) != last);
                    if separators > 1 && !other_kind_before {
                        // `1.234.567`: every separator groups thousands.
                        return grouped(body, last).map(|digits| (digits, ""));
                    }
                    if fraction.len() == 3 && separators == 1 {
                        return Err(NotAnAmount);
                    }
                    (whole, fraction)
                }
            };
            let whole = if whole.bytes().any(|b| matches!(b, b',' | b'.')) {
                let separator = whole.bytes().find(|b| matches!(b, b',' | b'.'));
                grouped(whole, separator)?
            } else {
                whole.to_owned()
            };
            if (whole.is_empty() && fraction.is_empty()) || !plain(&whole) || !plain(fraction) {
                return Err(NotAnAmount);
            }
            Ok((whole, fraction))
        }

        /// `1,234,567` with `,` as the thousands separator → `1234567`; every group
        /// after the first must have three digits.
        fn grouped(digits: &str, separator: Option<u8>) -> Result<String, NotAnAmount> {
            let separator = char::from(separator.ok_or(NotAnAmount)?);
            let mut groups = digits.split(separator);
            let first = groups.next().unwrap_or("");
            if first.is_empty() || first.len() > 3 || !first.bytes().all(|b| b.is_ascii_digit()) {
                return Err(NotAnAmount);
            }
            let mut out = first.to_owned();
            for group in groups {
                if group.len() != 3 || !group.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(NotAnAmount);
                }
                out.push_str(group);
            }
            Ok(out)
        }
    }

    /// Balances near what billing programs write: digits, separators,
    /// signs, spaces of every kind, parentheses, currency marks, letters.
    fn near_balances() -> impl Strategy<Value = String> {
        let alphabet: Vec<char> = "0123456789   ,.,.--()'\u{a0}\u{2009}\t\u{1}−—рубRUB₽e".chars().collect();
        proptest::collection::vec(proptest::sample::select(alphabet), 0..16).prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        #[test]
        fn the_byte_paths_read_balances_as_the_reference_does(s in near_balances()) {
            prop_assert_eq!(parse_balance(&s), reference::parse_balance(&s));
        }

        #[test]
        fn the_byte_paths_agree_on_number_shaped_text(
            s in "-?\\(?[0-9]{0,4}([ ,.][0-9]{1,3}){0,4}([,.][0-9]{0,3})?\\)?-?( руб\\.)?"
        ) {
            prop_assert_eq!(parse_balance(&s), reference::parse_balance(&s));
        }

        #[test]
        fn the_byte_paths_agree_on_any_text(s in any::<String>()) {
            prop_assert_eq!(parse_balance(&s), reference::parse_balance(&s));
        }

        #[test]
        fn plain_cleaning_equals_the_general_one(s in near_balances()) {
            if let Some((buffer, len)) = clean_plain(s.as_bytes()) {
                let general = clean_any(&s);
                prop_assert_eq!(&buffer[..len], general.as_bytes());
            }
        }
    }

    #[test]
    fn huge_amounts_are_refused_as_before() {
        for s in ["92233720368547758,07", "92233720368547758,08", "9.223.372.036.854.775.807", "99999999999999999999"] {
            assert_eq!(parse_balance(s), reference::parse_balance(s), "{s:?}");
        }
    }
}
