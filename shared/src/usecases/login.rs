//! Login: one answer for an unknown login and a wrong password, then the
//! stage the resident is at, or a new session.

use time::OffsetDateTime;

use crate::clock;
use crate::domain::{Login, LoginForm, RejectionReason, Resident, ResidentStatus, SecretToken, verify_password};
use crate::errors::{Context, Unexpected};
use crate::services::Services;
use crate::usecases::register::resend_confirmation;

/// A new session: the token goes into the cookie, its hash into DynamoDB.
#[derive(Debug)]
pub struct Session {
    pub token: SecretToken,
    pub expires_at: OffsetDateTime,
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("unknown login or wrong password")]
    InvalidCredentials,
    #[error("the e-mail address is not confirmed yet")]
    EmailNotConfirmed { masked_email: String, letter_sent: bool },
    #[error("identification is pending")]
    IdentificationPending { ready_at: Option<OffsetDateTime> },
    #[error("identification failed")]
    IdentificationFailed { reason: RejectionReason },
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

async fn find(services: &Services, login: Option<Login>) -> Result<Option<Resident>, Unexpected> {
    match login {
        Some(Login::Email(email)) => services.store.resident_by_email(&email).await,
        Some(Login::Account(account)) => services.store.resident(&account).await,
        None => Ok(None),
    }
}

#[tracing::instrument(skip_all)]
pub async fn login(services: &Services, form: &LoginForm, base_url: &str) -> Result<Session, LoginError> {
    let login = form.login.as_deref().and_then(Login::parse);
    let resident = find(services, login).await?;
    let password = form.password();
    let phc = resident.as_ref().map(|r| r.password_hash.clone());
    // The hash is verified whether or not the login exists, so both take the
    // same time.
    let verified = tokio::task::spawn_blocking(move || verify_password(&password, phc.as_deref()))
        .await
        .context("verifying a password")?;
    let Some(resident) = resident.filter(|_| verified) else {
        tracing::info!("login refused");
        return Err(LoginError::InvalidCredentials);
    };
    match resident.status {
        ResidentStatus::AwaitingEmailConfirmation => {
            // They are here because the letter did not reach them or its link
            // expired: send a fresh one.
            let letter_sent = resend_confirmation(services, &resident, base_url).await?;
            Err(LoginError::EmailNotConfirmed { masked_email: resident.email.masked(), letter_sent })
        }
        ResidentStatus::AwaitingIdentification => {
            Err(LoginError::IdentificationPending { ready_at: resident.ready_at })
        }
        ResidentStatus::Rejected => Err(LoginError::IdentificationFailed {
            reason: resident.rejection_reason.unwrap_or(RejectionReason::PayerChanged),
        }),
        ResidentStatus::Active => {
            let token = SecretToken::generate().context("generating a session token")?;
            let expires_at = clock::now() + services.config.session_ttl;
            services.store.create_session(&token.hash(), &resident.account, expires_at).await?;
            tracing::info!(account = %resident.account, "logged in");
            Ok(Session { token, expires_at })
        }
    }
}

#[tracing::instrument(skip_all)]
pub async fn logout(services: &Services, presented: &str) -> Result<(), Unexpected> {
    match SecretToken::from_presented(presented) {
        Some(token) => services.store.delete_session(&token.hash()).await,
        None => Ok(()),
    }
}
