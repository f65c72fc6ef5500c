//! The common row of an export in a code page (Windows-1251 from 1C, or a
//! DOS one) read from its bytes: the account in ASCII digits in the first
//! cell, the payer in Russian letters, an address of ASCII and Cyrillic, an
//! ASCII balance. Such a row is checked and decoded in one pass per cell;
//! any other row goes through [`super::rows::classify_ref`] on decoded
//! cells. Both give the same outcome (`plain_rows_read_as_decoded_rows`).

use std::borrow::Cow;

use encoding_rs::Encoding;

use super::cells::parse_balance;
use super::columns::{ColumnMap, PayerColumns};
use super::rows::{AccountRef, RowOutcomeRef};
use super::split::Record;
use crate::domain::{AccountNumber, FullNameRef, Money};

/// The byte decodes to a Russian letter (А–я, Ё, ё).
const LETTER: u8 = 1;
/// The byte decodes to a character that folding leaves alone and
/// `text::fold_cow` recognises without looking closer: ASCII graphic, or
/// Cyrillic U+0400–U+045F.
const FOLDED: u8 = 2;

/// The longest name and address a plain row may have (characters, which
/// are bytes in a code page): longer ones take the general path, which
/// knows their limits.
const MAX_PLAIN_NAME: usize = 200;
const MAX_PLAIN_ADDRESS: usize = 1_000;

/// What each byte of a single-byte encoding decodes to.
pub(super) struct CodePage {
    chars: [char; 256],
    classes: [u8; 256],
}

impl CodePage {
    /// `None` for an encoding that is not single-byte.
    pub(super) fn of(encoding: &'static Encoding) -> Option<Self> {
        if !encoding.is_single_byte() {
            return None;
        }
        let mut chars = ['\u{FFFD}'; 256];
        let mut classes = [0u8; 256];
        for ((byte, slot), class) in (0..=u8::MAX).zip(chars.iter_mut()).zip(classes.iter_mut()) {
            let single = [byte];
            let (text, _) = encoding.decode_without_bom_handling(&single);
            let mut decoded = text.chars();
            let (Some(c), None) = (decoded.next(), decoded.next()) else {
                continue;
            };
            *slot = c;
            if matches!(c, 'А'..='я' | 'Ё' | 'ё') {
                *class |= LETTER;
            }
            if matches!(c, '!'..='~' | '\u{0400}'..='\u{045F}') {
                *class |= FOLDED;
            }
        }
        Some(Self { chars, classes })
    }

    fn char_of(&self, byte: u8) -> char {
        self.chars.get(usize::from(byte)).copied().unwrap_or('\u{FFFD}')
    }

    fn is(&self, byte: u8, class: u8) -> bool {
        self.classes.get(usize::from(byte)).is_some_and(|c| c & class != 0)
    }

    /// The cell as text: each byte is one character.
    pub(super) fn decode(&self, bytes: &[u8], out: &mut String) {
        out.clear();
        out.extend(bytes.iter().map(|b| self.char_of(*b)));
    }

    /// A payer's name that `FullName` keeps as it is (see
    /// `is_plain_russian_name`, which this follows with one byte per
    /// letter), decoded into `out`.
    fn plain_name(&self, bytes: &[u8], out: &mut String) -> bool {
        if bytes.len() > MAX_PLAIN_NAME {
            return false;
        }
        // One look at each byte: the words are the runs of letters between
        // spaces and dots.
        let mut words = 0usize;
        for token in bytes.split(|b| *b == b' ') {
            let (mut pieces, mut run, mut longest, mut dotted) = (0usize, 0usize, 0usize, false);
            for &byte in token {
                if byte == b'.' {
                    dotted = true;
                    run = 0;
                } else if self.is(byte, LETTER) {
                    pieces += usize::from(run == 0);
                    run += 1;
                    longest = longest.max(run);
                } else {
                    return false;
                }
            }
            // A token of no letters (an empty one is a double space or a
            // space at an end), a dotted word longer than an initial, or a
            // surname that is an initial.
            if pieces == 0 || (dotted && longest > 1) || (words == 0 && (dotted || longest < 2)) {
                return false;
            }
            words += pieces;
        }
        if words < 2 {
            return false;
        }
        self.decode(bytes, out);
        true
    }

    /// An address that folding leaves as it is (single spaces between
    /// words, nothing `text::fold_cow` would look closer at), decoded into
    /// `out` as it is checked.
    fn plain_address(&self, bytes: &[u8], out: &mut String) -> bool {
        if bytes.len() > MAX_PLAIN_ADDRESS {
            return false;
        }
        out.clear();
        let mut previous_space = true;
        for &byte in bytes {
            if byte == b' ' {
                if previous_space {
                    return false;
                }
                previous_space = true;
                out.push(' ');
            } else if self.is(byte, FOLDED) {
                previous_space = false;
                out.push(self.char_of(byte));
            } else {
                return false;
            }
        }
        !previous_space || bytes.is_empty()
    }
}

/// A balance cell in ASCII that reads as an amount; `None` otherwise.
fn plain_balance(bytes: &[u8]) -> Option<Money> {
    std::str::from_utf8(bytes).ok().filter(|s| s.is_ascii()).and_then(|s| parse_balance(s).ok())
}

