//! One row of a billing export, checked with the same domain types that
//! registration uses.

use std::borrow::Cow;

use time::OffsetDateTime;

use super::cells::{MangledAccount, NotAnAmount, account_text, parse_balance};
use super::columns::{Column, ColumnMap, column_of};
use crate::domain::{
    AccountNumber, AccountNumberError, AccountNumberRef, BillingAccount, FullName, FullNameRef, Money,
};
use crate::text;

/// A row as read: its line in the file and its cells as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRow {
    pub line: u64,
    pub cells: Vec<String>,
}

/// A row not loaded, or loaded with a part left out, for the reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowProblem {
    pub line: u64,
    pub column: Option<Column>,
    pub reason: String,
    /// The offending cell as it was in the file.
    pub value: String,
}

/// The longest text a cell may hold: Excel's own limit.
pub const MAX_CELL_CHARS: usize = 32_767;
/// The longest address kept; a longer one is not an address.
const MAX_ADDRESS_CHARS: usize = 1_000;

/// What a data row (a row after the header) turns out to be.
#[derive(Debug, Clone)]
pub enum RowOutcome {
    /// An account to load, with what of its optional cells could not be read.
    Account {
        account: BillingAccount,
        warnings: Vec<RowProblem>,
    },
    /// Not an account row: blank, a total or subtotal, a group heading, a
    /// signature, the header repeated on a new page.
    Skipped,
    Rejected(RowProblem),
}

fn cell(row: &RawRow, index: usize) -> &str {
    row.cells.get(index).map_or("", String::as_str)
}

fn problem(row: &RawRow, column: Column, reason: &str, value: &str) -> RowProblem {
    let value: String = value.chars().take(200).collect();
    RowProblem { line: row.line, column: Some(column), reason: reason.to_owned(), value }
}

/// True for a row with nothing in it.
pub fn is_blank(row: &RawRow) -> bool {
    row.cells.iter().all(|c| c.trim().is_empty() || text::fold_cow(c).is_empty())
}

/// First words that mark totals and subtotals in 1C and Excel reports.
const TOTAL_MARKERS: [&str; 7] = ["итого", "итог", "всего", "подытог", "промежуточный", "total", "subtotal"];

/// A total or subtotal row: its first filled cell starts with a total word
/// («Итого», «Всего по дому …»).
fn is_total(row: &RawRow) -> bool {
    let Some(first) = row.cells.iter().find(|c| !c.trim().is_empty()) else {
        return false;
    };
    // Most rows start with the account number: no folding needed for them.
    if starts_with_digit(first) {
        return false;
    }
    let first = text::fold(first);
    let word: String = first.chars().take_while(|c| c.is_alphabetic()).flat_map(char::to_lowercase).collect();
    TOTAL_MARKERS.contains(&word.as_str())
}

/// The header again (or one of its rows), as printed forms repeat it on
/// every page: every filled cell names a column.
fn is_header_again(row: &RawRow) -> bool {
    let mut filled = row.cells.iter().filter(|c| !c.trim().is_empty()).peekable();
    filled.peek().is_some() && filled.all(|c| !starts_with_digit(c) && column_of(c).is_some())
}

fn starts_with_digit(cell: &str) -> bool {
    cell.trim_start().starts_with(|c: char| c.is_ascii_digit())
}

/// The row of column numbers under the header of 1C's printed forms:
/// `1 | 2 | 3 | 4`.
fn is_column_numbers(row: &RawRow) -> bool {
    // Counted as it goes, so a row whose first filled cell is not `1` (every
    // account row) is told apart without collecting its cells.
    let mut filled = 0;
    for cell in row.cells.iter().map(|c| c.trim()).filter(|c| !c.is_empty()) {
        filled += 1;
        if cell.parse::<usize>().ok() != Some(filled) {
            return false;
        }
    }
    filled >= 3
}

/// An account row's values as [`classify`] keeps them, borrowed from the
/// row where they needed no change: what the first pass of an import needs,
/// without building a [`BillingAccount`].
#[derive(Debug, Clone)]
pub struct AccountRef<'a> {
    pub account: AccountNumberRef<'a>,
    pub full_name: FullNameRef<'a>,
    pub address: Option<Cow<'a, str>>,
    pub balance: Option<Money>,
}

impl AccountRef<'_> {
    pub fn into_owned(self, loaded_at: OffsetDateTime) -> BillingAccount {
        BillingAccount {
            account: self.account.into_owned(),
            full_name: self.full_name.into_owned(),
            address: self.address.map(Cow::into_owned),
            balance: self.balance,
            updated_at: loaded_at,
        }
    }
}

/// [`RowOutcome`] with the account borrowed (see [`classify_ref`]).
#[derive(Debug, Clone)]
pub enum RowOutcomeRef<'a> {
    Account { account: AccountRef<'a>, warnings: Vec<RowProblem> },
    Skipped,
    Rejected(RowProblem),
}

