//! Лицевой счёт: the billing account number.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::text;

/// Longest account number accepted, in significant digits.
const MAX_DIGITS: usize = 20;

/// An account number as the billing program knows it: digits only, no
/// leading zeros. Spaces, dashes and invisible characters in the input are
/// ignored, so "00 123-456" and "123456" are the same account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountNumber(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountNumberError {
    #[error("empty")]
    Empty,
    #[error("has characters other than digits")]
    NotDigits,
    #[error("too long")]
    TooLong,
}

/// An account number as [`AccountNumber::parse`] keeps it, borrowed from
/// the input when that is only its digits (as in nearly every billing row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountNumberRef<'a>(Cow<'a, str>);

impl AccountNumberRef<'_> {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_owned(self) -> AccountNumber {
        AccountNumber(self.0.into_owned())
    }

    /// The same number, owning its text.
    pub fn into_static(self) -> AccountNumberRef<'static> {
        AccountNumberRef(Cow::Owned(self.0.into_owned()))
    }
}

impl AccountNumber {
    /// Digits an earlier [`AccountNumber::canonical`] returned, read back
    /// from the import's spool of checked rows: not checked again.
    #[cfg(feature = "import")]
    pub(crate) fn checked_before(digits: String) -> Self {
        debug_assert!(Self::canonical(&digits).is_ok_and(|c| c.as_str() == digits), "{digits:?}");
        Self(digits)
    }

    pub fn parse(input: &str) -> Result<Self, AccountNumberError> {
        Self::canonical(input).map(AccountNumberRef::into_owned)
    }

    /// What [`AccountNumber::parse`] checks and keeps, without copying.
    pub fn canonical(input: &str) -> Result<AccountNumberRef<'_>, AccountNumberError> {
        // Plain digits, as nearly every billing row has them: nothing to fold.
        if !input.is_empty() && input.bytes().all(|b| b.is_ascii_digit()) {
            return Self::significant(input).map(|digits| AccountNumberRef(Cow::Borrowed(digits)));
        }
        let folded = text::fold_cow(input);
        let mut digits = String::with_capacity(folded.len());
        for c in folded.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '‐' | '‑' | '‒' | '–' | '—' | '−' | '_' | '/' | '.' => {}
                _ => return Err(AccountNumberError::NotDigits),
            }
        }
        if digits.is_empty() {
            return Err(AccountNumberError::Empty);
        }
        Self::significant(&digits).map(|significant| AccountNumberRef(Cow::Owned(significant.to_owned())))
    }

    /// Leading zeros dropped from a non-empty run of digits.
    fn significant(digits: &str) -> Result<&str, AccountNumberError> {
        let significant = digits.trim_start_matches('0');
        let significant = if significant.is_empty() { "0" } else { significant };
        if significant.len() > MAX_DIGITS {
            return Err(AccountNumberError::TooLong);
        }
        Ok(significant)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for AccountNumber {
    type Error = AccountNumberError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<AccountNumber> for String {
    fn from(value: AccountNumber) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ignores_spaces_dashes_invisible_characters_and_leading_zeros() {
        for input in
            ["123456", " 123456 ", "00123456", "12 34 56", "12-34-56", "1\u{200B}23\u{00A0}456", "１２３４５６"]
        {
            assert_eq!(AccountNumber::parse(input).unwrap().as_str(), "123456", "{input:?}");
        }
    }

    #[test]
    fn refuses_letters_empty_and_overlong_input() {
        assert_eq!(AccountNumber::parse("12a4"), Err(AccountNumberError::NotDigits));
        assert_eq!(AccountNumber::parse("  - "), Err(AccountNumberError::Empty));
        assert_eq!(AccountNumber::parse(&"9".repeat(21)), Err(AccountNumberError::TooLong));
    }

    #[test]
    fn all_zeros_is_account_zero() {
        assert_eq!(AccountNumber::parse("000").unwrap().as_str(), "0");
    }

    proptest! {
        #[test]
        fn parse_is_idempotent_and_never_panics(s in any::<String>()) {
            if let Ok(a) = AccountNumber::parse(&s) {
                prop_assert_eq!(AccountNumber::parse(a.as_str()), Ok(a.clone()));
            }
        }
    }
}
