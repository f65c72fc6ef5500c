//! Login: one answer for an unknown login and a wrong password, a growing
//! lock after repeated failures (per resident; no verdict is given before
//! its attempt is counted: login writes the count with its verdict in one
//! transaction, every other endpoint that checks a password counts first,
//! through [`check_password`]), then the stage the resident is at, or a new
//! session. Sessions end when idle, when too old, at logout and at a
//! password reset.

use time::OffsetDateTime;

use crate::audit::{self, AuditEvent, Entry, Requester};
use crate::clock;
use crate::domain::{
    AccountNumber, Login, LoginForm, Password, RejectionReason, Resident, ResidentStatus, SecretToken, TokenHash,
    Undeliverable, verify_password,
};
use crate::errors::{Context, Unexpected};
use crate::limits::{self, Counted, RateLimited, Subject};
use crate::services::Services;
use crate::store::{DeviceRecord, LockChange, LockRecord, LockSettlement, SessionOpening, SessionRecord};
use crate::usecases::register::resend_confirmation;
use crate::usecases::{cabinet, identify};

/// A new session: the token goes into the cookie, its hash into DynamoDB.
#[derive(Debug)]
pub struct Session {
    pub token: SecretToken,
    /// The absolute lifetime, for the cookie; the idle timeout may end the
    /// session sooner.
    pub lifetime: std::time::Duration,
    /// A new device cookie for this browser (see [`DEVICE_LIFETIME`]), when
    /// it had none for this resident.
    pub device: Option<SecretToken>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("unknown login or wrong password")]
    InvalidCredentials,
    #[error(transparent)]
    RateLimited(#[from] RateLimited),
    #[error("the e-mail address is not confirmed yet")]
    EmailNotConfirmed { masked_email: String, letter_sent: bool, undeliverable: Option<Undeliverable> },
    #[error("identification is pending")]
    /// `delayed`: the time has long passed and running the check now failed
    /// too (a fault of ours, not theirs).
    IdentificationPending { ready_at: Option<OffsetDateTime>, delayed: bool },
    #[error("identification failed")]
    IdentificationFailed { reason: RejectionReason },
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

pub async fn find(services: &Services, login: &str) -> Result<Option<Resident>, Unexpected> {
    match Login::parse(login) {
        Some(Login::Email(email)) => services.store.residents.by_email(&email).await,
        // Any account of a cabinet logs into it.
        Some(Login::Account(account)) => Ok(cabinet::holder(services, &account).await?.map(|held| held.person)),
        None => Ok(None),
    }
}

fn seconds(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

fn millis(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Now in milliseconds: locks and session deadlines are kept to the
/// millisecond, so a one-second boundary never shortens them.
fn now_ms() -> i64 {
    i64::try_from(clock::now().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// How long a browser that logged in is remembered (its device cookie).
pub const DEVICE_LIFETIME: std::time::Duration = std::time::Duration::from_secs(180 * 86_400);

/// Most rounds of the compare-and-swap before an attempt is refused as if
/// locked (only a burst of concurrent attempts on one subject gets there).
const MAX_SWAPS: u32 = 30;

/// Where a password attempt is counted. The visible lock (429) is the
/// browser's, when it logged in as this resident before (so a stranger
/// locking the resident does not lock it out), else the identifier's as
/// typed, known or not. A known resident's attempts are also counted under
/// the resident, whichever identifier was typed: past that silent lock
/// nothing is verified, and the answer is that of a wrong password, so the
/// lock never tells which e-mail and which account number go together.
/// Unknown identifiers count a decoy instead, with the same reads and writes.
#[derive(Debug, PartialEq, Eq)]
struct Subjects {
    visible: Subject,
    silent: Subject,
    /// False when `silent` is a decoy (unknown login or a known browser).
    silent_is_resident: bool,
}

async fn subjects(
    services: &Services,
    resident: Option<&Resident>,
    typed: &str,
    device: Option<&str>,
) -> Result<Subjects, Unexpected> {
    // The device record is read whenever a cookie is sent, known login or
    // not, so the time of the answer does not tell the two apart.
    let device = read_device(services, device).await?;
    let candidate = resident.map(|r| Candidate { account: &r.account, epoch: Some(r.session_epoch) });
    Ok(subjects_of(candidate, typed, device.as_ref()))
}

/// Who a login may be before the resident is read: their account, and
/// their session epoch once known.
#[derive(Debug, Clone, Copy)]
struct Candidate<'a> {
    account: &'a AccountNumber,
    epoch: Option<u64>,
}

/// The subjects an attempt counts under, from the resident (or the account
/// the login points at, its epoch not read yet: then a device cookie of
/// that account is taken to be current, and checked once the resident is
/// read) and the device record of the browser's cookie.
fn subjects_of(candidate: Option<Candidate<'_>>, typed: &str, device: Option<&(Subject, DeviceRecord)>) -> Subjects {
    let typed_subject = Subject::login(typed);
    let decoy = typed_subject.clone().decoy();
    let Some(candidate) = candidate else {
        return Subjects { visible: typed_subject, silent: decoy, silent_is_resident: false };
    };
    let now = clock::now().unix_timestamp();
    let known = device.filter(|(_, record)| {
        record.expires_at > now
            && record.account == *candidate.account
            && candidate.epoch.is_none_or(|epoch| record.epoch == epoch)
    });
    match known {
        Some((device, _)) => Subjects { visible: device.clone(), silent: decoy, silent_is_resident: false },
        None => Subjects {
            visible: typed_subject,
            silent: Subject::Resident(candidate.account.clone()),
            silent_is_resident: true,
        },
    }
}

/// The device record of a presented device cookie, with its lock subject.
async fn read_device(services: &Services, device: Option<&str>) -> Result<Option<(Subject, DeviceRecord)>, Unexpected> {
    let Some(token) = device.and_then(SecretToken::from_presented) else {
        return Ok(None);
    };
    let hash = token.hash();
    let record = services.store.sessions.device(&hash).await?;
    Ok(record.map(|record| (Subject::Device(hash), record)))
}

/// Whether a device record is, at `now` (Unix seconds), that of a browser
/// that logged in as `resident` since their last reset.
fn device_matches(record: &DeviceRecord, resident: &Resident, now: i64) -> bool {
    record.expires_at > now && record.account == resident.account && record.epoch == resident.session_epoch
}

/// When `device` is the cookie of a browser that logged in as `resident`
/// (and no reset happened since), the subject its attempts count under.
pub async fn known_device(
    services: &Services,
    resident: &Resident,
    device: Option<&str>,
) -> Result<Option<Subject>, Unexpected> {
    let device = read_device(services, device).await?;
    let now = clock::now().unix_timestamp();
    Ok(device.and_then(|(subject, record)| device_matches(&record, resident, now).then_some(subject)))
}

/// An attempt counted against a lock by [`admit_attempt`], with what it
/// changed, so that an attempt a fault of ours cut short can be given back.
struct Admitted {
    subject: Subject,
    /// The number of the attempt in a row.
    attempt: u32,
    before: Option<LockRecord>,
    after: LockRecord,
}

/// Gives back an admitted attempt that a fault of ours cut short (nothing
/// was verified, or the password was right): the record goes back to what
/// it was, unless another attempt moved it on meanwhile. Best effort: the
/// store may be what failed.
async fn give_back_attempt(services: &Services, admitted: &Admitted) {
    let before = admitted.before.unwrap_or_default();
    if let Err(error) =
        services.store.counters.swap_lock_record(&admitted.subject, Some(admitted.after.failures), &before).await
    {
        tracing::warn!(%error, "a login attempt cut short by a fault could not be given back");
    }
}

/// Counts an attempt of `subject` before its password is verified, refusing
/// it while the subject is locked. The count and the lock it would earn
/// are written together by a compare-and-swap, so of a burst of concurrent
/// attempts each sees the one before it: no more are verified than the lock
/// schedule allows.
///
/// Every attempt costs the same calls, record or not (read, then swapped):
/// a count that cost more when the resident's lock has a record would
/// tell, by its time, which address goes with which account number (a
/// probe found it when the first swap was tried blind).
async fn admit_attempt(
    services: &Services,
    subject: &Subject,
    now_ms: i64,
) -> Result<Result<Admitted, RateLimited>, Unexpected> {
    for _ in 0..MAX_SWAPS {
        let stored = services.store.counters.lock_record(subject).await?;
        let next = match limits::next_attempt(stored, now_ms, services.config.login_lock_base) {
            Ok(next) => next,
            Err(limited) => return Ok(Err(limited)),
        };
        if services.store.counters.swap_lock_record(subject, stored.map(|r| r.failures), &next).await? {
            let subject = subject.clone();
            return Ok(Ok(Admitted { subject, attempt: next.failures, before: stored, after: next }));
        }
    }
    tracing::warn!("too many concurrent attempts on one login");
    Ok(Err(RateLimited { retry_after_seconds: 1 }))
}

/// A password that checked out, for a resident, counted under `subjects`.
pub struct Verified {
    pub resident: Resident,
    subjects: Subjects,
    /// The attempts counted for it (the visible lock's first).
    admitted: Vec<Admitted>,
}

impl std::fmt::Debug for Verified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verified").field("attempt", &self.attempt()).finish_non_exhaustive()
    }
}

impl Verified {
    fn attempt(&self) -> u32 {
        self.admitted.first().map_or(0, |a| a.attempt)
    }

    /// The attempt succeeded: the failures before it are forgotten. When
    /// that fails, the attempt is at least given back: a right password is
    /// no failure, whatever happened to the store.
    pub async fn accept(self, services: &Services) -> Result<Resident, Unexpected> {
        // Both locks at once: they are independent items.
        let silent = async {
            if self.subjects.silent_is_resident {
                services.store.counters.clear_lock(&self.subjects.silent).await
            } else {
                Ok(())
            }
        };
        let cleared = match tokio::join!(services.store.counters.clear_lock(&self.subjects.visible), silent) {
            (Ok(()), Ok(())) => Ok(()),
            (Err(error), _) | (_, Err(error)) => Err(error),
        };
        if let Err(error) = cleared {
            for admitted in &self.admitted {
                give_back_attempt(services, admitted).await;
            }
            return Err(error);
        }
        Ok(self.resident)
    }

    /// The password was right but the resident's state does not allow what
    /// was asked: answered and counted exactly like a wrong password, so the
    /// answer tells nothing about the password.
    pub async fn refuse(self, services: &Services, entry: Entry<'_>) {
        failed(services, self.attempt(), Entry { detail: Some("state"), ..entry }).await;
    }
}

async fn failed(services: &Services, attempt: u32, entry: Entry<'_>) {
    audit::record(services, AuditEvent::LoginFailed, entry).await;
    if let Some(lock) = limits::lock_duration(attempt, services.config.login_lock_base) {
        log_lockout(attempt, lock);
        audit::record(services, AuditEvent::Locked, entry).await;
    }
}

/// The `Lockouts` metric: a failure that earned a lock.
fn log_lockout(failures: u32, lock: std::time::Duration) {
    tracing::warn!(metric = crate::metrics::LOCKOUTS, failures, lock_seconds = lock.as_secs(), "login locked");
}

/// Checks a password the way every endpoint that takes one must: the
/// attempt counted against the lock first (refused while locked), one
/// argon2 verification whether or not the resident exists, a wrong password
/// audited as `login_failed`. `Ok(None)`: unknown login or wrong password.
/// `device` is the browser's device cookie, if it sent one.
pub async fn check_password(
    services: &Services,
    typed: &str,
    resident: Option<Resident>,
    password: Password,
    device: Option<&str>,
    entry: Entry<'_>,
) -> Result<Result<Option<Verified>, RateLimited>, Unexpected> {
    let subjects = subjects(services, resident.as_ref(), typed, device).await?;
    let now = now_ms();
    let admission = admit_both(services, &subjects, now).await?;
    verify(services, resident, password, subjects, admission, entry).await
}

/// Both locks' attempts, counted at once: the visible lock's, and the
/// resident's own (or its decoy).
struct Admission {
    visible: Result<Admitted, RateLimited>,
    silent: Result<Admitted, RateLimited>,
}

/// The records of both subjects' locks, as read.
struct LockReads {
    visible: Option<LockRecord>,
    silent: Option<LockRecord>,
}

async fn read_locks(services: &Services, subjects: &Subjects) -> Result<LockReads, Unexpected> {
    let counters = &services.store.counters;
    let (visible, silent) =
        tokio::join!(counters.lock_record(&subjects.visible), counters.lock_record(&subjects.silent));
    Ok(LockReads { visible: visible?, silent: silent? })
}

/// Counts an attempt under both subjects at once. A fault of ours gives
/// back what was counted.
async fn admit_both(services: &Services, subjects: &Subjects, now: i64) -> Result<Admission, Unexpected> {
    let (visible, silent) =
        tokio::join!(admit_attempt(services, &subjects.visible, now), admit_attempt(services, &subjects.silent, now));
    match (visible, silent) {
        (Ok(visible), Ok(silent)) => Ok(Admission { visible, silent }),
        (Ok(Ok(admitted)), Err(error)) | (Err(error), Ok(Ok(admitted))) => {
            give_back_attempt(services, &admitted).await;
            Err(error)
        }
        (Ok(_), Err(error)) | (Err(error), Ok(_)) | (Err(error), Err(_)) => Err(error),
    }
}

/// The password, past both locks: refused while the visible lock holds
/// (the resident's own attempt, counted alongside, given back: counted in
/// turn, it never would have been); past the resident's own lock the hash
/// is not looked at, and the answer is that of a wrong password. One argon2
/// verification whether or not the resident exists (or is locked), so all
/// take the same time; a wrong password audited as `login_failed`.
async fn verify(
    services: &Services,
    resident: Option<Resident>,
    password: Password,
    subjects: Subjects,
    admission: Admission,
    entry: Entry<'_>,
) -> Result<Result<Option<Verified>, RateLimited>, Unexpected> {
    let Admission { visible, silent } = admission;
    let visible = match visible {
        Ok(admitted) => admitted,
        Err(limited) => {
            if let Ok(silent) = &silent {
                give_back_attempt(services, silent).await;
            }
            audit::record(services, AuditEvent::RateLimited, Entry { detail: Some("login-lock"), ..entry }).await;
            return Ok(Err(limited));
        }
    };
    // Past the resident's own lock the password is not looked at.
    let open = silent.is_ok() || !subjects.silent_is_resident;
    let mut admitted = vec![visible];
    admitted.extend(silent.ok());
    let phc = resident.as_ref().filter(|_| open).map(|r| r.password_hash.clone());
    let verified = match verify_password(password, phc).await.context("verifying a password") {
        Ok(verified) => verified && open && resident.is_some(),
        // Cut short by a fault of ours before a verdict: no failure of theirs.
        Err(error) => {
            for attempt in &admitted {
                give_back_attempt(services, attempt).await;
            }
            return Err(error);
        }
    };
    match resident.filter(|_| verified) {
        Some(resident) => Ok(Ok(Some(Verified { resident, subjects, admitted }))),
        None => {
            tracing::info!("login refused");
            failed(services, admitted.first().map_or(0, |a| a.attempt), entry).await;
            Ok(Ok(None))
        }
    }
}

/// Logs in; `previous` is the session cookie the browser still sent, which
/// is revoked (the token changes at every login); `device` its device cookie.
///
/// Three round trips to DynamoDB, the same whoever the login is and
/// whatever its locks hold: the address's attempt is counted while the
/// login is looked up and the device cookie read; the resident is read with
/// both locks' records; then, the password verified, one transaction writes
/// the verdict: the attempt counted under both locks with its audit
/// records, or the locks cleared with the session, the device and the
/// audit record. A concurrent attempt that moved a lock costs a read and a
/// try more.
#[tracing::instrument(skip_all)]
pub async fn login(
    services: &Services,
    form: &LoginForm,
    base_url: &str,
    requester: &Requester,
    previous: Option<&str>,
    device: Option<&str>,
) -> Result<Session, LoginError> {
    let typed = form.login.as_deref().unwrap_or_default();
    let entry = Entry { login: Some(typed), requester: Some(requester), ..Entry::default() };
    let mut counted = Counted::default();
    let ip = Subject::ip(&requester.ip);
    let checks = [(limits::LOGIN_PER_IP, &ip)];
    let (limited, looked_up, device_record) =
        tokio::join!(counted.check(services, &checks, entry), look_up(services, typed), read_device(services, device),);
    let result = match limited {
        Ok(Ok(())) => {
            let first = FirstRound { looked_up, device_record };
            login_counted(services, form, base_url, previous, first, entry).await
        }
        Ok(Err(limited)) => Err(limited.into()),
        Err(error) => Err(error.into()),
    };
    // A fault of ours does not use up the address's tries.
    if matches!(result, Err(LoginError::Unexpected(_))) {
        counted.give_back(services).await;
    }
    log_outcome(&result);
    result
}

/// What a login identifier points at after its first read.
enum LookedUp {
    /// The resident (an account number they registered with).
    Found(Box<Resident>),
    /// The account whose resident is read next: an address's claim, or the
    /// cabinet an added account belongs to; `email`: the address typed,
    /// which the resident must still have.
    Pending {
        account: AccountNumber,
        email: Option<crate::domain::Email>,
    },
    Nobody,
}

/// The first read of a login: an address's claim, or who holds an account.
async fn look_up(services: &Services, typed: &str) -> Result<LookedUp, Unexpected> {
    Ok(match Login::parse(typed) {
        Some(Login::Email(email)) => match services.store.residents.claimed_by(&email).await? {
            Some(account) => LookedUp::Pending { account, email: Some(email) },
            None => LookedUp::Nobody,
        },
        Some(Login::Account(account)) => match services.store.residents.with_link(&account).await? {
            (Some(resident), _) => LookedUp::Found(Box::new(resident)),
            (None, Some(link)) => LookedUp::Pending { account: link.person, email: None },
            (None, None) => LookedUp::Nobody,
        },
        None => LookedUp::Nobody,
    })
}

impl LookedUp {
    fn candidate(&self) -> Option<Candidate<'_>> {
        match self {
            Self::Found(resident) => {
                Some(Candidate { account: &resident.account, epoch: Some(resident.session_epoch) })
            }
            Self::Pending { account, .. } => Some(Candidate { account, epoch: None }),
            Self::Nobody => None,
        }
    }

    /// The resident, read if need be. Nobody costs the same read (a decoy
    /// key), so the time of the answer does not tell a known login.
    async fn resident(self, services: &Services) -> Result<Option<Resident>, Unexpected> {
        match self {
            // Read already; the decoy read keeps the calls those of an
            // account number nobody has.
            Self::Found(resident) => {
                services.store.residents.read_decoy().await?;
                Ok(Some(*resident))
            }
            Self::Pending { account, email } => {
                let resident = services.store.residents.get(&account).await?;
                // A claim left by an expired registration may point at an
                // account registered again since, with another address.
                Ok(resident.filter(|r| email.as_ref().is_none_or(|email| r.email == *email)))
            }
            Self::Nobody => {
                services.store.residents.read_decoy().await?;
                Ok(None)
            }
        }
    }
}

/// What the first round of a login read.
struct FirstRound {
    looked_up: Result<LookedUp, Unexpected>,
    device_record: Result<Option<(Subject, DeviceRecord)>, Unexpected>,
}

/// The funnel's `Logins` metric: one line per login attempt, by outcome.
fn log_outcome(result: &Result<Session, LoginError>) {
    let outcome = match result {
        Ok(_) => "logged_in",
        Err(LoginError::InvalidCredentials) => "invalid_credentials",
        Err(LoginError::RateLimited(_)) => "rate_limited",
        Err(LoginError::EmailNotConfirmed { .. }) => "email_not_confirmed",
        Err(LoginError::IdentificationPending { .. }) => "identification_pending",
        Err(LoginError::IdentificationFailed { .. }) => "identification_failed",
        Err(LoginError::Unexpected(e)) if e.is_transient() => "unavailable",
        Err(LoginError::Unexpected(_)) => "internal",
    };
    tracing::info!(metric = crate::metrics::LOGINS, outcome, "login answered");
}

/// Login once the address's attempt is counted.
///
/// The password is verified against the locks as read, and the verdict is
/// then written in one transaction that holds only while both locks are
/// still as read: a failure counted with the lock it earns, or a success
/// clearing the locks with the session it opens. An attempt whose locks
/// moved meanwhile (a concurrent attempt) reads them again and is judged
/// after that one, refused if they locked: so no more verdicts are given
/// than the lock schedule allows, and none before its attempt is counted.
async fn login_counted(
    services: &Services,
    form: &LoginForm,
    base_url: &str,
    previous: Option<&str>,
    first: FirstRound,
    entry: Entry<'_>,
) -> Result<Session, LoginError> {
    let typed = form.login.as_deref().unwrap_or_default();
    let now = now_ms();
    let device_record = first.device_record?;
    let looked_up = first.looked_up?;

    // The locks are read while the resident is, under the subjects the
    // first round points at; a device cookie from before a reset, or a
    // claim left by an expired registration, changes them once the
    // resident is read: then the right ones are read.
    let guessed = subjects_of(looked_up.candidate(), typed, device_record.as_ref());
    let (resident, locks) = tokio::join!(looked_up.resident(services), read_locks(services, &guessed));
    let (resident, mut locks) = (resident?, locks?);
    let candidate = resident.as_ref().map(|r| Candidate { account: &r.account, epoch: Some(r.session_epoch) });
    let subjects = subjects_of(candidate, typed, device_record.as_ref());
    if subjects != guessed {
        locks = read_locks(services, &subjects).await?;
    }
    let base = services.config.login_lock_base;
    if let Err(limited) = limits::next_attempt(locks.visible, now, base) {
        audit::record(services, AuditEvent::RateLimited, Entry { detail: Some("login-lock"), ..entry }).await;
        return Err(limited.into());
    }
    // Past the resident's own lock the password is not looked at.
    let open = !subjects.silent_is_resident || limits::next_attempt(locks.silent, now, base).is_ok();
    let phc = resident.as_ref().filter(|_| open).map(|r| r.password_hash.clone());
    let verified = verify_password(form.password(), phc).await.context("verifying a password")?;
    let resident = resident.filter(|_| verified && open);

    let settling = Settling { subjects: &subjects, entry };
    for _ in 0..MAX_SWAPS {
        let Some(settled) = settling.try_once(services, resident.as_ref(), &locks, previous, &device_record).await?
        else {
            locks = read_locks(services, &subjects).await?;
            continue;
        };
        return match settled {
            Settled::Refused => Err(LoginError::InvalidCredentials),
            Settled::Limited(limited) => Err(limited.into()),
            Settled::Opened(session) => Ok(session),
            Settled::Accepted(resident) => {
                not_active(services, &resident, base_url, previous, &device_record, entry).await
            }
        };
    }
    tracing::warn!("too many concurrent attempts on one login");
    Err(RateLimited { retry_after_seconds: 1 }.into())
}

/// How an attempt's verdict was written.
enum Settled {
    /// A wrong password (or none verified), counted.
    Refused,
    /// The visible lock locked meanwhile: nothing counted or told.
    Limited(RateLimited),
    /// A right password of an active resident: the session it opened.
    Opened(Session),
    /// A right password of a resident at another stage: locks cleared.
    Accepted(Box<Resident>),
}

/// What settling an attempt needs besides the locks as read.
#[derive(Clone, Copy)]
struct Settling<'a> {
    subjects: &'a Subjects,
    entry: Entry<'a>,
}

