//! Номер телефона, kept in E.164.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::text;

/// A phone number in E.164 (`+79161234567`). Russian numbers may be typed in
/// any of the usual ways: `8 (916) 123-45-67`, `+7 916 123 45 67`,
/// `79161234567`, `9161234567`. Other countries need the `+` form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Phone(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("empty")]
    Empty,
    #[error("has characters that are not part of a phone number")]
    BadCharacter,
    #[error("wrong number of digits")]
    WrongLength,
}

impl Phone {
    pub fn parse(input: &str) -> Result<Self, PhoneError> {
        let folded = text::fold(input);
        let mut digits = String::new();
        let mut plus = false;
        for (i, c) in folded.chars().enumerate() {
            match c {
                '0'..='9' => digits.push(c),
                '+' if i == 0 => plus = true,
                ' ' | '-' | '‐' | '‑' | '–' | '—' | '(' | ')' | '.' => {}
                _ => return Err(PhoneError::BadCharacter),
            }
        }
        if digits.is_empty() {
            return Err(PhoneError::Empty);
        }
        let e164 = match (plus, digits.len(), digits.as_bytes().first()) {
            (true, 11, Some(b'7')) => digits,
            (true, _, Some(b'7')) => return Err(PhoneError::WrongLength),
            (true, 8..=15, Some(first)) if *first != b'0' => digits,
            (true, _, _) => return Err(PhoneError::WrongLength),
            (false, 11, Some(b'7' | b'8')) => format!("7{}", digits.get(1..).unwrap_or_default()),
            (false, 10, Some(b'9' | b'3' | b'4' | b'8')) => format!("7{digits}"),
            (false, _, _) => return Err(PhoneError::WrongLength),
        };
        Ok(Self(format!("+{e164}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digits of the number without the leading `+`.
    pub fn digits(&self) -> &str {
        self.0.trim_start_matches('+')
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Phone {
    type Error = PhoneError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Phone> for String {
    fn from(value: Phone) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn russian_forms_become_e164() {
        for input in [
            "+7 916 123-45-67",
            "8 (916) 123-45-67",
            "79161234567",
            "89161234567",
            "9161234567",
            "+7(916)1234567",
            " 8\u{00A0}916\u{00A0}123\u{00A0}45\u{00A0}67 ",
        ] {
            assert_eq!(Phone::parse(input).unwrap().as_str(), "+79161234567", "{input:?}");
        }
    }

    #[test]
    fn other_countries_are_accepted_in_plus_form() {
        assert_eq!(Phone::parse("+375 29 123-45-67").unwrap().as_str(), "+375291234567");
    }

    #[test]
    fn refuses_wrong_lengths_and_letters() {
        assert_eq!(Phone::parse("12345"), Err(PhoneError::WrongLength));
        assert_eq!(Phone::parse("+7 916 123"), Err(PhoneError::WrongLength));
        assert_eq!(Phone::parse("8-916-ABC-45-67"), Err(PhoneError::BadCharacter));
        assert_eq!(Phone::parse(" "), Err(PhoneError::Empty));
        assert_eq!(Phone::parse("375291234567"), Err(PhoneError::WrongLength));
    }

    proptest! {
        #[test]
        fn parse_is_idempotent_and_never_panics(s in any::<String>()) {
            if let Ok(p) = Phone::parse(&s) {
                prop_assert_eq!(Phone::parse(p.as_str()), Ok(p.clone()));
            }
        }
    }
}
