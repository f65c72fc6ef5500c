//! The common row of an export in a code page (Windows-1251 from 1C, or a
//! DOS one) read from its bytes: the account in ASCII digits in the first
//! cell, the payer in Russian letters, an address of ASCII and Cyrillic, an
//! ASCII balance. Such a row is checked first, then its payer and address
//! are decoded through a table into one buffer; any other row goes through [`super::rows::classify_ref`] on decoded
//! cells. Both give the same outcome (`plain_rows_read_as_decoded_rows`).

use std::borrow::Cow;

use encoding_rs::Encoding;

use super::cells::{parse_balance, parse_plain_balance};
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
    /// Each byte's character in UTF-8 when it takes one byte for an ASCII
    /// byte and two for any other (every byte of a plain cell); else
    /// `[0xFF, 0xFF]`, never valid UTF-8.
    utf8: [[u8; 2]; 256],
}

impl CodePage {
    /// `None` for an encoding that is not single-byte.
    pub(super) fn of(encoding: &'static Encoding) -> Option<Self> {
        if !encoding.is_single_byte() {
            return None;
        }
        let mut chars = ['\u{FFFD}'; 256];
        let mut classes = [0u8; 256];
        let mut utf8 = [[0xFFu8; 2]; 256];
        for (((byte, slot), class), code) in
            (0..=u8::MAX).zip(chars.iter_mut()).zip(classes.iter_mut()).zip(utf8.iter_mut())
        {
            let single = [byte];
            let (text, _) = encoding.decode_without_bom_handling(&single);
            let mut decoded = text.chars();
            let (Some(c), None) = (decoded.next(), decoded.next()) else {
                continue;
            };
            *slot = c;
            // The decoder below takes a character's length from its byte.
            if c.len_utf8() != 1 + usize::from(byte >> 7) {
                continue;
            }
            c.encode_utf8(code);
            if matches!(c, 'А'..='я' | 'Ё' | 'ё') {
                *class |= LETTER;
            }
            if matches!(c, '!'..='~' | '\u{0400}'..='\u{045F}') {
                *class |= FOLDED;
            }
        }
        Some(Self { chars, classes, utf8 })
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

    /// Writes a plain byte (LETTER, FOLDED or ASCII) as UTF-8 at `end` of
    /// `out` (room for two bytes per byte made before), and moves `end`:
    /// two bytes from a table, the length told by the byte itself, so
    /// nothing waits on a load (pushing `char`s one by one took about a
    /// sixth of the reading time). Another byte leaves invalid UTF-8.
    fn put(&self, byte: u8, out: &mut [u8], end: &mut usize) {
        let code = self.utf8.get(usize::from(byte)).copied().unwrap_or([0xFF; 2]);
        if let Some(slot) = out.get_mut(*end..*end + 2) {
            slot.copy_from_slice(&code);
        }
        *end += 1 + usize::from(byte >> 7);
    }

    /// A payer's name that `FullName` keeps as it is (see
    /// `is_plain_russian_name`, which this follows with one byte per
    /// letter), appended to `out` as UTF-8 in the same look at each byte;
    /// `false` (and `out` not to be used) otherwise.
    fn append_plain_name(&self, bytes: &[u8], out: &mut Vec<u8>) -> bool {
        if bytes.len() > MAX_PLAIN_NAME {
            return false;
        }
        let mut end = out.len();
        out.resize(end + bytes.len() * 2, 0);
        // The words are the runs of letters between spaces and dots.
        let mut words = 0usize;
        let (mut pieces, mut run, mut longest, mut dotted) = (0usize, 0usize, 0usize, false);
        for &byte in bytes {
            if byte == b' ' {
                if !name_token_fits(words, pieces, longest, dotted) {
                    return false;
                }
                words += pieces;
                (pieces, run, longest, dotted) = (0, 0, 0, false);
            } else if byte == b'.' {
                dotted = true;
                run = 0;
            } else if self.is(byte, LETTER) {
                pieces += usize::from(run == 0);
                run += 1;
                longest = longest.max(run);
            } else {
                return false;
            }
            self.put(byte, out, &mut end);
        }
        if !name_token_fits(words, pieces, longest, dotted) {
            return false;
        }
        out.truncate(end);
        words + pieces >= 2
    }

    /// An address that folding leaves as it is (single spaces between
    /// words, nothing `text::fold_cow` would look closer at), appended to
    /// `out` as UTF-8 as it is checked; `false` (and `out` not to be used)
    /// otherwise.
    fn append_plain_address(&self, bytes: &[u8], out: &mut Vec<u8>) -> bool {
        if bytes.len() > MAX_PLAIN_ADDRESS {
            return false;
        }
        let mut end = out.len();
        out.resize(end + bytes.len() * 2, 0);
        let mut previous_space = true;
        for &byte in bytes {
            if byte == b' ' {
                if previous_space {
                    return false;
                }
                previous_space = true;
            } else if self.is(byte, FOLDED) {
                previous_space = false;
            } else {
                return false;
            }
            self.put(byte, out, &mut end);
        }
        out.truncate(end);
        !previous_space || bytes.is_empty()
    }
}

/// A token of a plain name (between spaces) that may stand where it is:
/// not one of no letters (an empty one is a double space or a space at an
/// end), not a dotted word longer than an initial, not a surname that is an
/// initial.
fn name_token_fits(words: usize, pieces: usize, longest: usize, dotted: bool) -> bool {
    !(pieces == 0 || (dotted && longest > 1) || (words == 0 && (dotted || longest < 2)))
}

/// A balance cell in ASCII that reads as an amount; `None` otherwise.
fn plain_balance(bytes: &[u8]) -> Option<Money> {
    // Nearly every balance: read from its bytes, with no UTF-8 check.
    if let Some(balance) = parse_plain_balance(bytes) {
        return balance.ok();
    }
    std::str::from_utf8(bytes).ok().filter(|s| s.is_ascii()).and_then(|s| parse_balance(s).ok())
}

/// What `classify_ref` makes of the record, when the record is plain;
/// `None` sends it down the general path. `text` is the buffer the payer
/// and the address are decoded to.
pub(super) fn classify_plain<'a>(
    page: &CodePage,
    record: Record<'a>,
    columns: &ColumnMap,
    text: &'a mut Vec<u8>,
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
    // The payer and the address decoded end to end as they are checked,
    // then validated as UTF-8 at once (the table makes it valid, but only a
    // check turns bytes into `str` safely).
    text.clear();
    if !page.append_plain_name(record.get(payer)?, text) {
        return None;
    }
    let name_end = text.len();
    if let Some(i) = columns.address {
        if !page.append_plain_address(record.get(i).unwrap_or_default(), text) {
            return None;
        }
    }
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
    let (name, address_text) = simdutf8::basic::from_utf8(text).ok()?.split_at_checked(name_end)?;
    let full_name = FullNameRef::plain(name);
    let address = columns.address.map(|_| Cow::Borrowed(address_text)).filter(|a| !a.is_empty());
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
            let mut decoded = b"before".to_vec();
            let plain = page.append_plain_name(&bytes, &mut decoded);
            prop_assert_eq!(plain, crate::domain::is_plain_russian_name(&text));
            if plain {
                prop_assert_eq!(decoded, [b"before", text.as_bytes()].concat());
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
            let mut decoded = b"before".to_vec();
            if page.append_plain_address(&bytes, &mut decoded) && !lossy {
                prop_assert_eq!(decoded, [b"before", text.as_bytes()].concat());
                prop_assert_eq!(crate::text::fold_cow(&text), std::borrow::Cow::Borrowed(text.as_str()));
            }
        });
    }

    #[test]
    fn the_plain_decoder_decodes_as_encoding_rs_or_leaves_invalid_utf8() {
        for encoding in [WINDOWS_1251, encoding_rs::KOI8_R, encoding_rs::IBM866] {
            let page = CodePage::of(encoding).unwrap();
            for byte in 0..=u8::MAX {
                let single = [byte];
                let decoded = encoding.decode_without_bom_handling(&single).0;
                let mut appended = vec![b'a'; 5];
                let mut end = 1;
                page.put(byte, &mut appended, &mut end);
                page.put(b'b', &mut appended, &mut end);
                appended.truncate(end);
                if decoded.len() == 1 + usize::from(byte >> 7) {
                    assert_eq!(appended, [b"a", decoded.as_bytes(), b"b"].concat(), "{byte:#x}");
                } else {
                    assert!(std::str::from_utf8(&appended).is_err(), "{byte:#x}");
                    assert!(!page.is(byte, LETTER | FOLDED), "{byte:#x}");
                }
            }
        }
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
        let mut text = Vec::new();
        let Some(RowOutcomeRef::Account { account, warnings }) =
            classify_plain(&page, Record::new(&bytes, &ends), &columns, &mut text)
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
            assert!(classify_plain(&page, record, &columns, &mut text).is_none(), "{odd:?}");
        }
    }
}
