//! A cabinet: the resident who logs in (e-mail, password, sessions) and the
//! accounts in it, the one they registered with and those added since
//! («Добавить лицевой счёт»). Each account goes through identification of
//! its own; the cabinet opens while any of them is active.

use time::OffsetDateTime;

use crate::audit::{self, AuditEvent, Entry, Requester};
use crate::clock;
use crate::domain::{
    AccountInCabinet, AccountNumber, AddAccountForm, LinkedAccount, NewLink, Password, Resident, ResidentStatus,
    UnlinkForm, account_error,
};
use crate::errors::{FieldError, Refusal, Unexpected};
use crate::limits::{self, Counted, RateLimited, Subject};
use crate::queue::IdentificationJob;
use crate::services::Services;
use crate::store::{AddLinkError, StageOf};
use crate::usecases::login::check_password;
use crate::usecases::register::{RegisterError, check_payer};

/// An account and the resident whose cabinet holds it.
#[derive(Debug, Clone)]
pub struct Held {
    pub person: Resident,
    pub account: AccountInCabinet,
}

impl AccountInCabinet {
    /// The item that keeps this account's stage.
    pub fn stage_item(&self) -> StageOf<'_> {
        let account = &self.account;
        if self.linked {
            StageOf::Link { account, linked_at: self.since }
        } else {
            StageOf::Resident { account, registered_at: self.since }
        }
    }
}

/// The cabinet that holds `account`: the resident who registered with it,
/// or the one it was added to.
pub async fn holder(services: &Services, account: &AccountNumber) -> Result<Option<Held>, Unexpected> {
    let (resident, link) = services.store.residents.with_link(account).await?;
    if let Some(person) = resident {
        let account = person.first_account();
        return Ok(Some(Held { person, account }));
    }
    let Some(link) = link else {
        return Ok(None);
    };
    let person = services.store.residents.get(&link.person).await?;
    Ok(person.map(|person| Held { person, account: link.in_cabinet() }))
}

/// Where letters about `person`'s cabinet link to: where they registered,
/// else the configured address.
pub fn base_url(services: &Services, person: &Resident) -> String {
    person.cabinet_url.clone().or_else(|| services.config.public_base_url.clone()).unwrap_or_default()
}

/// Every account of `person`'s cabinet: the first, then those added, in the
/// order they were.
pub async fn accounts(services: &Services, person: &Resident) -> Result<Vec<AccountInCabinet>, Unexpected> {
    let mut accounts = vec![person.first_account()];
    accounts.extend(services.store.links.of(person).await?.iter().map(LinkedAccount::in_cabinet));
    Ok(accounts)
}

/// Whether an account added to `person`'s cabinet is active, which opens
/// the cabinet whatever the first account's stage. Reads nothing for a
/// cabinet of one account.
pub async fn any_linked_active(services: &Services, person: &Resident) -> Result<bool, Unexpected> {
    if person.status == ResidentStatus::AwaitingEmailConfirmation || person.linked_accounts.is_empty() {
        return Ok(false);
    }
    Ok(services.store.links.of(person).await?.iter().any(|link| link.status == ResidentStatus::Active))
}

/// An account added: identification follows at `ready_at`.
#[derive(Debug)]
pub struct Added {
    pub account: AccountNumber,
    pub ready_at: OffsetDateTime,
}

/// Adds an account to `person`'s cabinet: the same form rules, limits and
/// budget of name checks as registration, then the same delayed
/// identification, and a letter when it is done.
#[tracing::instrument(skip_all, fields(account))]
pub async fn add_account(
    services: &Services,
    person: &Resident,
    form: &AddAccountForm,
    base_url: &str,
    requester: &Requester,
) -> Result<Added, RegisterError> {
    let mut counted = Counted::default();
    let result = add_counting(services, person, form, base_url, requester, &mut counted).await;
    if matches!(result, Err(RegisterError::Unexpected(_))) {
        counted.give_back(services).await;
    }
    result
}

