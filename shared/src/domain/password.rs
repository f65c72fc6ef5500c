//! Пароль: the rules of NIST SP 800-63B and the argon2id hashing.

use std::collections::HashSet;
use std::fmt;
use std::sync::LazyLock;

use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use unicode_normalization::UnicodeNormalization;

const MIN_CHARS: usize = 8;
const MAX_CHARS: usize = 128;

/// The OWASP-recommended argon2id parameters, set here and nowhere else:
/// 19 MiB of memory, 2 passes, 1 lane.
const ARGON2_MEMORY_KIB: u32 = 19_456;
const ARGON2_ITERATIONS: u32 = 2;
const ARGON2_LANES: u32 = 1;

/// Over 20,000 passwords that appear in breaches (the zxcvbn list, MIT),
/// plus the same typed with the Russian keyboard layout ("йцукен").
static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| include_str!("../../data/common-passwords.txt").lines().collect());

/// A password that satisfies the rules. It never prints itself.
#[derive(Clone)]
pub struct Password(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("empty")]
    Empty,
    #[error("shorter than {MIN_CHARS} characters")]
    TooShort,
    #[error("longer than {MAX_CHARS} characters")]
    TooLong,
    #[error("on the list of common passwords")]
    Common,
    #[error("repeats the account number, phone or e-mail")]
    RepeatsPersonalData,
}

impl Password {
    /// A new password: checks length, the common list and that it is not one
    /// of the resident's own identifiers (`personal`).
    pub fn parse_new(input: &str, personal: &[&str]) -> Result<Self, PasswordError> {
        let password = Self::from_login_input(input);
        let length = password.0.chars().count();
        if length == 0 {
            return Err(PasswordError::Empty);
        }
        if length < MIN_CHARS {
            return Err(PasswordError::TooShort);
        }
        if length > MAX_CHARS {
            return Err(PasswordError::TooLong);
        }
        let lower = password.0.to_lowercase();
        if COMMON_PASSWORDS.contains(lower.as_str()) {
            return Err(PasswordError::Common);
        }
        let personal_match = personal
            .iter()
            .filter(|p| !p.is_empty())
            .any(|p| lower == p.to_lowercase() || lower.trim_start_matches('+') == p.trim_start_matches('+'));
        if personal_match {
            return Err(PasswordError::RepeatsPersonalData);
        }
        Ok(password)
    }

    /// A password as typed at login: only NFKC, so that the same visible
    /// characters typed on another device give the same password.
    pub fn from_login_input(input: &str) -> Self {
        Self(input.nfkc().collect())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashingError(String);

fn argon2() -> Result<Argon2<'static>, HashingError> {
    let params = Params::new(ARGON2_MEMORY_KIB, ARGON2_ITERATIONS, ARGON2_LANES, None)
        .map_err(|e| HashingError(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// An argon2id PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`).
fn hash_blocking(password: &Password) -> Result<String, HashingError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| HashingError(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| HashingError(e.to_string()))?;
    argon2()?
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| HashingError(e.to_string()))
}

/// Hashes a new password, off the async workers: a hash is some 15 ms of
/// CPU.
pub async fn hash_password(password: Password) -> Result<String, HashingError> {
    tokio::task::spawn_blocking(move || hash_blocking(&password)).await.map_err(|e| HashingError(e.to_string()))?
}

/// Checks a password against its hash (a decoy when the login is unknown),
/// off the async workers.
pub async fn verify_password(password: Password, phc: Option<String>) -> Result<bool, HashingError> {
    tokio::task::spawn_blocking(move || verify_blocking(&password, phc.as_deref()))
        .await
        .map_err(|e| HashingError(e.to_string()))
}

/// A hash of a password nobody knows, verified when the login is unknown so
/// that unknown and known logins take the same time.
static DECOY_HASH: LazyLock<Option<String>> =
    LazyLock::new(|| hash_blocking(&Password::from_login_input("decoy password never set")).ok());

/// Whether `password` matches `phc`; with `None` (unknown login) it verifies
/// against the decoy hash and answers false.
fn verify_blocking(password: &Password, phc: Option<&str>) -> bool {
    let (phc, known) = match phc {
        Some(phc) => (phc, true),
        None => match DECOY_HASH.as_deref() {
            Some(decoy) => (decoy, false),
            None => return false,
        },
    };
    let Ok(parsed) = argon2::PasswordHash::new(phc) else {
        return false;
    };
    let Ok(argon2) = argon2() else {
        return false;
    };
    argon2.verify_password(password.expose().as_bytes(), &parsed).is_ok() && known
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ships_a_list_of_over_ten_thousand_common_passwords() {
        assert!(COMMON_PASSWORDS.len() >= 10_000, "{}", COMMON_PASSWORDS.len());
    }

    #[test]
    fn refuses_short_long_and_empty_passwords() {
        assert_eq!(Password::parse_new("", &[]).unwrap_err(), PasswordError::Empty);
        assert_eq!(Password::parse_new("Ab3$xyz", &[]).unwrap_err(), PasswordError::TooShort);
        assert_eq!(Password::parse_new(&"ы".repeat(129), &[]).unwrap_err(), PasswordError::TooLong);
        assert!(Password::parse_new(&"ы".repeat(128), &[]).is_ok());
    }

    #[test]
    fn refuses_common_passwords_in_either_layout_and_any_case() {
        for common in ["password", "PASSWORD1", "qwertyuiop", "йцукенгшщз", "зфыыцщкв", "12345678"] {
            assert_eq!(Password::parse_new(common, &[]).unwrap_err(), PasswordError::Common, "{common}");
        }
    }

    #[test]
    fn refuses_the_residents_own_identifiers() {
        let personal = ["5550193847", "+79161234567", "ivanov@mail.ru"];
        for p in ["5550193847", "79161234567", "IVANOV@mail.ru"] {
            assert_eq!(Password::parse_new(p, &personal).unwrap_err(), PasswordError::RepeatsPersonalData, "{p}");
        }
    }

    #[test]
    fn accepts_a_long_passphrase_without_composition_rules() {
        assert!(Password::parse_new("синий трамвай едет домой", &[]).is_ok());
    }

    #[test]
    fn hashes_with_owasp_argon2id_parameters_and_verifies() {
        let password = Password::parse_new("синий трамвай едет домой", &[]).unwrap();
        let phc = hash_blocking(&password).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_blocking(&password, Some(&phc)));
        assert!(!verify_blocking(&Password::from_login_input("другой пароль"), Some(&phc)));
        assert!(!verify_blocking(&password, None));
    }

    #[test]
    fn debug_output_hides_the_password() {
        let password = Password::from_login_input("secret-value");
        assert!(!format!("{password:?}").contains("secret"));
    }
}
