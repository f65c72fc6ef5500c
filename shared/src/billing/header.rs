//! Finding the header row of an export: after title rows, possibly over two
//! rows (a merged «Плательщик» above «Фамилия | Имя | Отчество», or a header
//! wrapped onto a second row).

use super::columns::{ColumnMap, MissingColumns, column_of};
use super::rows::RawRow;
use crate::domain::AccountNumber;

/// Rows searched for the header (1C exports start with a title block).
pub const HEADER_SEARCH_ROWS: usize = 20;

/// The header of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The line of the (last) header row: data starts after it.
    pub line: u64,
    pub columns: ColumnMap,
    /// How many cells the header row has.
    pub cells: usize,
}

/// What the first rows of a table say about its header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderSearch {
    Found(Header),
    /// A row names one of the two required columns but not the other.
    Partial(MissingColumns),
    NotFound,
}

/// Looks for the header among `rows` (the first non-blank rows of a table).
pub fn find_header(rows: &[RawRow]) -> HeaderSearch {
    let mut partial: Option<MissingColumns> = None;
    for (index, row) in rows.iter().enumerate().take(HEADER_SEARCH_ROWS) {
        let single = ColumnMap::from_header(&row.cells);
        // A second header row under this one (sub-columns of a merged cell,
        // or the rest of wrapped titles) is read together with it.
        // A title row above a complete header is not part of it.
        let merge_with = rows
            .get(index + 1)
            .filter(|next| (single.is_err() || names_a_column(next)) && ColumnMap::from_header(&next.cells).is_err());
        if let Some(next) = merge_with {
            let merged = merge(row, next);
            if let Ok(columns) = ColumnMap::from_header(&merged) {
                // Under a complete header, a row is a second header row only
                // if it names more columns and holds no account number: a
                // data row whose address is "Адрес" is still data.
                let better = match &single {
                    Ok(alone) => {
                        columns.recognized.len() > alone.recognized.len()
                            && next.cells.get(alone.account).is_none_or(|c| AccountNumber::parse(c).is_err())
                    }
                    Err(_) => true,
                };
                if better {
                    return HeaderSearch::Found(Header { line: next.line, columns, cells: merged.len() });
                }
            }
        }
        match single {
            Ok(mut columns) => {
                // «Сальдо на конец периода» over «Дебет | Кредит», as 1C's
                // turnover statement prints it.
                let split = columns.balance.zip(rows.get(index + 1)).filter(|(at, next)| {
                    is_word(next.cells.get(*at), "дебет") && is_word(next.cells.get(at + 1), "кредит")
                });
                if let Some((at, next)) = split {
                    columns.balance_credit = Some(at + 1);
                    return HeaderSearch::Found(Header { line: next.line, columns, cells: row.cells.len() });
                }
                return HeaderSearch::Found(Header { line: row.line, columns, cells: row.cells.len() });
            }
            Err(missing) if missing.found() > 0 => super::source::keep_most_complete(&mut partial, missing),
            Err(_) => {}
        }
    }
    partial.map_or(HeaderSearch::NotFound, HeaderSearch::Partial)
}

fn is_word(cell: Option<&String>, word: &str) -> bool {
    cell.is_some_and(|c| super::columns::header_key(c) == word)
}

fn names_a_column(row: &RawRow) -> bool {
    row.cells.iter().any(|cell| column_of(cell).is_some())
}

/// Two header rows as one: per column the lower name when it is a known
/// one, else the upper, else both joined ("Лицевой" over "счёт").
fn merge(upper: &RawRow, lower: &RawRow) -> Vec<String> {
    let width = upper.cells.len().max(lower.cells.len());
    (0..width)
        .map(|index| {
            let above = upper.cells.get(index).map_or("", |s| s.trim());
            let below = lower.cells.get(index).map_or("", |s| s.trim());
            let joined = format!("{above} {below}").trim().to_owned();
            if column_of(below).is_some() {
                below.to_owned()
            } else if column_of(above).is_some() {
                above.to_owned()
            } else {
                joined
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::columns::PayerColumns;

    fn rows(lines: &[&[&str]]) -> Vec<RawRow> {
        lines
            .iter()
            .enumerate()
            .map(|(i, cells)| RawRow { line: i as u64 + 1, cells: cells.iter().map(|s| s.to_string()).collect() })
            .collect()
    }

    fn found(search: HeaderSearch) -> Header {
        match search {
            HeaderSearch::Found(header) => header,
            other => panic!("no header: {other:?}"),
        }
    }

    #[test]
    fn the_header_follows_title_rows() {
        let header = found(find_header(&rows(&[
            &["Выгрузка лицевых счетов", "", ""],
            &["ООО «Потенциал», на 01.11.2026"],
            &["Л/С", "ФИО плательщика", "Адрес"],
            &["1", "Иванов Иван Иванович", "г. Тверь"],
        ])));
        assert_eq!((header.line, header.columns.account, header.columns.address), (3, 0, Some(2)));
    }

    #[test]
    fn a_merged_payer_over_three_name_columns() {
        let header = found(find_header(&rows(&[
            &["Лицевой счёт", "Плательщик", "", "", "Адрес"],
            &["", "Фамилия", "Имя", "Отчество", ""],
            &["1", "Иванов", "Иван", "Иванович", "г. Тверь"],
        ])));
        assert_eq!(header.line, 2);
        assert_eq!(header.columns.payer, PayerColumns::Parts { surname: 1, given_name: 2, patronymic: Some(3) });
        assert_eq!(header.columns.address, Some(4));
    }

    #[test]
    fn a_header_wrapped_onto_two_rows() {
        let header = found(find_header(&rows(&[
            &["Лицевой", "ФИО", "Сальдо на"],
            &["счёт", "", "конец периода"],
            &["1", "Иванов Иван Иванович", "10"],
        ])));
        assert_eq!((header.line, header.columns.account, header.columns.balance), (2, 0, Some(2)));
    }

    #[test]
    fn a_data_row_is_not_taken_for_a_second_header_row() {
        let header = found(find_header(&rows(&[&["ЛС", "ФИО"], &["1", "Иванов Иван Иванович"]])));
        assert_eq!(header.line, 1);
    }

    #[test]
    fn a_data_row_holding_a_header_word_stays_data() {
        let header = found(find_header(&rows(&[&["ЛС", "ФИО", "Адрес"], &["1", "Иванов Иван Иванович", "Адрес"]])));
        assert_eq!(header.line, 1);
    }

    #[test]
    fn a_turnover_statement_splits_the_balance_into_debit_and_credit() {
        let header = found(find_header(&rows(&[
            &["Лицевой счет", "Абонент", "Сальдо на начало периода", "", "Сальдо на конец периода", ""],
            &["", "", "Дебет", "Кредит", "Дебет", "Кредит"],
            &["1", "Иванов Иван Иванович", "", "100,00", "", "150,00"],
        ])));
        assert_eq!(header.line, 2);
        assert_eq!((header.columns.balance, header.columns.balance_credit), (Some(4), Some(5)));
    }

    #[test]
    fn partial_and_missing_headers() {
        assert_eq!(
            find_header(&rows(&[&["Выгрузка"], &["ФИО", "Адрес"], &["Иванов И. И.", "Тверь"]])),
            HeaderSearch::Partial(MissingColumns { account: true, full_name: false })
        );
        assert_eq!(find_header(&rows(&[&["1", "Иванов И. И."]])), HeaderSearch::NotFound);
    }
}