impl Settling<'_> {
    /// Writes the verdict against the locks as read; `None` when one moved
    /// since (nothing written).
    async fn try_once(
        &self,
        services: &Services,
        resident: Option<&Resident>,
        locks: &LockReads,
        previous: Option<&str>,
        device_record: &Option<(Subject, DeviceRecord)>,
    ) -> Result<Option<Settled>, Unexpected> {
        let base = services.config.login_lock_base;
        let Self { subjects, entry } = *self;
        // Each try is judged at its own time: a lock earned after retries
        // starts when it is written.
        let now = now_ms();
        let visible = match limits::next_attempt(locks.visible, now, base) {
            Ok(next) => next,
            Err(limited) => {
                audit::record(services, AuditEvent::RateLimited, Entry { detail: Some("login-lock"), ..entry }).await;
                return Ok(Some(Settled::Limited(limited)));
            }
        };
        let silent = limits::next_attempt(locks.silent, now, base).ok();
        let lock = |subject, seen: Option<LockRecord>, change| LockSettlement {
            subject,
            seen: seen.map(|r| r.failures),
            change,
        };
        // A right password still needs the resident's own lock open.
        let right = resident.filter(|_| silent.is_some() || !subjects.silent_is_resident);
        let Some(resident) = right else {
            // A failure: counted under both locks (the resident's, or its
            // decoy, only while open), with the lock it earns.
            let silent_change = silent.map_or(LockChange::Keep, LockChange::Count);
            let settlement = [
                lock(&subjects.visible, locks.visible, LockChange::Count(visible)),
                lock(&subjects.silent, locks.silent, silent_change),
            ];
            let mut records = vec![audit::item(services, AuditEvent::LoginFailed, entry)?];
            let earned = limits::lock_duration(visible.failures, base);
            if earned.is_some() {
                records.push(audit::item(services, AuditEvent::Locked, entry)?);
            }
            if !services.store.counters.settle(&settlement, None, records).await? {
                return Ok(None);
            }
            tracing::info!("login refused");
            if let Some(lock) = earned {
                log_lockout(visible.failures, lock);
            }
            return Ok(Some(Settled::Refused));
        };
        // A success forgets the failures before it; a decoy (a known
        // browser's attempt) keeps counting, as for any other attempt.
        let silent_change = match (subjects.silent_is_resident, silent) {
            (true, _) => LockChange::Clear,
            (false, Some(next)) => LockChange::Count(next),
            (false, None) => LockChange::Keep,
        };
        let settlement = [
            lock(&subjects.visible, locks.visible, LockChange::Clear),
            lock(&subjects.silent, locks.silent, silent_change),
        ];
        let entry = Entry { account: Some(&resident.account), ..entry };
        if resident.first_account().status != ResidentStatus::Active {
            if !services.store.counters.settle(&settlement, None, Vec::new()).await? {
                return Ok(None);
            }
            return Ok(Some(Settled::Accepted(Box::new(resident.clone()))));
        }
        let opening = NewSession::for_resident(services, resident, now, previous, device_record)?;
        let records = vec![audit::item(services, AuditEvent::LoginSucceeded, entry)?];
        if !services.store.counters.settle(&settlement, Some(opening.opening()), records).await? {
            return Ok(None);
        }
        tracing::info!(account = %resident.account, "logged in");
        Ok(Some(Settled::Opened(opening.into_session(services))))
    }
}