/// What `classify_ref` makes of the record, when the record is plain;
/// `None` sends it down the general path. `name` and `address` are the
/// buffers the decoded text goes to.
pub(super) fn classify_plain<'a>(
    page: &CodePage,
    record: Record<'a>,
    columns: &ColumnMap,
    name: &'a mut String,
    address: &'a mut String,
) -> Option<RowOutcomeRef<'a>> {
    // A first cell starting with a digit: not blank, not a total, not the
    // header again; with a name of letters, not the row of column numbers.
    if !record.get(0)?.first()?.is_ascii_digit() {
        return None;
    }
    let PayerColumns::Whole(payer) = columns.payer else {
        return None;
    };
    let account = record.get(columns.account)?;
    if account.is_empty() || !account.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let account = AccountNumber::canonical(std::str::from_utf8(account).ok()?).ok()?;
    if !page.plain_name(record.get(payer)?, name) {
        return None;
    }
    let full_name = FullNameRef::plain(name);
    let address = match columns.address {
        Some(i) => {
            if !page.plain_address(record.get(i).unwrap_or_default(), address) {
                return None;
            }
            Some(Cow::Borrowed(address.as_str())).filter(|a| !a.is_empty())
        }
        None => None,
    };
    let balance = match columns.balance {
        Some(i) => {
            let debit = plain_balance(record.get(i).unwrap_or_default())?;
            match columns.balance_credit {
                Some(credit) => Some(Money(debit.0 - plain_balance(record.get(credit).unwrap_or_default())?.0)),
                None => Some(debit),
            }
        }
        None => None,
    };
    Some(RowOutcomeRef::Account { account: AccountRef { account, full_name, address, balance }, warnings: Vec::new() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use encoding_rs::WINDOWS_1251;

    #[test]
    fn a_plain_name_in_a_code_page_is_a_plain_name_once_decoded() {
        use proptest::prelude::*;
        let alphabet: Vec<char> = "АаБбЯяЁёЙйИиЖж    ....1a-".chars().collect();
        let text = proptest::collection::vec(proptest::sample::select(alphabet), 0..24)
            .prop_map(|chars| chars.into_iter().collect::<String>());
        let encodings = proptest::sample::select(vec![WINDOWS_1251, encoding_rs::KOI8_R, encoding_rs::IBM866]);
        proptest!(|(text in text, encoding in encodings)| {
            let page = CodePage::of(encoding).unwrap();
            let bytes = encoding.encode(&text).0.into_owned();
            let mut decoded = String::new();
            let plain = page.plain_name(&bytes, &mut decoded);
            prop_assert_eq!(plain, crate::domain::is_plain_russian_name(&text));
            if plain {
                prop_assert_eq!(decoded, text);
            }
        });
    }

    #[test]
    fn a_plain_address_is_one_that_folding_leaves_alone() {
        use proptest::prelude::*;
        let alphabet: Vec<char> = "аЯёЁ1.,№  \t\u{a0}—€a\"«".chars().collect();
        let text = proptest::collection::vec(proptest::sample::select(alphabet), 0..24)
            .prop_map(|chars| chars.into_iter().collect::<String>());
        let encodings = proptest::sample::select(vec![WINDOWS_1251, encoding_rs::KOI8_R, encoding_rs::IBM866]);
        proptest!(|(text in text, encoding in encodings)| {
            let page = CodePage::of(encoding).unwrap();
            let (bytes, _, lossy) = encoding.encode(&text);
            let mut decoded = String::new();
            if page.plain_address(&bytes, &mut decoded) && !lossy {
                prop_assert_eq!(&decoded, &text);
                prop_assert_eq!(crate::text::fold_cow(&text), std::borrow::Cow::Borrowed(text.as_str()));
            }
        });
    }

    /// The cells in Windows-1251, end to end, and where each ends.
    fn record_of<S: AsRef<str>>(cells: &[S]) -> (Vec<u8>, Vec<usize>) {
        let mut bytes = Vec::new();
        let mut ends = Vec::new();
        for cell in cells {
            bytes.extend_from_slice(&WINDOWS_1251.encode(cell.as_ref()).0);
            ends.push(bytes.len());
        }
        (bytes, ends)
    }

    #[test]
    fn a_1c_row_is_plain() {
        let columns =
            ColumnMap::from_header(&["ЛС".into(), "ФИО".into(), "Адрес".into(), "Площадь".into(), "Сальдо".into()])
                .unwrap();
        let page = CodePage::of(WINDOWS_1251).unwrap();
        let cells = ["000123", "Ёлкин Пётр И.", "г. Москва, ул. Садовая, д. 1, кв. 1", "40,5", "-1 234,56"];
        let (bytes, ends) = record_of(&cells);
        let (mut name, mut address) = (String::new(), String::new());
        let Some(RowOutcomeRef::Account { account, warnings }) =
            classify_plain(&page, Record::new(&bytes, &ends), &columns, &mut name, &mut address)
        else {
            panic!("not plain");
        };
        assert_eq!(account.account.as_str(), "123");
        assert_eq!(account.full_name.as_str(), "Ёлкин Пётр И.");
        assert_eq!(account.address.as_deref(), Some("г. Москва, ул. Садовая, д. 1, кв. 1"));
        assert_eq!((account.balance, warnings.len()), (Some(Money(-123456)), 0));
        for (index, odd) in [(1, "Иванов  Иван"), (1, "Ivanov Ivan"), (2, "ул.\tЛенина"), (4, "много"), (0, " 123")]
        {
            let mut cells = cells.map(str::to_owned);
            cells[index] = odd.to_owned();
            let (bytes, ends) = record_of(&cells);
            let record = Record::new(&bytes, &ends);
            assert!(classify_plain(&page, record, &columns, &mut name, &mut address).is_none(), "{odd:?}");
        }
    }
}
