//! The login form: an e-mail or an account number, and a password.

use serde::Deserialize;

use super::{AccountNumber, Email, Password};
use crate::forms::text;

#[derive(Debug, Default, Clone, Deserialize)]
pub struct LoginForm {
    #[serde(default, deserialize_with = "text")]
    pub login: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub password: Option<String>,
}

/// Resending the letter (`login`) or changing an unconfirmed address
/// (`login`, `password`, new `email`).
#[derive(Debug, Default, Clone, Deserialize)]
pub struct AddressForm {
    #[serde(default, deserialize_with = "text")]
    pub login: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub password: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub email: Option<String>,
}

/// Setting a new password with a reset link.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct ResetForm {
    #[serde(default, deserialize_with = "text")]
    pub token: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub password: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub password_confirm: Option<String>,
}

/// Who is logging in: residents may use either identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    Email(Email),
    Account(AccountNumber),
}

impl Login {
    /// `None` when the text is neither an address nor an account number;
    /// the caller answers that like an unknown login.
    pub fn parse(input: &str) -> Option<Self> {
        if input.contains('@') {
            Email::parse(input).ok().map(Login::Email)
        } else {
            AccountNumber::parse(input).ok().map(Login::Account)
        }
    }
}

impl LoginForm {
    pub fn password(&self) -> Password {
        Password::from_login_input(self.password.as_deref().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_or_an_account_number_logs_in() {
        assert!(matches!(Login::parse(" Ivanov@Mail.ru "), Some(Login::Email(e)) if e.as_str() == "ivanov@mail.ru"));
        assert!(matches!(Login::parse("00 12-34"), Some(Login::Account(a)) if a.as_str() == "1234"));
        assert_eq!(Login::parse("nobody"), None);
    }
}