/// The answer to a right password of a resident who is not active yet (or
/// no longer): the stage they are at, after running an overdue
/// identification; a session when another account of the cabinet is active.
async fn not_active(
    services: &Services,
    resident: &Resident,
    base_url: &str,
    previous: Option<&str>,
    device_record: &Option<(Subject, DeviceRecord)>,
    entry: Entry<'_>,
) -> Result<Session, LoginError> {
    let first = identify::catch_up(services, resident.first_account(), base_url).await;
    let entry = Entry { account: Some(&resident.account), ..entry };
    // The first account decides, unless another account of the cabinet is
    // active: a payer change of one account closes only that account.
    let status = match first.status {
        ResidentStatus::AwaitingIdentification | ResidentStatus::Rejected
            if cabinet::any_linked_active(services, resident).await? =>
        {
            ResidentStatus::Active
        }
        status => status,
    };
    match status {
        ResidentStatus::Active => {
            let opening = NewSession::for_resident(services, resident, now_ms(), previous, device_record)?;
            let records = vec![audit::item(services, AuditEvent::LoginSucceeded, entry)?];
            services.store.counters.settle(&[], Some(opening.opening()), records).await?;
            tracing::info!(account = %resident.account, "logged in");
            Ok(opening.into_session(services))
        }
        ResidentStatus::AwaitingEmailConfirmation => {
            let masked_email = resident.email.masked();
            let undeliverable = resident.email_undeliverable.clone();
            // They are here because the letter did not reach them or its link
            // expired: send a fresh one, unless the address refuses mail.
            let letter_sent = match undeliverable {
                Some(_) => false,
                None => resend_confirmation(services, resident, base_url).await?,
            };
            Err(LoginError::EmailNotConfirmed { masked_email, letter_sent, undeliverable })
        }
        ResidentStatus::AwaitingIdentification => Err(LoginError::IdentificationPending {
            ready_at: first.ready_at,
            delayed: identify::is_overdue(services, &first, clock::now()),
        }),
        ResidentStatus::Rejected => Err(LoginError::IdentificationFailed {
            reason: first.rejection_reason.unwrap_or(RejectionReason::PayerChanged),
        }),
    }
}