async fn add_counting(
    services: &Services,
    person: &Resident,
    form: &AddAccountForm,
    base_url: &str,
    requester: &Requester,
    counted: &mut Counted,
) -> Result<Added, RegisterError> {
    let entry = Entry { account: Some(&person.account), requester: Some(requester), ..Entry::default() };
    counted.check(services, &[(limits::REGISTER_PER_IP, &Subject::ip(&requester.ip))], entry).await??;
    let new = NewLink::parse(form).map_err(RegisterError::Refused)?;
    tracing::Span::current().record("account", new.account.as_str());
    let entry = Entry { account: Some(&new.account), ..entry };
    let account = Subject::Account(new.account.clone());
    counted.check(services, &[(limits::REGISTER_PER_ACCOUNT, &account)], entry).await??;
    check_payer(services, &new.account, &new.full_name, entry).await?;
    let refused = |refusal| Err(RegisterError::Refused(vec![FieldError::refused(refusal)]));
    match holder(services, &new.account).await? {
        Some(held) if held.person.account == person.account => return refused(Refusal::AlreadyInCabinet),
        Some(_) => return refused(Refusal::AlreadyRegistered),
        None => {}
    }
    let now = clock::now();
    let ready_at = clock::ceil_to_second(now + services.config.identify_delay);
    let link = LinkedAccount {
        account: new.account.clone(),
        person: person.account.clone(),
        full_name: new.full_name,
        status: ResidentStatus::AwaitingIdentification,
        linked_at: now,
        ready_at: Some(ready_at),
        identified_at: None,
        rejection_reason: None,
        suspended_for: None,
    };
    // Queued first: if the link is then not stored, the job finds no
    // account awaiting it and does nothing.
    let job = IdentificationJob { account: new.account.clone(), not_before: ready_at, base_url: base_url.to_owned() };
    services.queue.schedule(&job, now).await?;
    match services.store.links.add(&link).await {
        Ok(()) => {}
        Err(AddLinkError::AccountTaken) => {
            // Another request got there first: this cabinet's (a double
            // submit), or someone else's.
            let ours = holder(services, &new.account).await?.is_some_and(|h| h.person.account == person.account);
            return refused(if ours { Refusal::AlreadyInCabinet } else { Refusal::AlreadyRegistered });
        }
        Err(AddLinkError::CabinetClosed) => {
            let closed = std::io::Error::other("the cabinet closed while an account was added");
            return Err(Unexpected::new("linking an account", closed).into());
        }
        Err(AddLinkError::Unexpected(error)) => return Err(error.into()),
    }
    tracing::info!("account added to a cabinet");
    audit::record(services, AuditEvent::AccountLinked, Entry { detail: Some(person.account.as_str()), ..entry }).await;
    Ok(Added { account: new.account, ready_at })
}

#[derive(Debug, thiserror::Error)]
pub enum UnlinkError {
    #[error("refused")]
    Refused(Vec<FieldError>),
    #[error(transparent)]
    RateLimited(#[from] RateLimited),
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

/// An account removed from a cabinet.
#[derive(Debug)]
pub struct Unlinked {
    pub account: AccountNumber,
    /// The account was the one registered with: the cabinet moved to
    /// another of its accounts, and its sessions ended.
    pub signed_out: bool,
}

/// Removes an account from `person`'s cabinet, with the password (the same
/// lock and audit as login), as long as another active account stays to
/// log in with. The account can then be registered or added again, by
/// anyone whose name matches its payer. When it is the account the
/// resident registered with, the cabinet moves to another of its accounts
/// (an active one first) and every session ends.
#[tracing::instrument(skip_all)]
pub async fn unlink_account(
    services: &Services,
    person: &Resident,
    form: &UnlinkForm,
    requester: &Requester,
    device: Option<&str>,
) -> Result<Unlinked, UnlinkError> {
    let refused = |refusal| UnlinkError::Refused(vec![FieldError::refused(refusal)]);
    let account = AccountNumber::parse(form.account.as_deref().unwrap_or_default())
        .map_err(|e| UnlinkError::Refused(vec![account_error(&e)]))?;
    // Checked before the password, so the answer tells nothing about it.
    let first = account == person.account;
    if !first && !person.linked_accounts.contains(&account) {
        return Err(refused(Refusal::NotLinked));
    }
    let links = services.store.links.of(person).await?;
    let stays_open = std::iter::once(person.first_account())
        .chain(links.iter().map(LinkedAccount::in_cabinet))
        .any(|a| a.account != account && a.status == ResidentStatus::Active);
    if !stays_open {
        return Err(refused(Refusal::LastActiveAccount));
    }
    let entry = Entry { account: Some(&person.account), requester: Some(requester), ..Entry::default() };
    let typed = person.account.to_string();
    let password = Password::from_login_input(form.password.as_deref().unwrap_or_default());
    let checked = check_password(services, &typed, Some(person.clone()), password, device, entry).await??;
    let Some(verified) = checked else {
        return Err(refused(Refusal::WrongPassword));
    };
    let person = verified.accept(services).await?;
    let done = if first {
        // The cabinet moves to an active account (one exists, see above).
        let Some(successor) = links.iter().find(|l| l.status == ResidentStatus::Active) else {
            return Err(refused(Refusal::LastActiveAccount));
        };
        let others: Vec<LinkedAccount> = links.iter().filter(|l| l.account != successor.account).cloned().collect();
        services.store.links.move_cabinet(&person, successor, &others).await?
    } else {
        services.store.links.remove(&person.account, &account).await?
    };
    if !done {
        // Changed since it was read (a double submit, a reset): nothing done.
        return Err(refused(if first { Refusal::CabinetChanged } else { Refusal::NotLinked }));
    }
    tracing::info!(first, "account removed from a cabinet");
    let detail = Some(person.account.as_str());
    audit::record(services, AuditEvent::AccountUnlinked, Entry { account: Some(&account), detail, ..entry }).await;
    Ok(Unlinked { account, signed_out: first })
}
