//! What the billing program knows about an account.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{AccountNumber, FullName};

/// An amount in kopecks; positive means the resident owes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Money(pub i64);

impl Money {
    /// Rubles as a JSON number: exact in its decimal form for any balance
    /// under 2^53 kopecks (some 90 trillion rubles).
    pub fn rubles(self) -> f64 {
        self.0 as f64 / 100.0
    }
}

impl fmt::Display for Money {
    /// `1 234,56 ₽`, as on a Russian bill.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "−" } else { "" };
        let abs = self.0.unsigned_abs();
        let rubles = (abs / 100).to_string();
        let mut grouped = String::new();
        for (i, c) in rubles.chars().enumerate() {
            if i > 0 && (rubles.len() - i) % 3 == 0 {
                grouped.push('\u{00A0}');
            }
            grouped.push(c);
        }
        write!(f, "{sign}{grouped},{:02}\u{00A0}₽", abs % 100)
    }
}

/// A balance as the account page says it: what the amount is and the
/// amount without a sign, so a resident need not know which sign means a
/// debt («Сальдо −150,00 ₽» did not say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceLine {
    /// «К оплате» or «Переплата».
    pub label: &'static str,
    pub value: String,
}

impl BalanceLine {
    /// The line for a balance from the billing data: positive is owed
    /// (a turnover statement's closing balance is debit minus credit, and
    /// columns named «Задолженность», «Долг» or «К оплате» are read as the
    /// balance), negative is an overpayment, zero is nothing owed; without a
    /// balance in the data, it says so.
    pub fn of(balance: Option<Money>) -> Self {
        match balance {
            None => Self { label: "К оплате", value: "нет в данных начислений".to_owned() },
            Some(Money(0)) => {
                Self { label: "К оплате", value: format!("{}, задолженности нет", Money(0)) }
            }
            Some(Money(owed)) if owed > 0 => Self { label: "К оплате", value: Money(owed).to_string() },
            Some(Money(overpaid)) => {
                Self { label: "Переплата", value: Money(overpaid.saturating_abs()).to_string() }
            }
        }
    }
}

/// One account of the billing data: the payer and, when the export has
/// them, the address and the balance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BillingAccount {
    pub account: AccountNumber,
    pub full_name: FullName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance: Option<Money>,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_prints_as_on_a_bill() {
        assert_eq!(Money(123456).to_string(), "1\u{a0}234,56\u{a0}₽");
        assert_eq!(Money(-15000).to_string(), "−150,00\u{a0}₽");
        assert_eq!(Money(5).to_string(), "0,05\u{a0}₽");
        assert_eq!(Money(100_000_000).to_string(), "1\u{a0}000\u{a0}000,00\u{a0}₽");
    }

    #[test]
    fn the_account_page_says_whether_the_resident_owes_or_is_owed() {
        for (balance, label, value) in [
            (Some(345067), "К оплате", "3\u{a0}450,67\u{a0}₽"),
            (Some(1), "К оплате", "0,01\u{a0}₽"),
            (Some(0), "К оплате", "0,00\u{a0}₽, задолженности нет"),
            (Some(-1), "Переплата", "0,01\u{a0}₽"),
            (Some(-15000), "Переплата", "150,00\u{a0}₽"),
            (Some(i64::MIN), "Переплата", "92\u{a0}233\u{a0}720\u{a0}368\u{a0}547\u{a0}758,07\u{a0}₽"),
            (None, "К оплате", "нет в данных начислений"),
        ] {
            let line = BalanceLine::of(balance.map(Money));
            assert_eq!((line.label, line.value.as_str()), (label, value), "{balance:?}");
        }
    }
}