/// A session about to be opened: its token and record, a device record for
/// a browser not known as this resident's since their last reset, and the
/// browser's previous session (ended by the new one: the token changes at
/// every login).
struct NewSession {
    token: SecretToken,
    hash: TokenHash,
    record: SessionRecord,
    device: Option<(SecretToken, TokenHash, DeviceRecord)>,
    previous: Option<TokenHash>,
}

impl NewSession {
    fn for_resident(
        services: &Services,
        resident: &Resident,
        now: i64,
        previous: Option<&str>,
        device_record: &Option<(Subject, DeviceRecord)>,
    ) -> Result<Self, Unexpected> {
        let token = SecretToken::generate().context("generating a session token")?;
        let record = SessionRecord {
            account: resident.account.clone(),
            epoch: resident.session_epoch,
            created_at_ms: now,
            last_seen_ms: now,
            expires_at: expiry(now, now, &services.config),
        };
        let now_s = clock::now().unix_timestamp();
        let known = device_record.as_ref().is_some_and(|(_, record)| device_matches(record, resident, now_s));
        let device = match known {
            true => None,
            false => {
                let token = SecretToken::generate().context("generating a device token")?;
                let record = DeviceRecord {
                    account: resident.account.clone(),
                    epoch: resident.session_epoch,
                    expires_at: now_s.saturating_add(seconds(DEVICE_LIFETIME)),
                };
                let hash = token.hash();
                Some((token, hash, record))
            }
        };
        let hash = token.hash();
        let previous = previous.and_then(SecretToken::from_presented).map(|t| t.hash());
        Ok(Self { token, hash, record, device, previous })
    }

