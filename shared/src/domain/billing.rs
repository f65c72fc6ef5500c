//! What the billing program knows about an account.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{AccountNumber, FullName};

/// An amount in kopecks; positive means the resident owes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Money(pub i64);

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
}
