//! For residents whose confirmation letter did not arrive: send it again, or
//! correct the address before it is confirmed. Both are rate limited and
//! answer alike whether or not the login exists.

use crate::audit::{self, AuditEvent, Entry, Requester};
use crate::clock;
use crate::domain::{Email, Password, ResidentStatus, SecretToken};
use crate::errors::{Context, FieldError, Refusal, Unexpected};
use crate::letters;
use crate::limits::{self, Counted, Limit, Subject};
use crate::links::Links;
use crate::services::Services;
use crate::store::{EmailChangeRecord, InsertResidentError};
use crate::usecases::answer_no_sooner_than;
use crate::usecases::login::{check_password, find};
use crate::usecases::register::{resend_confirmation, send_confirmation_letter};
use crate::{domain, text};

#[derive(Debug, thiserror::Error)]
pub enum AddressError {
    #[error("refused")]
    Refused(Vec<FieldError>),
    #[error("rate limited")]
    RateLimited { retry_after_seconds: u64 },
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

/// Counts an attempt under each `(limit, subject)`, into `counted`.
async fn count(
    services: &Services,
    counted: &mut Counted,
    checks: &[(Limit, &Subject)],
    entry: Entry<'_>,
) -> Result<(), AddressError> {
    counted
        .check(services, checks, entry)
        .await?
        .map_err(|limited| AddressError::RateLimited { retry_after_seconds: limited.retry_after_seconds })
}

/// `result`, after giving back the attempts it counted when it failed on
/// our side: a fault must not use up a resident's tries.
async fn given_back_on_fault<T>(
    services: &Services,
    counted: Counted,
    result: Result<T, AddressError>,
) -> Result<T, AddressError> {
    if matches!(result, Err(AddressError::Unexpected(_))) {
        counted.give_back(services).await;
    }
    result
}

fn login_required() -> AddressError {
    AddressError::Refused(vec![FieldError::refused(Refusal::LoginRequired)])
}

/// Sends the confirmation letter again if `login` names an unconfirmed
/// resident; the answer does not tell whether it did.
#[tracing::instrument(skip_all)]
pub async fn resend(
    services: &Services,
    login: &str,
    base_url: &str,
    requester: &Requester,
) -> Result<(), AddressError> {
    if text::fold(login).is_empty() {
        return Err(login_required());
    }
    let mut counted = Counted::default();
    let (ip, subject) = (Subject::ip(&requester.ip), Subject::login(login));
    let checks = [(limits::MAIL_PER_IP, &ip), (limits::RESEND_CONFIRMATION, &subject)];
    let entry = Entry { login: Some(login), requester: Some(requester), ..Entry::default() };
    if let Err(error) = count(services, &mut counted, &checks, entry).await {
        return given_back_on_fault(services, counted, Err(error)).await;
    }
    let started = tokio::time::Instant::now();
    let resent = async {
        if let Some(resident) = find(services, login).await? {
            if resident.status == ResidentStatus::AwaitingEmailConfirmation {
                let sent = resend_confirmation(services, &resident, base_url).await?;
                tracing::info!(sent, "confirmation letter resent");
            }
        }
        Ok::<_, Unexpected>(())
    }
    .await;
    answer_no_sooner_than(started).await;
    given_back_on_fault(services, counted, resent.map_err(AddressError::from)).await
}

/// A new address a letter may go to. One under no public suffix
/// (`mail.ry`) is refused, with a suggestion when one fits; one that only
/// looks like a typo of a popular mailbox is let through, and the page
/// after the letter offers the fix (the resident is on the correcting path
/// already, and a confirmed address stays until the new one is opened).
fn new_address(input: &str) -> Result<Email, AddressError> {
    let email = Email::parse(input).map_err(|e| AddressError::Refused(vec![domain::email_error(&e, input)]))?;
    domain::check_doubt(email, true).map_err(|e| AddressError::Refused(vec![e]))
}

/// The address the letter went to, masked, after a change.
#[derive(Debug)]
pub struct EmailChanged {
    pub masked_email: String,
    /// False when the address given was the current one: the letter was
    /// only sent again.
    pub changed: bool,
    pub letter_sent: bool,
    pub suggestion: Option<Email>,
}

/// Changes the address of a resident who has not confirmed it yet (the
/// password proves it is them); the old link stops working.
#[tracing::instrument(skip_all)]
pub async fn change_email(
    services: &Services,
    login: &str,
    password: &str,
    new_email: &str,
    base_url: &str,
    requester: &Requester,
) -> Result<EmailChanged, AddressError> {
    if text::fold(login).is_empty() {
        return Err(login_required());
    }
    let email = new_address(new_email)?;
    let mut counted = Counted::default();
    let result = change_email_counted(services, login, password, email, base_url, requester, &mut counted).await;
    given_back_on_fault(services, counted, result).await
}

/// [`change_email`] of a valid address, counting its attempts into `counted`.
async fn change_email_counted(
    services: &Services,
    login: &str,
    password: &str,
    email: Email,
    base_url: &str,
    requester: &Requester,
    counted: &mut Counted,
) -> Result<EmailChanged, AddressError> {
    let entry = Entry { login: Some(login), requester: Some(requester), ..Entry::default() };
    count(services, counted, &[(limits::MAIL_PER_IP, &Subject::ip(&requester.ip))], entry).await?;
    let resident = find(services, login).await?;
    // The same lock, counting and audit as login; a confirmed resident gets
    // the answer of a wrong password, so this is no password oracle.
    let refused = || AddressError::Refused(vec![FieldError::refused(Refusal::UnconfirmedCredentials)]);
    let checked = check_password(services, login, resident, Password::from_login_input(password), None, entry)
        .await?
        .map_err(|limited| AddressError::RateLimited { retry_after_seconds: limited.retry_after_seconds })?;
    let Some(verified) = checked else {
        return Err(refused());
    };
    if verified.resident.status != ResidentStatus::AwaitingEmailConfirmation {
        verified.refuse(services, entry).await;
        return Err(refused());
    }
    let mut resident = verified.accept(services).await?;
    count(services, counted, &[(limits::CHANGE_EMAIL, &Subject::login(login))], entry).await?;
    let taken = || AddressError::Refused(vec![FieldError::refused(Refusal::EmailTaken)]);
    if email != resident.email {
        // The letter to the new address counts against its mailbox: going
        // back and forth between addresses must not flood one.
        let mailbox = Subject::Email(email.clone());
        count(services, counted, &[(limits::LETTERS_PER_MAILBOX, &mailbox)], entry).await?;
        let address_nonce = domain::new_address_nonce().context("generating an address nonce")?;
        match services
            .store
            .residents
            .change_unconfirmed_email(&resident.account, &resident.email, &email, &address_nonce, resident.expires_at)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                limits::give_back_letter(services, &email).await?;
                return Err(AddressError::Refused(vec![FieldError::refused(Refusal::ChangedMeanwhile)]));
            }
            Err(InsertResidentError::EmailTaken | InsertResidentError::AccountTaken) => {
                limits::give_back_letter(services, &email).await?;
                return Err(taken());
            }
            Err(InsertResidentError::Unexpected(e)) => return Err(e.into()),
        }
        resident.email = email.clone();
        resident.address_nonce = address_nonce;
        tracing::info!("unconfirmed e-mail address changed");
        let entry = Entry { account: Some(&resident.account), requester: Some(requester), ..Entry::default() };
        audit::record(services, AuditEvent::EmailChanged, entry).await;
        let letter_sent = send_confirmation_letter(services, &resident, base_url).await;
        if !letter_sent {
            limits::give_back_letter(services, &email).await?;
        }
        let suggestion = email.suggestion();
        return Ok(EmailChanged { masked_email: email.masked(), changed: true, letter_sent, suggestion });
    }
    let letter_sent = resend_confirmation(services, &resident, base_url).await?;
    Ok(EmailChanged { masked_email: email.masked(), changed: false, letter_sent, suggestion: email.suggestion() })
}