    fn opening(&self) -> SessionOpening<'_> {
        SessionOpening {
            token: &self.hash,
            session: &self.record,
            device: self.device.as_ref().map(|(_, hash, record)| (hash, record)),
            previous: self.previous.as_ref(),
        }
    }

    fn into_session(self, services: &Services) -> Session {
        Session {
            token: self.token,
            lifetime: services.config.session_lifetime,
            device: self.device.map(|(token, _, _)| token),
        }
    }
}

/// The resident of a live session, and the session's use recorded. `None`
/// when there is no session or it ended: logged out, idle longer than the
/// idle timeout, older than the lifetime, or from before a password reset.
#[tracing::instrument(skip_all)]
pub async fn session_resident(services: &Services, presented: Option<&str>) -> Result<Option<Resident>, Unexpected> {
    let resident = session_resident_with(services, presented, |_| async { Ok(()) }).await?;
    Ok(resident.map(|(resident, ())| resident))
}

/// As [`session_resident`], with `alongside` run on the session's account
/// while the resident is read: a read the caller needs next goes in the
/// same round trip (the account page's billing data).
pub async fn session_resident_with<T, F, Fut>(
    services: &Services,
    presented: Option<&str>,
    alongside: F,
) -> Result<Option<(Resident, T)>, Unexpected>
where
    F: FnOnce(AccountNumber) -> Fut,
    Fut: std::future::Future<Output = Result<T, Unexpected>>,
{
    let Some(token) = presented.and_then(SecretToken::from_presented) else {
        return Ok(None);
    };
    let Some(session) = services.store.sessions.get(&token.hash()).await? else {
        return Ok(None);
    };
    let config = &services.config;
    let now = now_ms();
    if timed_out(&session, now, config) {
        services.store.sessions.delete(&token.hash()).await?;
        return Ok(None);
    }
    // The use is recorded while the resident is read: the touch is
    // conditional, so a session deleted below is never brought back.
    let hash = token.hash();
    let touched = services.store.sessions.touch(&hash, now, expiry(session.created_at_ms, now, config));
    let (resident, touched, extra) =
        tokio::join!(services.store.residents.get(&session.account), touched, alongside(session.account.clone()));
    touched?;
    let Some(resident) = resident? else {
        return Ok(None);
    };
    let extra = extra?;
    let linked_active =
        resident.status != ResidentStatus::Active && cabinet::any_linked_active(services, &resident).await?;
    if !speaks_for(&session, &resident, linked_active) {
        services.store.sessions.delete(&token.hash()).await?;
        return Ok(None);
    }
    Ok(Some((resident, extra)))
}

