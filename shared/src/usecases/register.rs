//! Registration: the form is valid, the account and payer are in the billing
//! data, neither the account nor the address is taken; then the resident is
//! stored and the confirmation letter sent.

use crate::audit::{self, AuditEvent, Entry, Requester};
use crate::clock;
use crate::domain::BillingAccount;
use crate::domain::{
    AccountNumber, Consent, Email, FullName, NewRegistration, PRIVACY_POLICY_VERSION, RegistrationForm,
    RejectionReason, Resident, ResidentStatus, SecretToken, Undeliverable, hash_password, new_address_nonce,
};
use crate::errors::{Context, ErrorCode, FieldError, Refusal, Unexpected};
use crate::letters;
use crate::limits::{self, Counted, RateLimited, Subject};
use crate::links::Links;
use crate::metrics;
use crate::services::Services;
use crate::store::{ConfirmationRecord, InsertResidentError, LockRecord, RegistrationReads};
use crate::usecases::identify;

#[derive(Debug)]
pub struct Registered {
    pub email: Email,
    pub email_suggestion: Option<Email>,
    /// False when SES refused the letter: the registration is kept and the
    /// resident is told how to get the letter again.
    pub letter_sent: bool,
    /// For the status page cookie: this browser may see how the
    /// registration goes (no password needed, nothing secret shown).
    pub status_token: SecretToken,
    pub status_valid_for: std::time::Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("the registration was refused")]
    Refused(Vec<FieldError>),
    #[error(transparent)]
    RateLimited(#[from] RateLimited),
    /// Too many name mismatches for the account: registration of it pauses.
    #[error("registration of the account is paused")]
    Paused { retry_after_seconds: u64, error: FieldError },
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

/// One of the account's daily name checks, taken before the name is
/// compared, so a burst of parallel guesses gets no more comparisons than
/// the budget (a check that matches is given back, so only mismatches
/// spend it).
struct NameCheck {
    taken_at: time::OffsetDateTime,
}

impl NameCheck {
    /// Takes a check; `Ok(None)` past the budget.
    async fn take(services: &Services, account: &AccountNumber) -> Result<Option<Self>, Unexpected> {
        let budget = limits::NAME_MISMATCHES_PER_ACCOUNT;
        let taken_at = clock::now();
        let subject = Subject::Account(account.clone());
        let within =
            services.store.counters.count(budget.action, &subject, budget.window, budget.attempts, taken_at).await?;
        Ok(within.is_ok().then_some(Self { taken_at }))
    }

    /// Gives the check back: the name matched, or a fault of ours cut the
    /// registration short.
    async fn give_back(&self, services: &Services, account: &AccountNumber) -> Result<(), Unexpected> {
        let budget = limits::NAME_MISMATCHES_PER_ACCOUNT;
        let subject = Subject::Account(account.clone());
        services.store.counters.refund(budget.action, &subject, budget.window, self.taken_at).await
    }
}

/// The account's billing data, unless its registration is paused or it is
/// not in the billing data (answered in that order).
fn payable<'a>(
    account: &AccountNumber,
    pause: Option<&LockRecord>,
    billing: Option<&'a BillingAccount>,
) -> Result<&'a BillingAccount, RegisterError> {
    let now_ms = i64::try_from(clock::now().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
    if let Some(limited) = pause.and_then(|record| limits::locked_at(record, now_ms)) {
        return Err(paused_error(limited.retry_after_seconds));
    }
    billing.ok_or_else(|| {
        RegisterError::Refused(vec![FieldError::refused(Refusal::AccountNotFound { account: account.to_string() })])
    })
}

