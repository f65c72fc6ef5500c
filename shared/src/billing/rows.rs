//! One row of a billing export, checked with the same domain types that
//! registration uses.

use time::OffsetDateTime;

use super::columns::{Column, ColumnMap};
use crate::domain::{AccountNumber, AccountNumberError, BillingAccount, FullName, Money};
use crate::text;

/// A row as read: its line in the file and its cells as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRow {
    pub line: u64,
    pub cells: Vec<String>,
}

/// Why a row was not loaded, for the rejected-rows report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRow {
    pub line: u64,
    pub column: Option<Column>,
    pub reason: String,
    /// The offending cell as it was in the file.
    pub value: String,
}

/// A balance cell that is not a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not an amount of money")]
pub struct NotAnAmount;

/// `1 234,56`, `-150.00`, `0`, `1 234 руб.` → kopecks. Empty is `None`.
pub fn parse_balance(input: &str) -> Result<Option<Money>, NotAnAmount> {
    let folded = text::fold(input);
    let mut cleaned: String = folded
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '\'')
        .map(|c| if matches!(c, '−' | '–' | '—') { '-' } else { c })
        .collect();
    for suffix in ["руб.", "руб", "р.", "₽"] {
        if let Some(stripped) = cleaned.strip_suffix(suffix) {
            cleaned = stripped.to_owned();
        }
    }
    if cleaned.is_empty() {
        return Ok(None);
    }
    let (negative, digits) = match cleaned.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, cleaned.as_str()),
    };
    let (whole, fraction) = match digits.rsplit_once([',', '.']) {
        Some((whole, fraction)) => (whole, fraction),
        None => (digits, ""),
    };
    let plain = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty() || !plain(whole) || !plain(fraction) || fraction.len() > 2 {
        return Err(NotAnAmount);
    }
    let rubles: i64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| NotAnAmount)? };
    let kopecks: i64 = match fraction.len() {
        0 => 0,
        1 => fraction.parse::<i64>().map_err(|_| NotAnAmount)? * 10,
        _ => fraction.parse().map_err(|_| NotAnAmount)?,
    };
    let total = rubles.checked_mul(100).and_then(|r| r.checked_add(kopecks)).ok_or(NotAnAmount)?;
    Ok(Some(Money(if negative { -total } else { total })))
}

fn cell(row: &RawRow, index: usize) -> &str {
    row.cells.get(index).map_or("", String::as_str)
}

fn reject(row: &RawRow, column: Column, reason: &str, value: &str) -> RejectedRow {
    RejectedRow { line: row.line, column: Some(column), reason: reason.to_owned(), value: value.to_owned() }
}

/// True for a row with nothing in it (skipped, not reported).
pub fn is_blank(row: &RawRow) -> bool {
    row.cells.iter().all(|c| text::fold(c).is_empty())
}

/// The account of a row, or why it cannot be loaded.
pub fn validate(row: &RawRow, columns: &ColumnMap, loaded_at: OffsetDateTime) -> Result<BillingAccount, RejectedRow> {
    let account_text = cell(row, columns.account);
    let account = AccountNumber::parse(account_text).map_err(|e| match e {
        AccountNumberError::Empty => reject(row, Column::Account, "Не указан лицевой счёт.", account_text),
        AccountNumberError::NotDigits => {
            reject(row, Column::Account, "В лицевом счёте есть символы, кроме цифр.", account_text)
        }
        AccountNumberError::TooLong => reject(row, Column::Account, "Лицевой счёт длиннее 20 цифр.", account_text),
    })?;
    let name_text = cell(row, columns.full_name);
    if text::fold(name_text).is_empty() {
        return Err(reject(row, Column::FullName, "Не указано ФИО плательщика.", name_text));
    }
    let full_name = FullName::parse(name_text).map_err(|_| {
        reject(
            row,
            Column::FullName,
            "ФИО не похоже на фамилию с именем (и отчеством или инициалами): проверьте буквы и порядок слов.",
            name_text,
        )
    })?;
    let address = columns.address.map(|i| text::fold(cell(row, i))).filter(|a| !a.is_empty());
    let balance = match columns.balance {
        Some(i) => parse_balance(cell(row, i)).map_err(|NotAnAmount| {
            reject(row, Column::Balance, "Сальдо не число: ожидается, например, 1 234,56 или -150.00.", cell(row, i))
        })?,
        None => None,
    };
    Ok(BillingAccount { account, full_name, address, balance, updated_at: loaded_at })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balances_as_billing_programs_write_them() {
        let cases = [
            ("1 234,56", Some(123456)),
            ("1\u{a0}234,56", Some(123456)),
            ("-150.00", Some(-15000)),
            ("−150,5", Some(-15050)),
            ("0", Some(0)),
            ("12", Some(1200)),
            ("1 234 руб.", Some(123400)),
            ("", None),
            ("  ", None),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_balance(input), Ok(expected.map(Money)), "{input:?}");
        }
        for bad in ["abc", "1,2,3", "12,345", "--5", ",", "1e5"] {
            assert_eq!(parse_balance(bad), Err(NotAnAmount), "{bad:?}");
        }
    }

    fn columns() -> ColumnMap {
        ColumnMap::from_header(&["ЛС".into(), "ФИО".into(), "Адрес".into(), "Сальдо".into()]).unwrap()
    }

    fn row(cells: &[&str]) -> RawRow {
        RawRow { line: 7, cells: cells.iter().map(|s| s.to_string()).collect() }
    }

    #[test]
    fn a_good_row_becomes_a_billing_account() {
        let account =
            validate(&row(&["00 123", "Иванов И.И.", " ул. Садовая ", "10,5"]), &columns(), OffsetDateTime::UNIX_EPOCH)
                .unwrap();
        assert_eq!(account.account.as_str(), "123");
        assert_eq!(account.address.as_deref(), Some("ул. Садовая"));
        assert_eq!(account.balance, Some(Money(1050)));
    }

    #[test]
    fn each_bad_row_reason_names_its_column() {
        let cases = [
            (row(&["", "Иванов И.И.", "", ""]), Column::Account),
            (row(&["12a", "Иванов И.И.", "", ""]), Column::Account),
            (row(&["123", "", "", ""]), Column::FullName),
            (row(&["123", "Иванов", "", ""]), Column::FullName),
            (row(&["123", "Иванов И.И.", "", "много"]), Column::Balance),
        ];
        for (row, column) in cases {
            let rejected = validate(&row, &columns(), OffsetDateTime::UNIX_EPOCH).unwrap_err();
            assert_eq!((rejected.line, rejected.column), (7, Some(column)), "{row:?}");
            assert!(!rejected.reason.is_empty());
        }
    }
}