/// Whether a session has ended by time at `now_ms`: unused longer than the
/// idle timeout, or older than the lifetime however busy.
fn timed_out(session: &SessionRecord, now_ms: i64, config: &crate::config::Config) -> bool {
    let ends = session.created_at_ms.saturating_add(millis(config.session_lifetime));
    let idle_ends = session.last_seen_ms.saturating_add(millis(config.session_idle));
    now_ms >= ends || now_ms >= idle_ends
}

/// Whether a live session still speaks for `resident`: no password reset
/// (or "not me") since it began, and the cabinet is open: the first account
/// is active (an import that changed the payer suspends it), or an account
/// added to the cabinet is (`linked_active`).
fn speaks_for(session: &SessionRecord, resident: &Resident, linked_active: bool) -> bool {
    resident.session_epoch == session.epoch && (resident.status == ResidentStatus::Active || linked_active)
}

/// When DynamoDB may delete a session (TTL, in seconds): at the first of its
/// idle and its absolute deadline.
fn expiry(created_ms: i64, last_seen_ms: i64, config: &crate::config::Config) -> i64 {
    let ends = created_ms.saturating_add(millis(config.session_lifetime));
    let idle_ends = last_seen_ms.saturating_add(millis(config.session_idle));
    ends.min(idle_ends).div_euclid(1000).saturating_add(1)
}