impl RowOutcomeRef<'_> {
    pub fn into_owned(self, loaded_at: OffsetDateTime) -> RowOutcome {
        match self {
            RowOutcomeRef::Account { account, warnings } => {
                RowOutcome::Account { account: account.into_owned(loaded_at), warnings }
            }
            RowOutcomeRef::Skipped => RowOutcome::Skipped,
            RowOutcomeRef::Rejected(problem) => RowOutcome::Rejected(problem),
        }
    }
}

/// Sorts a data row into an account, a skipped row or a rejected one. The
/// account and the payer go through the same `AccountNumber` and `FullName`
/// types as registration; an unreadable address or balance does not keep
/// the account out, it is left empty and reported as a warning.
pub fn classify(row: &RawRow, columns: &ColumnMap, loaded_at: OffsetDateTime) -> RowOutcome {
    classify_ref(row, columns).into_owned(loaded_at)
}

/// The payer's name as folded text, borrowed from the row when folding
/// leaves it as it is.
fn payer_text<'a>(row: &'a RawRow, columns: &ColumnMap) -> Cow<'a, str> {
    match columns.payer.text(|i| cell(row, i)) {
        Cow::Borrowed(name) => text::fold_cow(name),
        Cow::Owned(name) => Cow::Owned(text::fold(&name)),
    }
}

