//! One typed configuration, read from the environment once at start-up.
//! The variable names are the ones `template.yaml` sets.

use std::env;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    /// `RESIDENTS_TABLE`: residents, e-mail claims, tokens and sessions.
    pub residents_table: String,
    /// `BILLING_TABLE`: accounts loaded from the billing program.
    pub billing_table: String,
    /// `IDENTIFY_QUEUE_URL`: identification jobs, consumed by `identify`.
    pub identify_queue_url: String,
    /// `MAIL_FROM`: the verified SES sender, e.g. `ЛК Потенциал <noreply@example.ru>`.
    pub mail_from: String,
    /// `PUBLIC_BASE_URL`: where links in letters point; when unset, the
    /// address the request came to is used.
    pub public_base_url: Option<String>,
    /// `IDENTIFY_DELAY_SECONDS`: the one wait between confirmation and
    /// identification (600 in AWS, 30 locally).
    pub identify_delay: Duration,
    /// `CONFIRMATION_TOKEN_TTL_HOURS`: how long a confirmation link works.
    pub confirmation_token_ttl: Duration,
    /// `SESSION_IDLE_SECONDS`: a session unused this long ends (30 min).
    pub session_idle: Duration,
    /// `SESSION_LIFETIME_SECONDS`: a session ends this long after login,
    /// however busy (12 h).
    pub session_lifetime: Duration,
    /// `PASSWORD_RESET_TTL_SECONDS`: how long a password reset link works (1 h).
    pub password_reset_ttl: Duration,
    /// `LOGIN_LOCK_BASE_SECONDS`: the first lock after repeated login
    /// failures; it doubles with each further failure up to 15 minutes
    /// (see `limits.rs`).
    pub login_lock_base: Duration,
    /// `AUDIT_RETENTION_DAYS`: how long security events are kept.
    pub audit_retention: Duration,
    /// `SES_CONFIGURATION_SET`: optional, for bounce and complaint events.
    pub ses_configuration_set: Option<String>,
    /// `AUDIT_TABLE`: the audit log (written with `PutItem` only).
    pub audit_table: String,
    /// `UNCONFIRMED_EXPIRY_SECONDS`: an unconfirmed registration (resident,
    /// e-mail claim, tokens) goes away this long after it was made (the
    /// link's 24 h plus a margin).
    pub unconfirmed_expiry: Duration,
    /// `IDENTIFY_OVERDUE_SECONDS`: this long past the ready time, login and
    /// the status page run an identification whose job never came (120 s).
    pub identify_overdue: Duration,
    /// `AWS_REGION`, which Lambda sets (not the template): where the data is
    /// kept, as the privacy page says.
    pub region: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {0} is not a whole number")]
    NotANumber(&'static str),
}

pub const DEFAULT_IDENTIFY_DELAY_SECONDS: u64 = 600;

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| env::var(name).ok())
    }

    /// The same from any source of variables (the local stack resolves them
    /// from template.yaml).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let optional = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let required = |name: &'static str| optional(name).ok_or(ConfigError::Missing(name));
        let number = |name: &'static str, default: u64| match optional(name) {
            Some(v) => v.parse().map_err(|_| ConfigError::NotANumber(name)),
            None => Ok(default),
        };
        Ok(Self {
            residents_table: required("RESIDENTS_TABLE")?,
            billing_table: required("BILLING_TABLE")?,
            identify_queue_url: required("IDENTIFY_QUEUE_URL")?,
            mail_from: required("MAIL_FROM")?,
            public_base_url: optional("PUBLIC_BASE_URL"),
            identify_delay: Duration::from_secs(number("IDENTIFY_DELAY_SECONDS", DEFAULT_IDENTIFY_DELAY_SECONDS)?),
            confirmation_token_ttl: Duration::from_secs(3600 * number("CONFIRMATION_TOKEN_TTL_HOURS", 24)?),
            session_idle: Duration::from_secs(number("SESSION_IDLE_SECONDS", 30 * 60)?),
            session_lifetime: Duration::from_secs(number("SESSION_LIFETIME_SECONDS", 12 * 3600)?),
            password_reset_ttl: Duration::from_secs(number("PASSWORD_RESET_TTL_SECONDS", 3600)?),
            login_lock_base: Duration::from_secs(number("LOGIN_LOCK_BASE_SECONDS", 30)?),
            audit_retention: Duration::from_secs(86_400 * number("AUDIT_RETENTION_DAYS", 365)?),
            ses_configuration_set: optional("SES_CONFIGURATION_SET"),
            audit_table: required("AUDIT_TABLE")?,
            unconfirmed_expiry: Duration::from_secs(number("UNCONFIRMED_EXPIRY_SECONDS", 25 * 3600)?),
            identify_overdue: Duration::from_secs(number("IDENTIFY_OVERDUE_SECONDS", 120)?),
            region: optional("AWS_REGION"),
        })
    }

    /// The variables `from_env` reads, for checking them against template.yaml.
    pub const VARIABLES: &[&str] = &[
        "RESIDENTS_TABLE",
        "BILLING_TABLE",
        "IDENTIFY_QUEUE_URL",
        "MAIL_FROM",
        "PUBLIC_BASE_URL",
        "IDENTIFY_DELAY_SECONDS",
        "CONFIRMATION_TOKEN_TTL_HOURS",
        "SESSION_IDLE_SECONDS",
        "SESSION_LIFETIME_SECONDS",
        "PASSWORD_RESET_TTL_SECONDS",
        "LOGIN_LOCK_BASE_SECONDS",
        "AUDIT_RETENTION_DAYS",
        "SES_CONFIGURATION_SET",
        "AUDIT_TABLE",
        "UNCONFIRMED_EXPIRY_SECONDS",
        "IDENTIFY_OVERDUE_SECONDS",
    ];
}
