//! Every link the cabinet puts in a letter, built in one place from the
//! cabinet's public address (see `web::base_url`). The paths are the routes
//! of the functions that answer them.

use crate::domain::{AccountNumber, SecretToken};

/// The links of one cabinet, e.g. `https://lk.example.ru`.
#[derive(Debug, Clone, Copy)]
pub struct Links<'a> {
    base_url: &'a str,
}

impl<'a> Links<'a> {
    pub fn new(base_url: &'a str) -> Self {
        Self { base_url: base_url.trim_end_matches('/') }
    }

    /// The login page.
    pub fn login(&self) -> String {
        format!("{}/login", self.base_url)
    }

    /// Confirms the address of a registration. The account number after
    /// the token lets the link and its resident be read at once; a link cut
    /// short loses that first and still works.
    pub fn confirm(&self, token: &SecretToken, account: &AccountNumber) -> String {
        format!("{}&account={}", self.with_token("/confirm", token), account.as_str())
    }

    /// Sets a new password.
    pub fn password_reset(&self, token: &SecretToken) -> String {
        self.with_token("/password/reset", token)
    }

    /// Confirms a new address, sent to that address.
    pub fn email_change_confirm(&self, token: &SecretToken) -> String {
        self.with_token("/account/email/confirm", token)
    }

    /// "It was not me", sent to the old address.
    pub fn email_change_cancel(&self, token: &SecretToken) -> String {
        self.with_token("/account/email/cancel", token)
    }

    fn with_token(&self, path: &str, token: &SecretToken) -> String {
        format!("{}{path}?token={}", self.base_url, token.expose())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_carry_the_token_under_the_base_url() {
        let token = SecretToken::from_presented("abcDEF-_0123456789abcdefABCDEF0123456789abc").unwrap();
        let links = Links::new("https://lk.example.ru/");
        assert_eq!(links.login(), "https://lk.example.ru/login");
        let token_text = token.expose().to_owned();
        let account = AccountNumber::parse("100200300").unwrap();
        assert_eq!(
            links.confirm(&token, &account),
            format!("https://lk.example.ru/confirm?token={token_text}&account=100200300")
        );
        assert_eq!(links.password_reset(&token), format!("https://lk.example.ru/password/reset?token={token_text}"));
        assert_eq!(
            links.email_change_confirm(&token),
            format!("https://lk.example.ru/account/email/confirm?token={token_text}")
        );
        assert_eq!(
            links.email_change_cancel(&token),
            format!("https://lk.example.ru/account/email/cancel?token={token_text}")
        );
    }
}