/// A change of a confirmed address, asked for from the account page: the
/// password proves it is them (checked under the login lock, like login);
/// the new address gets a link and becomes theirs only when it is opened,
/// and the current address is told at once, with a link that cancels it.
/// An address already in use gets the same answer and a letter saying so.
/// Returns the new address, masked, and whether the letter went out.
#[tracing::instrument(skip_all)]
pub async fn request_email_change(
    services: &Services,
    resident: &domain::Resident,
    password: &str,
    new_email: &str,
    base_url: &str,
    requester: &Requester,
    device: Option<&str>,
) -> Result<(String, bool), AddressError> {
    let email = new_address(new_email)?;
    // Checked before the password, so the answer tells nothing about it.
    if email == resident.email {
        return Err(AddressError::Refused(vec![FieldError::refused(Refusal::SameAddress)]));
    }
    let entry = Entry { account: Some(&resident.account), requester: Some(requester), ..Entry::default() };
    let typed = resident.account.to_string();
    let password = Password::from_login_input(password);
    let checked = check_password(services, &typed, Some(resident.clone()), password, device, entry)
        .await?
        .map_err(|limited| AddressError::RateLimited { retry_after_seconds: limited.retry_after_seconds })?;
    let Some(verified) = checked else {
        return Err(AddressError::Refused(vec![FieldError::refused(Refusal::WrongPassword)]));
    };
    let resident = verified.accept(services).await?;
    let mut counted = Counted::default();
    let subject = Subject::Account(resident.account.clone());
    let result = async {
        count(services, &mut counted, &[(limits::CHANGE_CONFIRMED_EMAIL, &subject)], entry).await?;
        send_email_change(services, &resident, &email, base_url, entry).await
    }
    .await;
    given_back_on_fault(services, counted, result).await
}