#[tracing::instrument(skip_all)]
pub async fn logout(services: &Services, presented: &str, requester: &Requester) -> Result<(), Unexpected> {
    let Some(token) = SecretToken::from_presented(presented) else {
        return Ok(());
    };
    let account = services.store.sessions.get(&token.hash()).await?.map(|s| s.account);
    let audited = async {
        if let Some(account) = &account {
            let entry = Entry { account: Some(account), requester: Some(requester), ..Entry::default() };
            audit::record(services, AuditEvent::LoggedOut, entry).await;
        }
    };
    let hash = token.hash();
    let (deleted, ()) = tokio::join!(services.store.sessions.delete(&hash), audited);
    deleted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::domain::AccountNumber;

    /// 25.11.2026 11:05 UTC, in Unix milliseconds.
    const NOW_MS: i64 = 1_795_604_700_000;
    const MINUTE_MS: i64 = 60_000;

    /// The defaults: idle 30 min, lifetime 12 h.
    fn config() -> Config {
        let required = ["RESIDENTS_TABLE", "BILLING_TABLE", "IDENTIFY_QUEUE_URL", "MAIL_FROM", "AUDIT_TABLE"];
        Config::from_lookup(|name| required.contains(&name).then(|| "test".to_owned())).unwrap()
    }

    fn session(created_at_ms: i64, last_seen_ms: i64) -> SessionRecord {
        SessionRecord {
            account: AccountNumber::parse("100200300").unwrap(),
            epoch: 2,
            created_at_ms,
            last_seen_ms,
            expires_at: 0,
        }
    }

    fn resident(status: ResidentStatus, session_epoch: u64) -> Resident {
        Resident { session_epoch, ..Resident::sample(status, time::OffsetDateTime::UNIX_EPOCH) }
    }

    #[test]
    fn a_session_ends_after_thirty_minutes_unused() {
        let config = config();
        let seen = NOW_MS - 30 * MINUTE_MS;
        assert!(!timed_out(&session(seen - MINUTE_MS, seen + 1), NOW_MS, &config));
        assert!(timed_out(&session(seen - MINUTE_MS, seen), NOW_MS, &config), "at the idle deadline");
    }

    #[test]
    fn a_session_ends_twelve_hours_after_login_however_busy() {
        let config = config();
        let created = NOW_MS - 12 * 60 * MINUTE_MS;
        assert!(!timed_out(&session(created + 1, NOW_MS - 1), NOW_MS, &config));
        assert!(timed_out(&session(created, NOW_MS - 1), NOW_MS, &config), "at the lifetime's end");
    }

    #[test]
    fn a_session_is_deleted_by_dynamodb_after_its_first_deadline() {
        let config = config();
        // Busy: the idle deadline comes first.
        assert_eq!(expiry(NOW_MS, NOW_MS, &config), (NOW_MS + 30 * MINUTE_MS) / 1000 + 1);
        // Near its end: the lifetime does.
        let created = NOW_MS - 12 * 60 * MINUTE_MS + MINUTE_MS;
        assert_eq!(expiry(created, NOW_MS, &config), (NOW_MS + MINUTE_MS) / 1000 + 1);
    }

    #[test]
    fn a_session_speaks_only_for_an_active_resident_of_its_epoch() {
        let live = session(NOW_MS, NOW_MS);
        assert!(speaks_for(&live, &resident(ResidentStatus::Active, 2), false));
        assert!(!speaks_for(&live, &resident(ResidentStatus::Active, 3), false), "a reset since");
        assert!(
            !speaks_for(&live, &resident(ResidentStatus::AwaitingIdentification, 2), false),
            "suspended by an import"
        );
        let suspended = resident(ResidentStatus::AwaitingIdentification, 2);
        assert!(speaks_for(&live, &suspended, true), "another account of the cabinet is active");
        assert!(!speaks_for(&live, &resident(ResidentStatus::AwaitingIdentification, 3), true), "a reset since");
    }

    #[test]
    fn a_device_counts_for_its_resident_until_it_expires_or_a_reset() {
        let now = NOW_MS / 1000;
        let resident = resident(ResidentStatus::Active, 2);
        let device = DeviceRecord { account: resident.account.clone(), epoch: 2, expires_at: now + 1 };
        assert!(device_matches(&device, &resident, now));
        assert!(!device_matches(&DeviceRecord { expires_at: now, ..device.clone() }, &resident, now));
        assert!(!device_matches(&DeviceRecord { epoch: 1, ..device.clone() }, &resident, now));
        let other = DeviceRecord { account: AccountNumber::parse("100200301").unwrap(), ..device };
        assert!(!device_matches(&other, &resident, now));
    }
}
