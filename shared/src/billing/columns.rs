//! Which column of a billing export holds what, found by its header.

use std::borrow::Cow;

use crate::text;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Account,
    FullName,
    Address,
    Balance,
    /// The payer's name split over three columns, as some 1C forms print it.
    Surname,
    GivenName,
    Patronymic,
}

impl Column {
    /// The column's name in reports.
    pub fn label(self) -> &'static str {
        match self {
            Column::Account => "Лицевой счёт",
            Column::FullName => "ФИО",
            Column::Address => "Адрес",
            Column::Balance => "Сальдо",
            Column::Surname => "Фамилия",
            Column::GivenName => "Имя",
            Column::Patronymic => "Отчество",
        }
    }
}

/// Header spellings, already folded by [`header_key`].
const HEADERS: &[(Column, &[&str])] = &[
    (
        Column::Account,
        &[
            "лицевойсчет",
            "лс",
            "номерлс",
            "account",
            "номерлицевогосчета",
            "лицсчет",
            "лицевойсчетабонента",
            "номерлицевогосчет",
            "лсч",
            "лсчет",
            "лицсч",
        ],
    ),
    (
        Column::FullName,
        &[
            "фио",
            "плательщик",
            "собственник",
            "фиоплательщика",
            "фиособственника",
            "fullname",
            "абонент",
            "фиоабонента",
            "владелец",
            "фиовладельца",
            "фионанимателя",
            "наниматель",
        ],
    ),
    (Column::Address, &["адрес", "address", "адреспомещения", "адресобъекта", "адресквартиры"]),
    (
        Column::Balance,
        &[
            "сальдо",
            "задолженность",
            "долг",
            "коплате",
            "balance",
            "сальдонаконец",
            "сальдонаконецпериода",
            "сальдоконечное",
            "исходящеесальдо",
            "суммакоплате",
            "итогокоплате",
        ],
    ),
    (Column::Surname, &["фамилия"]),
    (Column::GivenName, &["имя"]),
    (Column::Patronymic, &["отчество"]),
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

/// Beginnings of balance headers that go on with a date or a period
/// («Сальдо на 01.11.2026», «Задолженность на конец месяца»).
const BALANCE_PREFIXES: [&str; 3] = ["сальдо", "задолженность", "коплате"];

/// The column a header names, if any.
pub fn column_of(header: &str) -> Option<Column> {
    let key = header_key(header);
    let exact = HEADERS.iter().find(|(_, names)| names.contains(&key.as_str())).map(|(column, _)| *column);
    exact.or_else(|| {
        // The opening balance is not the balance.
        let opening = key.contains("начал") || key.contains("входящ");
        (!opening && BALANCE_PREFIXES.iter().any(|p| key.starts_with(p))).then_some(Column::Balance)
    })
}

/// Where the payer's name is: one column, or surname, given name and
/// (optionally) patronymic in columns of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayerColumns {
    Whole(usize),
    Parts { surname: usize, given_name: usize, patronymic: Option<usize> },
}

impl PayerColumns {
    /// The payer's name of a row: the parts joined with spaces.
    pub fn text<'a>(&self, cell: impl Fn(usize) -> &'a str) -> Cow<'a, str> {
        match *self {
            PayerColumns::Whole(index) => Cow::Borrowed(cell(index)),
            PayerColumns::Parts { surname, given_name, patronymic } => {
                let mut name = format!("{} {}", cell(surname), cell(given_name));
                if let Some(index) = patronymic {
                    name.push(' ');
                    name.push_str(cell(index));
                }
                Cow::Owned(name)
            }
        }
    }

    pub fn indexes(&self) -> Vec<usize> {
        match *self {
            PayerColumns::Whole(index) => vec![index],
            PayerColumns::Parts { surname, given_name, patronymic } => {
                [Some(surname), Some(given_name), patronymic].into_iter().flatten().collect()
            }
        }
    }
}

/// Where each known column is in a header row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnMap {
    pub account: usize,
    pub payer: PayerColumns,
    pub address: Option<usize>,
    pub balance: Option<usize>,
    /// In a turnover statement (ОСВ) the balance is split into «Дебет»
    /// (owed) and «Кредит» (overpaid): this is the credit column, and the
    /// balance is debit minus credit.
    pub balance_credit: Option<usize>,
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

impl MissingColumns {
    /// How many of the two required columns the row has.
    pub fn found(&self) -> usize {
        usize::from(!self.account) + usize::from(!self.full_name)
    }
}