/// Past the budget of name checks: the account's registration pauses
/// (audited).
async fn pause_registration(services: &Services, account: &AccountNumber, entry: Entry<'_>) -> RegisterError {
    let now_ms = i64::try_from(clock::now().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
    let pause = i64::try_from(limits::REGISTRATION_PAUSE.as_millis()).unwrap_or(i64::MAX);
    let until = now_ms.saturating_add(pause);
    if let Err(error) = services.store.counters.lock(&Subject::Registration(account.clone()), until).await {
        return error.into();
    }
    tracing::warn!("registration of an account paused after too many name checks");
    audit::record(services, AuditEvent::RegistrationPaused, entry).await;
    paused_error(limits::REGISTRATION_PAUSE.as_secs())
}

fn paused_error(retry_after_seconds: u64) -> RegisterError {
    RegisterError::Paused { retry_after_seconds, error: FieldError::refused(Refusal::RegistrationPaused) }
}

fn name_mismatch(full_name: &FullName, billing: &BillingAccount) -> Result<(), RegisterError> {
    if full_name.matches(&billing.full_name) {
        Ok(())
    } else {
        Err(RegisterError::Refused(vec![FieldError::refused(Refusal::NameMismatch)]))
    }
}

/// One line per refused registration and code (the funnel's
/// `Registrations` metric: which field residents stumble on); a successful
/// one is counted by "resident registered".
fn log_outcome(result: &Result<Registered, RegisterError>) {
    let codes: Vec<String> = match result {
        Ok(_) => return,
        Err(RegisterError::Refused(errors)) => {
            let mut codes: Vec<String> = errors.iter().map(|e| metrics::code(e.code)).collect();
            codes.sort();
            codes.dedup();
            codes
        }
        Err(RegisterError::RateLimited(_)) => vec![metrics::code(ErrorCode::RateLimited)],
        Err(RegisterError::Paused { .. }) => vec![metrics::code(ErrorCode::RegistrationPaused)],
        Err(RegisterError::Unexpected(e)) if e.is_transient() => vec![metrics::code(ErrorCode::Unavailable)],
        Err(RegisterError::Unexpected(_)) => vec![metrics::code(ErrorCode::Internal)],
    };
    for outcome in &codes {
        tracing::info!(metric = metrics::REGISTRATIONS, outcome = outcome.as_str(), "registration refused");
    }
}

#[tracing::instrument(skip_all, fields(account))]
pub async fn register(
    services: &Services,
    form: &RegistrationForm,
    base_url: &str,
    requester: &Requester,
) -> Result<Registered, RegisterError> {
    let mut counted = Counted::default();
    let result = register_counting(services, form, base_url, requester, &mut counted).await;
    // A fault of ours does not use up the tries of the address or the account.
    if matches!(result, Err(RegisterError::Unexpected(_))) {
        counted.give_back(services).await;
    }
    log_outcome(&result);
    result
}

/// Registration, counting its attempts into `counted`. Three round trips
/// to DynamoDB, the letter going with the last: the address's attempt is
/// counted while everything the answer depends on is read; the account's
/// attempt and a name check are counted together (one transaction: an
/// attempt refused by one never takes from the other, so a flood past one
/// limit cannot use up the other); then the registration is stored with
/// its links while the name check that matched is given back; then the
/// letter goes while the audit record is written.
async fn register_counting(
    services: &Services,
    form: &RegistrationForm,
    base_url: &str,
    requester: &Requester,
    counted: &mut Counted,
) -> Result<Registered, RegisterError> {
    let entry = Entry { requester: Some(requester), ..Entry::default() };
    let ip = Subject::ip(&requester.ip);
    let ip_checks = [(limits::REGISTER_PER_IP, &ip)];
    let registration = match NewRegistration::parse(form) {
        Ok(registration) => registration,
        Err(errors) => {
            counted.check(services, &ip_checks, entry).await??;
            return Err(RegisterError::Refused(errors));
        }
    };
    tracing::Span::current().record("account", registration.account.as_str());
    let entry = Entry { account: Some(&registration.account), ..entry };
    let account = &registration.account;
    let subject = Subject::Account(account.clone());
    // Reads count nothing, so they go with the address's count.
    let (limited, held, billing) = tokio::join!(
        counted.check(services, &ip_checks, entry),
        services.store.residents.for_registration(account, &registration.email),
        services.store.billing.get(account),
    );
    limited??;
    let (held, billing) = (held?, billing?);
    let billing = match payable(account, held.pause.as_ref(), billing.as_ref()) {
        Ok(billing) => billing,
        Err(refusal) => {
            // Counted as an attempt on the account all the same.
            counted.check(services, &[(limits::REGISTER_PER_ACCOUNT, &subject)], entry).await??;
            return Err(refusal);
        }
    };
    let (per_account, budget) = (limits::REGISTER_PER_ACCOUNT, limits::NAME_MISMATCHES_PER_ACCOUNT);
    let taken_at = clock::now();
    let both = services
        .store
        .counters
        .count_both(
            (per_account.action, &subject, per_account.window, per_account.attempts),
            (budget.action, &subject, budget.window, budget.attempts),
            taken_at,
        )
        .await?;
    match both {
        Ok(()) => counted.note(per_account, &subject, taken_at),
        Err((true, retry_after_seconds)) => {
            let detail = Some(per_account.action.as_str());
            audit::record(services, AuditEvent::RateLimited, Entry { detail, ..entry }).await;
            return Err(RateLimited { retry_after_seconds }.into());
        }
        Err((false, _)) => return Err(pause_registration(services, account, entry).await),
    }
    let name_check = NameCheck { taken_at };
    name_mismatch(&registration.full_name, billing)?;
    let stored = store_checked(services, &registration, &held, &name_check, base_url, requester).await;
    let (resident, status_token, confirmation) = match stored {
        Ok(stored) => stored,
        Err(error) => {
            // A fault of ours, or a refusal after the name matched: the
            // check is not spent.
            name_check.give_back(services, account).await?;
            return Err(error);
        }
    };
    tracing::info!(metric = metrics::REGISTRATIONS, outcome = "registered", "resident registered");
    let entry = Entry { account: Some(&resident.account), requester: Some(requester), ..Entry::default() };
    let (letter_sent, ()) = tokio::join!(
        send_stored_confirmation(services, &resident, confirmation, base_url),
        audit::record(services, AuditEvent::Registered, entry)
    );
    Ok(Registered {
        email: registration.email.clone(),
        email_suggestion: registration.email_suggestion.clone(),
        letter_sent,
        status_token,
        status_valid_for: services.config.confirmation_token_ttl,
    })
}

/// The name matched: unless the account or the address is held, the
/// registration is stored while its name check is given back.
async fn store_checked(
    services: &Services,
    registration: &NewRegistration,
    held: &RegistrationReads,
    name_check: &NameCheck,
    base_url: &str,
    requester: &Requester,
) -> Result<(Resident, SecretToken, NewConfirmation), RegisterError> {
    // These reads only order the answers as the contract lists them; the
    // transaction is what guarantees uniqueness.
    if held.resident.is_some() || held.link.is_some() {
        return Err(RegisterError::Refused(vec![FieldError::refused(Refusal::AlreadyRegistered)]));
    }
    if held.email_holder.is_some() {
        return Err(RegisterError::Refused(vec![FieldError::refused(Refusal::EmailHasCabinet)]));
    }
    let password_hash = hash_password(registration.password.clone()).await.context("hashing a password")?;
    let (stored, given_back) = tokio::join!(
        store_registration(services, registration, password_hash, base_url, requester),
        name_check.give_back(services, &registration.account)
    );
    let stored = stored?;
    // Stored; a failed give-back only leaves the check spent.
    if let Err(error) = given_back {
        tracing::warn!(%error, "a name check that matched could not be given back");
    }
    Ok(stored)
}

/// The account is in the billing data and `full_name` is its payer's, as
/// adding an account requires: refused while the account's registration is
/// paused, and each mismatch spends the account's budget of name checks
/// (the rules registration applies to what it reads in its first round).
pub(crate) async fn check_payer(
    services: &Services,
    account: &AccountNumber,
    full_name: &FullName,
    entry: Entry<'_>,
) -> Result<(), RegisterError> {
    let pause = Subject::Registration(account.clone());
    let (pause, billing) =
        tokio::join!(services.store.counters.lock_record(&pause), services.store.billing.get(account));
    let (pause, billing) = (pause?, billing?);
    let billing = payable(account, pause.as_ref(), billing.as_ref())?;
    let Some(name_check) = NameCheck::take(services, account).await? else {
        return Err(pause_registration(services, account, entry).await);
    };
    name_mismatch(full_name, billing)?;
    // Only mismatches spend the budget: a name that matched is given back.
    name_check.give_back(services, account).await?;
    Ok(())
}

/// Stores a new registration: the resident, the claim of their address,
/// the status cookie's token and the first confirmation link, in one
/// transaction.
async fn store_registration(
    services: &Services,
    registration: &NewRegistration,
    password_hash: String,
    base_url: &str,
    requester: &Requester,
) -> Result<(Resident, SecretToken, NewConfirmation), RegisterError> {
    let status_token = SecretToken::generate().context("generating a status token")?;
    let now = clock::now();
    let resident = Resident {
        account: registration.account.clone(),
        full_name: registration.full_name.clone(),
        phone: registration.phone.clone(),
        email: registration.email.clone(),
        password_hash,
        status: ResidentStatus::AwaitingEmailConfirmation,
        registered_at: now,
        address_nonce: new_address_nonce().context("generating an address nonce")?,
        confirmed_at: None,
        ready_at: None,
        identified_at: None,
        rejection_reason: None,
        cabinet_url: Some(base_url.to_owned()),
        reset_token_hash: None,
        session_epoch: 0,
        consent: Some(Consent {
            given_at: now,
            policy_version: PRIVACY_POLICY_VERSION.to_owned(),
            ip: requester.ip.clone(),
        }),
        email_undeliverable: None,
        expires_at: Some((now + services.config.unconfirmed_expiry).unix_timestamp()),
        suspended_for: None,
        linked_accounts: Vec::new(),
    };
    let confirmation = NewConfirmation::of(services, &resident)?;
    let status_expires_at = now + services.config.confirmation_token_ttl;
    let link = (&confirmation.token.hash(), &confirmation.record);
    match services.store.residents.insert(&resident, &status_token.hash(), status_expires_at, link).await {
        Ok(()) => Ok((resident, status_token, confirmation)),
        Err(InsertResidentError::AccountTaken) => {
            Err(RegisterError::Refused(vec![FieldError::refused(Refusal::AlreadyRegistered)]))
        }
        Err(InsertResidentError::EmailTaken) => {
            Err(RegisterError::Refused(vec![FieldError::refused(Refusal::EmailHasCabinet)]))
        }
        Err(InsertResidentError::Unexpected(e)) => Err(e.into()),
    }
}

/// The registration as its status page shows it.
#[derive(Debug)]
pub struct RegistrationStatus {
    pub account: crate::domain::AccountNumber,
    pub status: ResidentStatus,
    pub masked_email: String,
    /// Why mail to the address does not arrive, if it does not.
    pub undeliverable: Option<Undeliverable>,
    pub ready_at: Option<time::OffsetDateTime>,
    /// Identification is long overdue and running it now failed too.
    pub delayed: bool,
    pub rejection: Option<RejectionReason>,
}

/// The status of the registration whose status cookie this is; `None` when
/// there is no such cookie or it expired.
#[tracing::instrument(skip_all)]
pub async fn registration_status(
    services: &Services,
    presented: Option<&str>,
    base_url: &str,
) -> Result<Option<RegistrationStatus>, Unexpected> {
    let Some(token) = presented.and_then(SecretToken::from_presented) else {
        return Ok(None);
    };
    let Some(account) = services.store.tokens.status_account(&token.hash(), clock::now()).await? else {
        return Ok(None);
    };
    let Some(resident) = services.store.residents.get(&account).await? else {
        return Ok(None);
    };
    let first = identify::catch_up(services, resident.first_account(), base_url).await;
    Ok(Some(RegistrationStatus {
        account,
        status: first.status,
        undeliverable: resident.email_undeliverable.clone(),
        masked_email: resident.email.masked(),
        ready_at: first.ready_at,
        delayed: identify::is_overdue(services, &first, clock::now()),
        rejection: first.rejection_reason,
    }))
}

/// A new confirmation link for the resident's current address, not yet
/// stored.
struct NewConfirmation {
    token: SecretToken,
    record: ConfirmationRecord,
}

impl NewConfirmation {
    fn of(services: &Services, resident: &Resident) -> Result<Self, Unexpected> {
        let token = SecretToken::generate().context("generating a confirmation token")?;
        let now = clock::now().unix_timestamp();
        let lifetime = i64::try_from(services.config.confirmation_token_ttl.as_secs()).unwrap_or(i64::MAX);
        // A link cannot outlive its registration.
        let expires_at =
            resident.expires_at.map_or(now.saturating_add(lifetime), |end| end.min(now.saturating_add(lifetime)));
        let record = ConfirmationRecord {
            account: resident.account.clone(),
            address_nonce: resident.address_nonce.clone(),
            sent_at: now,
            expires_at,
        };
        Ok(Self { token, record })
    }
}

/// Sends a confirmation letter with a new link to the resident's current
/// address; links sent before keep working. A failure is logged and
/// reported as false, never as a lost registration.
///
/// The link is stored before the letter goes and removed when SES refuses
/// it: until SES accepts the letter the token exists nowhere else, so
/// nobody can open it, and a letter that went never carries a link that
/// was not stored. When SES gives no answer (or a 5xx), the letter may
/// have gone, and the link is kept.
pub async fn send_confirmation_letter(services: &Services, resident: &Resident, base_url: &str) -> bool {
    let stored = async {
        let confirmation = NewConfirmation::of(services, resident)?;
        services.store.tokens.put_confirmation(&confirmation.token.hash(), &confirmation.record).await?;
        Ok::<_, Unexpected>(confirmation)
    };
    match stored.await {
        Ok(confirmation) => send_stored_confirmation(services, resident, confirmation, base_url).await,
        Err(error) => {
            tracing::error!(error = %error, "the confirmation letter could not be sent");
            false
        }
    }
}

/// Sends the letter of a confirmation link already stored (see
/// [`send_confirmation_letter`]).
async fn send_stored_confirmation(
    services: &Services,
    resident: &Resident,
    confirmation: NewConfirmation,
    base_url: &str,
) -> bool {
    match try_send_stored(services, resident, confirmation, base_url).await {
        Ok(sent) => sent,
        Err(error) => {
            tracing::error!(error = %error, "the confirmation letter could not be sent");
            false
        }
    }
}

async fn try_send_stored(
    services: &Services,
    resident: &Resident,
    confirmation: NewConfirmation,
    base_url: &str,
) -> Result<bool, Unexpected> {
    let NewConfirmation { token, record } = confirmation;
    let link = Links::new(base_url).confirm(&token, &resident.account);
    // The letter says how long this link works, which its registration's
    // expiry may cut short.
    let valid_for = std::time::Duration::from_secs(u64::try_from(record.expires_at - record.sent_at).unwrap_or(0));
    let config = &services.config;
    let letter = letters::confirmation(&resident.email, &resident.account, &link, valid_for, config.identify_delay)?;
    if let Err(error) = services.mailer.send(&letter).await {
        // No answer, or a 5xx: the letter may well have gone (its answer
        // lost or late), so its link stays; nobody else knows the token.
        if error.aws.outcome_unknown() {
            tracing::error!(error = %error, "SES did not say whether the confirmation letter went; its link is kept");
            return Ok(false);
        }
        tracing::error!(error = %error, "SES refused the confirmation letter");
        services.store.tokens.delete_confirmation(&token.hash()).await?;
        return Ok(false);
    }
    Ok(true)
}

/// A new confirmation letter for an unconfirmed resident, within the
/// mailbox's letter limit; a letter SES refused does not count. False when
/// nothing was sent.
pub async fn resend_confirmation(services: &Services, resident: &Resident, base_url: &str) -> Result<bool, Unexpected> {
    if !limits::mailbox_allows(services, &resident.email).await? {
        return Ok(false);
    }
    let sent = send_confirmation_letter(services, resident, base_url).await;
    if !sent {
        limits::give_back_letter(services, &resident.email).await?;
    }
    Ok(sent)
}