/// The letters of a confirmed address change (see [`request_email_change`]).
async fn send_email_change(
    services: &Services,
    resident: &domain::Resident,
    email: &Email,
    base_url: &str,
    entry: Entry<'_>,
) -> Result<(String, bool), AddressError> {
    let ttl = services.config.confirmation_token_ttl;
    let sent = if services.store.residents.by_email(email).await?.is_some() {
        // The asker gets the answer of a free address; only the owner of
        // the address learns, from this letter, that it is in use.
        tracing::info!("address change to an address in use");
        match letters::email_in_use(email, &Links::new(base_url).login()) {
            Ok(letter) => services.mailer.send(&letter).await,
            Err(error) => Err(error),
        }
    } else {
        let token = SecretToken::generate().context("generating an address change token")?;
        let cancel = SecretToken::generate().context("generating a cancel token")?;
        let record = EmailChangeRecord {
            account: resident.account.clone(),
            old_email: resident.email.clone(),
            new_email: email.clone(),
            expires_at: (clock::now() + ttl).unix_timestamp(),
            epoch: resident.session_epoch,
        };
        services.store.tokens.put_email_change(&token.hash(), &record, &cancel.hash()).await?;
        audit::record(services, AuditEvent::EmailChangeRequested, entry).await;
        let cancel_link = Links::new(base_url).email_change_cancel(&cancel);
        let warning =
            letters::email_change_requested(&resident.email, &resident.account, &email.masked(), &cancel_link);
        let warned = match warning {
            Ok(letter) => services.mailer.send(&letter).await,
            Err(error) => Err(error),
        };
        if let Err(error) = warned {
            tracing::error!(%error, "the warning to the current address could not be sent");
        }
        let link = Links::new(base_url).email_change_confirm(&token);
        match letters::email_change(email, &resident.account, &link, ttl) {
            Ok(letter) => services.mailer.send(&letter).await,
            Err(error) => Err(error),
        }
    };
    if let Err(error) = &sent {
        tracing::error!(%error, "the address change letter could not be sent");
    }
    Ok((email.masked(), sent.is_ok()))
}

