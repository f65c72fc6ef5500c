//! "Забыли пароль?": a reset link by e-mail, only ever to the confirmed
//! address on file, then a new password once. The answer to the request is
//! the same whether or not the login exists; a reset ends every session of
//! the resident and a notice goes to their address.

use crate::audit::{self, AuditEvent, Entry, Requester};
use crate::clock;
use crate::domain::{AccountNumber, Resident, ResidentStatus, SecretToken, hash_password, parse_new_password};
use crate::errors::{Context, FieldError, Refusal, Unexpected};
use crate::letters;
use crate::limits::{self, Counted, RateLimited, Subject};
use crate::links::Links;
use crate::services::Services;
use crate::text;
use crate::usecases::answer_no_sooner_than;
use crate::usecases::login::{find, known_device};

#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    #[error("refused")]
    Refused(Vec<FieldError>),
    #[error(transparent)]
    RateLimited(#[from] RateLimited),
    #[error("unknown, used or replaced reset link")]
    InvalidToken,
    #[error("expired reset link")]
    Expired,
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

/// Sends a reset link if `login` names a resident with a confirmed address;
/// the answer does not tell whether it did. A browser that logged in as
/// the resident before (`device`, its cookie) has limits of its own, so a
/// stranger using up the resident's letters does not keep them out.
#[tracing::instrument(skip_all)]
pub async fn forgot(
    services: &Services,
    login: &str,
    base_url: &str,
    requester: &Requester,
    device: Option<&str>,
) -> Result<(), ResetError> {
    if text::fold(login).is_empty() {
        return Err(ResetError::Refused(vec![FieldError::refused(Refusal::LoginRequired)]));
    }
    let known = match device {
        Some(_) => match find(services, login).await? {
            Some(resident) => known_device(services, &resident, device).await?,
            None => None,
        },
        None => None,
    };
    let subject = known.clone().unwrap_or_else(|| Subject::login(login));
    let ip = Subject::ip(&requester.ip);
    let checks = [(limits::MAIL_PER_IP, &ip), (limits::PASSWORD_RESET, &subject)];
    let entry = Entry { login: Some(login), requester: Some(requester), ..Entry::default() };
    let mut counted = Counted::default();
    let limited = counted.check(services, &checks, entry).await;
    let sent = match limited {
        Ok(Ok(())) => {
            let started = tokio::time::Instant::now();
            let sent = send_reset_link(services, login, base_url, requester, known.is_some()).await;
            answer_no_sooner_than(started).await;
            sent
        }
        Ok(Err(limited)) => Err(limited.into()),
        Err(error) => Err(error.into()),
    };
    // A fault of ours does not use up the resident's tries.
    if matches!(sent, Err(ResetError::Unexpected(_))) {
        counted.give_back(services).await;
    }
    sent
}

/// Sends the link if `login` names a resident with a confirmed address.
async fn send_reset_link(
    services: &Services,
    login: &str,
    base_url: &str,
    requester: &Requester,
    known_device: bool,
) -> Result<(), ResetError> {
    let Some(resident) = find(services, login).await? else {
        return Ok(());
    };
    // Unconfirmed addresses are never written to with a reset link: the
    // confirmation letter (resend) is their way in.
    let confirmed = resident.status != ResidentStatus::AwaitingEmailConfirmation;
    // The mailbox limit stops strangers flooding it; the resident's own
    // browser is limited per device instead (above).
    if !confirmed
        || resident.email_undeliverable.is_some()
        || (!known_device && !limits::mailbox_allows(services, &resident.email).await?)
    {
        return Ok(());
    }
    let sent = issue_and_send(services, &resident, base_url, requester).await;
    // A letter that did not go does not count against the mailbox.
    if !known_device && !matches!(sent, Ok(true)) {
        if let Err(error) = limits::give_back_letter(services, &resident.email).await {
            tracing::warn!(%error, "a letter that did not go could not be given back");
        }
    }
    sent.map(|_| ())
}

/// Issues a reset link and sends it; true when the letter went.
async fn issue_and_send(
    services: &Services,
    resident: &Resident,
    base_url: &str,
    requester: &Requester,
) -> Result<bool, ResetError> {
    let token = SecretToken::generate().context("generating a reset token")?;
    let ttl = services.config.password_reset_ttl;
    if !services.store.residents.issue_reset_token(&resident.account, &token.hash(), clock::now() + ttl).await? {
        return Ok(false);
    }
    let entry = Entry { account: Some(&resident.account), requester: Some(requester), ..Entry::default() };
    audit::record(services, AuditEvent::ResetRequested, entry).await;
    let letter =
        letters::password_reset(&resident.email, &resident.account, &Links::new(base_url).password_reset(&token), ttl)?;
    if let Err(error) = services.mailer.send(&letter).await {
        // No answer, or a 5xx: the letter may well have gone, so its link
        // is the one that works (only the newest does).
        if error.aws.outcome_unknown() {
            tracing::error!(%error, "SES did not say whether the reset letter went; its link is kept");
            return Ok(false);
        }
        tracing::error!(%error, "the reset letter could not be sent");
        // The link of the letter that did go before keeps working.
        let previous = resident.reset_token_hash.as_deref();
        services.store.residents.restore_reset_token(&resident.account, &token.hash(), previous).await?;
        return Ok(false);
    }
    Ok(true)
}

/// The resident a reset link belongs to, if the link still works.
#[tracing::instrument(skip_all)]
pub async fn reset_target(services: &Services, presented: &str) -> Result<Resident, ResetError> {
    let token = SecretToken::from_presented(presented).ok_or(ResetError::InvalidToken)?;
    let hash = token.hash();
    let record = services.store.tokens.reset_record(&hash).await?.ok_or(ResetError::InvalidToken)?;
    let resident = services.store.residents.get(&record.account).await?.ok_or(ResetError::InvalidToken)?;
    if resident.reset_token_hash.as_deref() != Some(hash.as_str()) {
        return Err(ResetError::InvalidToken);
    }
    if record.expires_at <= clock::now().unix_timestamp() {
        return Err(ResetError::Expired);
    }
    Ok(resident)
}

fn personal(resident: &Resident) -> [&str; 4] {
    [resident.account.as_str(), resident.phone.as_str(), resident.phone.digits(), resident.email.as_str()]
}

/// Sets a new password with a reset link. Every session of the resident
/// ends, earlier login failures are forgotten, and a notice is sent.
#[tracing::instrument(skip_all)]
pub async fn reset(
    services: &Services,
    presented: &str,
    password: Option<&str>,
    confirm: Option<&str>,
    base_url: &str,
    requester: &Requester,
) -> Result<AccountNumber, ResetError> {
    let resident = reset_target(services, presented).await?;
    let password = parse_new_password(password, confirm, &personal(&resident)).map_err(ResetError::Refused)?;
    let phc = hash_password(password).await.context("hashing a password")?;
    let hash = SecretToken::from_presented(presented).ok_or(ResetError::InvalidToken)?.hash();
    if !services.store.residents.reset_password(&resident.account, &hash, &phc).await? {
        // Another request used the link first.
        return Err(ResetError::InvalidToken);
    }
    // Every lock of the resident ends: theirs and those of both identifiers.
    services.store.counters.clear_lock(&Subject::Resident(resident.account.clone())).await?;
    services.store.counters.clear_lock(&Subject::Email(resident.email.clone())).await?;
    services.store.counters.clear_lock(&Subject::LoginAccount(resident.account.clone())).await?;
    tracing::info!("password reset");
    let entry = Entry { account: Some(&resident.account), requester: Some(requester), ..Entry::default() };
    audit::record(services, AuditEvent::ResetDone, entry).await;
    let at = clock::moscow(clock::now());
    let notice = letters::password_changed(&resident.email, &resident.account, &at, &Links::new(base_url).login());
    let sent = match notice {
        Ok(letter) => services.mailer.send(&letter).await,
        Err(error) => Err(error),
    };
    if let Err(error) = sent {
        tracing::error!(%error, "the password change notice could not be sent");
    }
    Ok(resident.account)
}
