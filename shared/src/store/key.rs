//! The keys of the residents and audit tables: every prefix in one place.

use aws_sdk_dynamodb::types::AttributeValue;
use time::OffsetDateTime;

use crate::clock;
use crate::domain::{AccountNumber, Email, TokenHash};
use crate::limits::{Action, Subject};

/// The `pk` of an item.
#[derive(Debug, Clone, Copy)]
pub enum Key<'a> {
    /// `RESIDENT#<account>`: the resident; one per account number.
    Resident(&'a AccountNumber),
    /// `RESIDENT#-`: read for a login nobody has, so that the answer costs
    /// the same reads as for a known one. Never written.
    DecoyResident,
    /// `LINK#<account>`: an account added to a cabinet after registration.
    /// An account has a resident or a link, never both.
    Link(&'a AccountNumber),
    /// `EMAIL#<email>`: claims an address; one resident per address.
    Email(&'a Email),
    /// `CONFIRM#<sha256>`: a confirmation link.
    Confirmation(&'a TokenHash),
    /// `SESSION#<sha256>`: a login session.
    Session(&'a TokenHash),
    /// `RESET#<sha256>`: a password reset link.
    Reset(&'a TokenHash),
    /// `NEWEMAIL#<sha256>`: a pending change of a confirmed address.
    EmailChange(&'a TokenHash),
    /// `CANCEL#<sha256>`: the link, sent to the old address, that cancels a
    /// pending address change.
    Cancel(&'a TokenHash),
    /// `STATUS#<sha256>`: the registration status cookie's token.
    Status(&'a TokenHash),
    /// `DEVICE#<sha256>`: a browser that logged in as a resident before.
    Device(&'a TokenHash),
    /// `LOCK#<subject>`: the attempts of a subject and the lock they earned.
    Lock(&'a Subject),
    /// `RATE#<action>#<subject>#<window start>`: a rate limit counter.
    Rate { action: Action, subject: &'a Subject, window_start: i64 },
    /// `AUDIT#<account or ->#<time>#<id>`: an audit record (audit table).
    Audit { account: Option<&'a AccountNumber>, at: OffsetDateTime, id: &'a str },
}

impl std::fmt::Display for Key<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Resident(account) => write!(f, "RESIDENT#{account}"),
            Self::DecoyResident => f.write_str("RESIDENT#-"),
            Self::Link(account) => write!(f, "LINK#{account}"),
            Self::Email(email) => write!(f, "EMAIL#{email}"),
            Self::Confirmation(hash) => write!(f, "CONFIRM#{}", hash.as_str()),
            Self::Session(hash) => write!(f, "SESSION#{}", hash.as_str()),
            Self::Reset(hash) => write!(f, "RESET#{}", hash.as_str()),
            Self::EmailChange(hash) => write!(f, "NEWEMAIL#{}", hash.as_str()),
            Self::Cancel(hash) => write!(f, "CANCEL#{}", hash.as_str()),
            Self::Status(hash) => write!(f, "STATUS#{}", hash.as_str()),
            Self::Device(hash) => write!(f, "DEVICE#{}", hash.as_str()),
            Self::Lock(subject) => write!(f, "LOCK#{subject}"),
            Self::Rate { action, subject, window_start } => write!(f, "RATE#{action}#{subject}#{window_start}"),
            Self::Audit { account, at, id } => {
                write!(f, "AUDIT#{}#{}#{id}", account.map_or("-", |a| a.as_str()), clock::rfc3339(*at))
            }
        }
    }
}

impl Key<'_> {
    pub(super) fn value(&self) -> AttributeValue {
        AttributeValue::S(self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SecretToken;
    use time::macros::datetime;

    #[test]
    fn keys_keep_the_prefixes_of_the_items_already_stored() {
        let account = AccountNumber::parse("100 200 300").unwrap();
        let email = Email::parse("Ivanov@Mail.ru").unwrap();
        let token = SecretToken::from_presented(&"a".repeat(43)).unwrap();
        let hash = token.hash();
        let h = hash.as_str();
        assert_eq!(Key::Resident(&account).to_string(), "RESIDENT#100200300");
        assert_eq!(Key::DecoyResident.to_string(), "RESIDENT#-");
        assert_eq!(Key::Email(&email).to_string(), "EMAIL#ivanov@mail.ru");
        assert_eq!(Key::Link(&account).to_string(), "LINK#100200300");
        assert_eq!(Key::Confirmation(&hash).to_string(), format!("CONFIRM#{h}"));
        assert_eq!(Key::Session(&hash).to_string(), format!("SESSION#{h}"));
        assert_eq!(Key::Reset(&hash).to_string(), format!("RESET#{h}"));
        assert_eq!(Key::EmailChange(&hash).to_string(), format!("NEWEMAIL#{h}"));
        assert_eq!(Key::Cancel(&hash).to_string(), format!("CANCEL#{h}"));
        assert_eq!(Key::Status(&hash).to_string(), format!("STATUS#{h}"));
        assert_eq!(Key::Device(&hash).to_string(), format!("DEVICE#{h}"));
        let resident = Subject::Resident(account.clone());
        assert_eq!(Key::Lock(&resident).to_string(), "LOCK#resident:100200300");
        let registration = Subject::Registration(account.clone());
        assert_eq!(Key::Lock(&registration).to_string(), "LOCK#register:100200300");
        let mailbox = Subject::Email(email.clone());
        let rate = Key::Rate { action: Action::Mailbox, subject: &mailbox, window_start: 3600 };
        assert_eq!(rate.to_string(), "RATE#mailbox#email:ivanov@mail.ru#3600");
        let at = datetime!(2026-11-25 11:05 UTC);
        let audit = Key::Audit { account: Some(&account), at, id: "abc" };
        assert_eq!(audit.to_string(), "AUDIT#100200300#2026-11-25T14:05:00+03:00#abc");
        assert_eq!(Key::Audit { account: None, at, id: "abc" }.to_string(), "AUDIT#-#2026-11-25T14:05:00+03:00#abc");
    }
}