impl ColumnMap {
    pub fn from_header(header: &[String]) -> Result<Self, MissingColumns> {
        let mut found: [Option<(usize, &str)>; 7] = [None; 7];
        for (index, name) in header.iter().enumerate() {
            let slot = column_of(name).map(|c| match c {
                Column::Account => 0,
                Column::FullName => 1,
                Column::Address => 2,
                Column::Balance => 3,
                Column::Surname => 4,
                Column::GivenName => 5,
                Column::Patronymic => 6,
            });
            if let Some(cell @ None) = slot.and_then(|slot| found.get_mut(slot)) {
                *cell = Some((index, name.as_str()));
            }
        }
        let [account, whole, address, balance, surname, given_name, patronymic] = found;
        let payer = match (whole, surname, given_name) {
            (Some((index, _)), _, _) => Some(PayerColumns::Whole(index)),
            (None, Some((surname, _)), Some((given_name, _))) => {
                Some(PayerColumns::Parts { surname, given_name, patronymic: patronymic.map(|(i, _)| i) })
            }
            _ => None,
        };
        let (Some((account, _)), Some(payer)) = (account, payer) else {
            return Err(MissingColumns { account: account.is_none(), full_name: payer.is_none() });
        };
        let mut used = vec![account];
        used.extend(payer.indexes());
        used.extend(address.map(|(i, _)| i));
        used.extend(balance.map(|(i, _)| i));
        let mut recognized = Vec::new();
        let mut ignored = Vec::new();
        for (index, name) in header.iter().enumerate() {
            // As written, on one line (a wrapped header cell holds a line break).
            let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
            if used.contains(&index) {
                recognized.push(name);
            } else if !name.is_empty() {
                ignored.push(name);
            }
        }
        Ok(Self {
            account,
            payer,
            address: address.map(|(i, _)| i),
            balance: balance.map(|(i, _)| i),
            balance_credit: None,
            recognized,
            ignored,
        })
    }

    /// The widest column index used, so that short rows can be told.
    pub fn width(&self) -> usize {
        let mut used = vec![self.account];
        used.extend(self.payer.indexes());
        used.extend(self.address);
        used.extend(self.balance);
        used.into_iter().max().unwrap_or(0) + 1
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
                assert_eq!((map.account, map.payer), (0, PayerColumns::Whole(1)), "{account} / {name}");
            }
        }
        for balance in [
            "Сальдо",
            "Задолженность",
            "Долг",
            "К оплате",
            "balance",
            "Сальдо на 01.11.2026",
            "Задолженность на конец месяца",
        ] {
            let map = ColumnMap::from_header(&headers(&["ЛС", "ФИО", "Адрес", balance])).unwrap();
            assert_eq!((map.address, map.balance), (Some(2), Some(3)), "{balance}");
        }
    }

    #[test]
    fn the_opening_balance_is_not_the_balance() {
        assert_eq!(column_of("Сальдо на начало периода"), None);
        assert_eq!(column_of("Входящее сальдо"), None);
        assert_eq!(column_of("Л/сч"), Some(Column::Account));
    }

    #[test]
    fn lists_ignored_columns() {
        let map = ColumnMap::from_header(&headers(&["№", "ЛС", "ФИО", "Площадь", ""])).unwrap();
        assert_eq!(map.ignored, ["№", "Площадь"]);
        assert_eq!(map.recognized, ["ЛС", "ФИО"]);
    }

    #[test]
    fn a_name_in_three_columns_is_one_payer() {
        let map = ColumnMap::from_header(&headers(&["Л/с", "Фамилия", "Имя", "Отчество", "Адрес"])).unwrap();
        assert_eq!(map.payer, PayerColumns::Parts { surname: 1, given_name: 2, patronymic: Some(3) });
        let cells = ["1", "Иванов", "Иван", "Иванович"];
        assert_eq!(map.payer.text(|i| cells.get(i).copied().unwrap_or("")), "Иванов Иван Иванович");
        let no_patronymic = ColumnMap::from_header(&headers(&["ЛС", "Имя", "Фамилия"])).unwrap();
        assert_eq!(no_patronymic.payer, PayerColumns::Parts { surname: 2, given_name: 1, patronymic: None });
        assert_eq!(
            ColumnMap::from_header(&headers(&["ЛС", "Фамилия"])).unwrap_err(),
            MissingColumns { account: false, full_name: true }
        );
    }

    #[test]
    fn reports_missing_columns() {
        assert_eq!(
            ColumnMap::from_header(&headers(&["ФИО", "Адрес"])).unwrap_err(),
            MissingColumns { account: true, full_name: false }
        );
    }
}
