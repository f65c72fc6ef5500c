//! Secret tokens for e-mail links and sessions: 256 bits from the OS,
//! stored only as a SHA-256 hash.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// A token as given to the resident (in a link or a cookie). Debug output
/// never shows it.
pub struct SecretToken(String);

/// What the database keeps of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHash(String);

#[derive(Debug, thiserror::Error)]
#[error("the operating system's random generator failed: {0}")]
pub struct RandomnessError(String);

/// A fresh value for [`crate::domain::Resident::address_nonce`]: 128
/// random bits, not secret (it only tells one address of a registration
/// from another).
pub fn new_address_nonce() -> Result<String, RandomnessError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| RandomnessError(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

impl SecretToken {
    pub fn generate() -> Result<Self, RandomnessError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| RandomnessError(e.to_string()))?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// A token presented by a client; anything that cannot be one of ours is
    /// refused before any database look-up.
    pub fn from_presented(value: &str) -> Option<Self> {
        let value = value.trim();
        let plausible = value.len() == 43 && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        plausible.then(|| Self(value.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash(format!("{:x}", Sha256::digest(self.0.as_bytes())))
    }
}

impl fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretToken(***)")
    }
}

impl TokenHash {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_url_safe_and_round_trip() {
        let a = SecretToken::generate().unwrap();
        let b = SecretToken::generate().unwrap();
        assert_ne!(a.expose(), b.expose());
        let presented = SecretToken::from_presented(a.expose()).unwrap();
        assert_eq!(presented.hash(), a.hash());
        assert_eq!(a.hash().as_str().len(), 64);
    }

    #[test]
    fn refuses_presented_values_that_cannot_be_tokens() {
        assert!(SecretToken::from_presented("short").is_none());
        assert!(SecretToken::from_presented(&"a".repeat(42)).is_none());
        assert!(SecretToken::from_presented(&format!("{}'", "a".repeat(42))).is_none());
    }
}
