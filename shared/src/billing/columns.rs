//! Which column of a billing export holds what, found by its header.

use crate::text;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Account,
    FullName,
    Address,
    Balance,
}

impl Column {
    /// The column's name in reports.
    pub fn label(self) -> &'static str {
        match self {
            Column::Account => "Лицевой счёт",
            Column::FullName => "ФИО",
            Column::Address => "Адрес",
            Column::Balance => "Сальдо",
        }
    }
}

/// Header spellings, already folded by [`header_key`].
const HEADERS: &[(Column, &[&str])] = &[
    (Column::Account, &["лицевойсчет", "лс", "номерлс", "account", "номерлицевогосчета"]),
    (Column::FullName, &["фио", "плательщик", "собственник", "фиоплательщика", "фиособственника", "fullname"]),
    (Column::Address, &["адрес", "address"]),
    (Column::Balance, &["сальдо", "задолженность", "долг", "коплате", "balance"]),
];

/// A header as compared: folded, lower case, ё = е, letters and digits only
/// (so "Л/С", " ФИО плательщика: " and "full_name" all match).
pub fn header_key(header: &str) -> String {
    text::fold(header)
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| if c == 'ё' { 'е' } else { c })
        .filter(|c| c.is_alphanumeric())
        .collect()
}

fn column_of(header: &str) -> Option<Column> {
    let key = header_key(header);
    HEADERS.iter().find(|(_, names)| names.contains(&key.as_str())).map(|(column, _)| *column)
}

/// Where each known column is in a header row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnMap {
    pub account: usize,
    pub full_name: usize,
    pub address: Option<usize>,
    pub balance: Option<usize>,
    /// Headers recognized, as written in the file.
    pub recognized: Vec<String>,
    /// Headers not used, as written in the file.
    pub ignored: Vec<String>,
}

/// What a header row lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissingColumns {
    pub account: bool,
    pub full_name: bool,
}

impl ColumnMap {
    pub fn from_header(header: &[String]) -> Result<Self, MissingColumns> {
        let mut found: [Option<usize>; 4] = [None; 4];
        let mut recognized = Vec::new();
        let mut ignored = Vec::new();
        for (index, name) in header.iter().enumerate() {
            let slot = column_of(name).map(|c| match c {
                Column::Account => 0,
                Column::FullName => 1,
                Column::Address => 2,
                Column::Balance => 3,
            });
            match slot.and_then(|slot| found.get_mut(slot)) {
                Some(cell @ None) => {
                    *cell = Some(index);
                    recognized.push(name.trim().to_owned());
                }
                _ if !name.trim().is_empty() => ignored.push(name.trim().to_owned()),
                _ => {}
            }
        }
        let [account, full_name, address, balance] = found;
        match (account, full_name) {
            (Some(account), Some(full_name)) => Ok(Self { account, full_name, address, balance, recognized, ignored }),
            (account, full_name) => Err(MissingColumns { account: account.is_none(), full_name: full_name.is_none() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn recognizes_every_documented_spelling() {
        for account in ["Лицевой счет", "Лицевой счёт", "ЛС", "Л/С", "Номер ЛС", "account", " лицевой  СЧЁТ "]
        {
            for name in ["ФИО", "Плательщик", "Собственник", "ФИО плательщика", "ФИО собственника", "full_name"]
            {
                let map = ColumnMap::from_header(&headers(&[account, name])).unwrap();
                assert_eq!((map.account, map.full_name), (0, 1), "{account} / {name}");
            }
        }
        for balance in ["Сальдо", "Задолженность", "Долг", "К оплате", "balance"] {
            let map = ColumnMap::from_header(&headers(&["ЛС", "ФИО", "Адрес", balance])).unwrap();
            assert_eq!((map.address, map.balance), (Some(2), Some(3)), "{balance}");
        }
    }

    #[test]
    fn lists_ignored_columns() {
        let map = ColumnMap::from_header(&headers(&["№", "ЛС", "ФИО", "Площадь", ""])).unwrap();
        assert_eq!(map.ignored, ["№", "Площадь"]);
        assert_eq!(map.recognized, ["ЛС", "ФИО"]);
    }

    #[test]
    fn reports_missing_columns() {
        assert_eq!(
            ColumnMap::from_header(&headers(&["ФИО", "Адрес"])).unwrap_err(),
            MissingColumns { account: true, full_name: false }
        );
    }
}