/// [`classify`], borrowing from the row what needs no change.
pub fn classify_ref<'a>(row: &'a RawRow, columns: &ColumnMap) -> RowOutcomeRef<'a> {
    if is_blank(row) || is_total(row) {
        return RowOutcomeRef::Skipped;
    }
    let account_cell = cell(row, columns.account);
    if is_header_again(row) || is_column_numbers(row) {
        return RowOutcomeRef::Skipped;
    }
    let name_text = payer_text(row, columns);
    let account = account_text(account_cell)
        .map_err(|mangled| {
            let reason = match mangled {
                MangledAccount::Exponent => {
                    "Excel записал номер в виде 1,23E+08, и цифры могли потеряться. Задайте столбцу формат «Текстовый» (или расширьте его) и выгрузите файл снова."
                }
                MangledAccount::Fraction => {
                    "Номер записан как дробное число или с разделителем тысяч, и его нельзя прочитать наверняка. Задайте столбцу формат «Текстовый» и выгрузите файл снова."
                }
            };
            problem(row, Column::Account, reason, account_cell)
        })
        .and_then(|text| {
            let canonical = match text {
                Cow::Borrowed(text) => AccountNumber::canonical(text),
                Cow::Owned(text) => AccountNumber::canonical(&text).map(AccountNumberRef::into_static),
            };
            canonical.map_err(|e| match e {
                AccountNumberError::Empty => problem(row, Column::Account, "Не указан лицевой счёт.", account_cell),
                AccountNumberError::NotDigits => {
                    problem(row, Column::Account, "В лицевом счёте есть символы, кроме цифр.", account_cell)
                }
                AccountNumberError::TooLong => {
                    problem(row, Column::Account, "Лицевой счёт длиннее 20 цифр.", account_cell)
                }
            })
        });
    let account = match account {
        // Neither an account number nor a payer: a group heading ("ул.
        // Ленина, д. 1"), a signature or a page footer, not an account.
        Err(_) if name_text.is_empty() => return RowOutcomeRef::Skipped,
        Err(rejected) => return RowOutcomeRef::Rejected(rejected),
        Ok(account) => account,
    };
    if name_text.is_empty() {
        return RowOutcomeRef::Rejected(problem(row, Column::FullName, "Не указано ФИО плательщика.", &name_text));
    }
    // Bytes bound characters: only a long text needs counting.
    if name_text.len() > MAX_CELL_CHARS && name_text.chars().count() > MAX_CELL_CHARS {
        return RowOutcomeRef::Rejected(problem(row, Column::FullName, "ФИО длиннее 32 767 символов.", &name_text));
    }
    let full_name = match &name_text {
        Cow::Borrowed(name) => FullName::canonical(name),
        Cow::Owned(name) => FullName::canonical(name).map(FullNameRef::into_static),
    };
    let full_name = match full_name {
        Ok(name) => name,
        Err(_) => {
            return RowOutcomeRef::Rejected(problem(
                row,
                Column::FullName,
                "ФИО не похоже на фамилию с именем (и отчеством или инициалами): проверьте буквы и порядок слов.",
                &name_text,
            ));
        }
    };
    let mut warnings = Vec::new();
    let address = columns.address.map(|i| text::fold_cow(cell(row, i))).filter(|a| !a.is_empty());
    let address = match address {
        Some(address) if address.len() > MAX_ADDRESS_CHARS && address.chars().count() > MAX_ADDRESS_CHARS => {
            warnings.push(problem(
                row,
                Column::Address,
                "Адрес длиннее 1 000 символов: счёт загружен без адреса.",
                &address,
            ));
            None
        }
        address => address,
    };
    let read_balance = |i: usize| {
        let debit = parse_balance(cell(row, i))?;
        match columns.balance_credit {
            // An empty cell is zero, so a row with only a credit is negative.
            Some(credit) => Ok(Money(debit.0 - parse_balance(cell(row, credit))?.0)),
            None => Ok(debit),
        }
    };
    let balance = match columns.balance {
        Some(i) => match read_balance(i) {
            Ok(balance) => Some(balance),
            Err(NotAnAmount) => {
                warnings.push(problem(
                    row,
                    Column::Balance,
                    "Сальдо не число (ожидается, например, 1 234,56 или -150.00): счёт загружен без сальдо.",
                    cell(row, i),
                ));
                None
            }
        },
        None => None,
    };
    RowOutcomeRef::Account { account: AccountRef { account, full_name, address, balance }, warnings }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns() -> ColumnMap {
        ColumnMap::from_header(&["ЛС".into(), "ФИО".into(), "Адрес".into(), "Сальдо".into()]).unwrap()
    }

    fn row(cells: &[&str]) -> RawRow {
        RawRow { line: 7, cells: cells.iter().map(|s| s.to_string()).collect() }
    }

    fn classify_cells(cells: &[&str]) -> RowOutcome {
        classify(&row(cells), &columns(), OffsetDateTime::UNIX_EPOCH)
    }

    #[test]
    fn a_good_row_becomes_a_billing_account() {
        let RowOutcome::Account { account, warnings } =
            classify_cells(&["00 123", "Иванов И.И.", " ул. Садовая ", "10,5"])
        else {
            panic!("not loaded");
        };
        assert_eq!(account.account.as_str(), "123");
        assert_eq!(account.address.as_deref(), Some("ул. Садовая"));
        assert_eq!(account.balance, Some(Money(1050)));
        assert!(warnings.is_empty());
    }

    #[test]
    fn excel_numbers_in_the_account_column_are_read_back() {
        for cell in ["100200300.0", "'100200300", "100200300,00", "0100200300"] {
            let RowOutcome::Account { account, .. } = classify_cells(&[cell, "Иванов И.И.", "", ""]) else {
                panic!("{cell:?} not loaded");
            };
            assert_eq!(account.account.as_str(), "100200300", "{cell:?}");
        }
        let RowOutcome::Rejected(rejected) = classify_cells(&["1.002003E+08", "Иванов И.И.", "", ""]) else {
            panic!("a lossy exponent is loaded");
        };
        assert!(rejected.reason.contains("Текстовый"), "{rejected:?}");
    }

    #[test]
    fn each_bad_row_reason_names_its_column() {
        let cases = [
            (row(&["", "Иванов И.И.", "", ""]), Column::Account),
            (row(&["12a", "Иванов И.И.", "", ""]), Column::Account),
            (row(&["123", "", "", ""]), Column::FullName),
            (row(&["123", "Иванов", "", ""]), Column::FullName),
        ];
        for (row, column) in cases {
            let RowOutcome::Rejected(rejected) = classify(&row, &columns(), OffsetDateTime::UNIX_EPOCH) else {
                panic!("{row:?} not rejected");
            };
            assert_eq!((rejected.line, rejected.column), (7, Some(column)), "{row:?}");
            assert!(!rejected.reason.is_empty());
        }
    }

    #[test]
    fn an_unreadable_balance_is_a_warning_not_a_rejection() {
        let RowOutcome::Account { account, warnings } = classify_cells(&["123", "Иванов И.И.", "", "много"])
        else {
            panic!("not loaded");
        };
        assert_eq!(account.balance, None);
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].column, Some(Column::Balance));
        let RowOutcome::Account { account, warnings } = classify_cells(&["123", "Иванов И.И.", "", "-"]) else {
            panic!("not loaded");
        };
        assert_eq!((account.balance, warnings.len()), (Some(Money(0)), 0), "a dash is zero");
    }

    #[test]
    fn a_debit_and_credit_balance_is_debit_minus_credit() {
        let mut columns = columns();
        columns.balance_credit = Some(4);
        for (debit, credit, expected) in [("1 500,00", "", 150000), ("", "250,50", -25050), ("10", "4", 600)] {
            let cells = ["123", "Иванов И.И.", "", debit, credit];
            let RowOutcome::Account { account, .. } = classify(&row(&cells), &columns, OffsetDateTime::UNIX_EPOCH)
            else {
                panic!("not loaded");
            };
            assert_eq!(account.balance, Some(Money(expected)), "{debit:?} {credit:?}");
        }
    }

    #[test]
    fn totals_group_headings_and_repeated_headers_are_skipped() {
        for cells in [
            &["", "", "", ""][..],
            &["Итого", "", "", "12 345,67"],
            &["", "Итого по дому: ул. Ленина, д. 1", "", "1 000,00"],
            &["ВСЕГО:", "", "", "5"],
            &["", "", "ул. Ленина, д. 1", ""],
            &["Главный бухгалтер", "", "", ""],
            &["ЛС", "ФИО", "Адрес", "Сальдо"],
            &["", "ФИО", "", ""],
            &["1", "2", "3", "4"],
        ] {
            assert!(matches!(classify_cells(cells), RowOutcome::Skipped), "{cells:?}");
        }
        assert!(matches!(classify_cells(&["123", "Итогов Иван Иванович", "", ""]), RowOutcome::Account { .. }));
    }
}