/// Why a link to confirm a new address did not work.
#[derive(Debug, thiserror::Error)]
pub enum EmailChangeError {
    #[error("unknown or used link")]
    InvalidToken,
    #[error("expired link")]
    Expired,
    #[error("the address was taken meanwhile")]
    Taken,
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

/// Opens the link sent to a new address: from now on it is the resident's.
#[tracing::instrument(skip_all)]
pub async fn confirm_email_change(
    services: &Services,
    presented: &str,
    requester: &Requester,
) -> Result<String, EmailChangeError> {
    let token = SecretToken::from_presented(presented).ok_or(EmailChangeError::InvalidToken)?;
    let change = services.store.tokens.email_change(&token.hash()).await?.ok_or(EmailChangeError::InvalidToken)?;
    if change.expires_at <= clock::now().unix_timestamp() {
        return Err(EmailChangeError::Expired);
    }
    match services.store.residents.apply_email_change(&token.hash(), &change).await {
        Ok(true) => {}
        Ok(false) => return Err(EmailChangeError::InvalidToken),
        Err(InsertResidentError::EmailTaken | InsertResidentError::AccountTaken) => {
            return Err(EmailChangeError::Taken);
        }
        Err(InsertResidentError::Unexpected(e)) => return Err(e.into()),
    }
    tracing::info!("confirmed e-mail address changed");
    let entry = Entry { account: Some(&change.account), requester: Some(requester), ..Entry::default() };
    audit::record(services, AuditEvent::EmailChanged, entry).await;
    let at = clock::moscow(clock::now());
    let notice = letters::email_changed(&change.old_email, &change.account, &change.new_email.masked(), &at);
    let sent = match notice {
        Ok(letter) => services.mailer.send(&letter).await,
        Err(error) => Err(error),
    };
    if let Err(error) = sent {
        tracing::error!(%error, "the notice to the old address could not be sent");
    }
    Ok(change.new_email.masked())
}

/// What the "not me" link did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// The change was still pending: it will never apply.
    Pending,
    /// The change had been applied: the old address is the resident's again.
    Reverted,
}

/// Opens the "not me" link sent to the old address: every pending address
/// change and reset link dies, every session ends; and if whoever asked
/// has already confirmed the new address, the old one is put back.
#[tracing::instrument(skip_all)]
pub async fn cancel_email_change(
    services: &Services,
    presented: &str,
    requester: &Requester,
) -> Result<Cancelled, EmailChangeError> {
    let token = SecretToken::from_presented(presented).ok_or(EmailChangeError::InvalidToken)?;
    let record = services.store.tokens.cancel_record(&token.hash()).await?.ok_or(EmailChangeError::InvalidToken)?;
    if record.expires_at <= clock::now().unix_timestamp() {
        return Err(EmailChangeError::Expired);
    }
    let current = services.store.residents.get(&record.account).await?;
    let applied = current.as_ref().is_some_and(|r| r.email == record.new_email);
    let outcome = if applied {
        match services.store.residents.revert_email_change(&record, &token.hash()).await {
            Ok(true) => Cancelled::Reverted,
            Ok(false) => return Err(EmailChangeError::InvalidToken),
            Err(InsertResidentError::EmailTaken | InsertResidentError::AccountTaken) => {
                // The old address belongs to someone else now: sessions and
                // reset links still end, and the office restores access.
                services.store.residents.cancel_email_changes(&record.account, &token.hash()).await?;
                return Err(EmailChangeError::Taken);
            }
            Err(InsertResidentError::Unexpected(e)) => return Err(e.into()),
        }
    } else {
        if !services.store.residents.cancel_email_changes(&record.account, &token.hash()).await? {
            return Err(EmailChangeError::InvalidToken);
        }
        Cancelled::Pending
    };
    tracing::info!(reverted = applied, "address change cancelled");
    let entry = Entry {
        account: Some(&record.account),
        requester: Some(requester),
        detail: Some("cancelled"),
        ..Entry::default()
    };
    audit::record(services, AuditEvent::EmailChangeCancelled, entry).await;
    Ok(outcome)
}
