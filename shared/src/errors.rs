//! The error model both faces share: a code clients can act on, the field it
//! belongs to, and a Russian message a resident can act on.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::RequestId;
use serde::Serialize;

/// Every error code of the public contract (`openapi.yaml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    Required,
    Invalid,
    AccountNotFound,
    NameMismatch,
    AlreadyRegistered,
    EmailTaken,
    /// Registering with an address that has a cabinet: log in there and add
    /// the account instead.
    EmailHasCabinet,
    /// The account is in the resident's own cabinet already.
    AlreadyInCabinet,
    /// The account is not in the resident's cabinet (to unlink).
    NotLinked,
    /// Without the account the cabinet would have no active account left.
    LastActiveAccount,
    /// The address looks mistyped (or its domain does not exist); `suggestion`
    /// holds the likely intended one.
    EmailSuggestion,
    PasswordMismatch,
    WeakPassword,
    ConsentRequired,
    InvalidCredentials,
    EmailNotConfirmed,
    IdentificationPending,
    IdentificationFailed,
    RateLimited,
    RegistrationPaused,
    NotAuthenticated,
    InvalidToken,
    ExpiredToken,
    /// A confirmation link to an address the registration has since left.
    AddressChanged,
    /// A confirmation link of a registration that is gone.
    RegistrationExpired,
    UnsupportedMediaType,
    PayloadTooLarge,
    CrossSiteRequest,
    NotFound,
    /// A known path asked with a method it does not serve.
    MethodNotAllowed,
    /// AWS throttled, failed or timed out: try again in `Retry-After` seconds.
    Unavailable,
    Internal,
}

/// The form fields of the contract, named as in JSON and in the HTML forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Account,
    FullName,
    Phone,
    Email,
    Password,
    PasswordConfirm,
    Consent,
    Login,
    Token,
}

/// Every field, for looking one up by its name.
const FIELDS: [Field; 9] = [
    Field::Account,
    Field::FullName,
    Field::Phone,
    Field::Email,
    Field::Password,
    Field::PasswordConfirm,
    Field::Consent,
    Field::Login,
    Field::Token,
];

impl Field {
    pub fn name(self) -> &'static str {
        match self {
            Field::Account => "account",
            Field::FullName => "full_name",
            Field::Phone => "phone",
            Field::Email => "email",
            Field::Password => "password",
            Field::PasswordConfirm => "password_confirm",
            Field::Consent => "consent",
            Field::Login => "login",
            Field::Token => "token",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        FIELDS.into_iter().find(|f| f.name() == name)
    }

    /// The field's label on the forms, for messages about it.
    pub fn label(self) -> &'static str {
        match self {
            Field::Account => "Номер лицевого счёта",
            Field::FullName => "ФИО",
            Field::Phone => "Телефон",
            Field::Email => "E-mail",
            Field::Password => "Пароль",
            Field::PasswordConfirm => "Пароль ещё раз",
            Field::Consent => "Согласие",
            Field::Login => "E-mail или номер лицевого счёта",
            Field::Token => "Ссылка",
        }
    }
}

/// Why a use case refused, as data: the contract's code and field follow
/// from it, and `web::messages` words it for the resident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No e-mail or account number was given to find a registration by.
    LoginRequired,
    AccountNotFound {
        account: String,
    },
    NameMismatch,
    AlreadyRegistered,
    /// The address is another cabinet's (changing an address).
    EmailTaken,
    /// The address typed into the registration form has a cabinet (or a
    /// registration under way).
    EmailHasCabinet,
    /// The account to add is in this very cabinet already.
    AlreadyInCabinet,
    /// The account to unlink is not in this cabinet.
    NotLinked,
    /// Unlinking would leave the cabinet no active account to log in with.
    LastActiveAccount,
    /// The cabinet changed while the request ran.
    CabinetChanged,
    RegistrationPaused,
    /// Wrong login or password when correcting an unconfirmed address
    /// (also what a confirmed resident gets there).
    UnconfirmedCredentials,
    /// The new address is the current one.
    SameAddress,
    /// The password of a logged-in resident is wrong.
    WrongPassword,
    /// The registration changed while the request ran.
    ChangedMeanwhile,
}

impl Refusal {
    pub fn code(&self) -> ErrorCode {
        match self {
            Refusal::LoginRequired => ErrorCode::Required,
            Refusal::AccountNotFound { .. } => ErrorCode::AccountNotFound,
            Refusal::NameMismatch => ErrorCode::NameMismatch,
            Refusal::AlreadyRegistered => ErrorCode::AlreadyRegistered,
            Refusal::EmailTaken => ErrorCode::EmailTaken,
            Refusal::EmailHasCabinet => ErrorCode::EmailHasCabinet,
            Refusal::AlreadyInCabinet => ErrorCode::AlreadyInCabinet,
            Refusal::NotLinked => ErrorCode::NotLinked,
            Refusal::LastActiveAccount => ErrorCode::LastActiveAccount,
            Refusal::RegistrationPaused => ErrorCode::RegistrationPaused,
            Refusal::UnconfirmedCredentials | Refusal::WrongPassword => ErrorCode::InvalidCredentials,
            Refusal::SameAddress | Refusal::ChangedMeanwhile | Refusal::CabinetChanged => ErrorCode::Invalid,
        }
    }

    pub fn field(&self) -> Option<Field> {
        match self {
            Refusal::LoginRequired | Refusal::UnconfirmedCredentials => Some(Field::Login),
            Refusal::AccountNotFound { .. }
            | Refusal::AlreadyRegistered
            | Refusal::RegistrationPaused
            | Refusal::AlreadyInCabinet
            | Refusal::NotLinked
            | Refusal::LastActiveAccount => Some(Field::Account),
            Refusal::NameMismatch => Some(Field::FullName),
            Refusal::EmailTaken | Refusal::EmailHasCabinet | Refusal::SameAddress => Some(Field::Email),
            Refusal::WrongPassword => Some(Field::Password),
            Refusal::ChangedMeanwhile | Refusal::CabinetChanged => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<Field>,
    pub code: ErrorCode,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<String>,
    /// A use case's refusal, worded at the edge (`web::messages`).
    #[serde(skip)]
    pub refusal: Option<Refusal>,
}

impl FieldError {
    pub fn field(field: Field, code: ErrorCode, message: impl Into<String>) -> Self {
        Self { field: Some(field), code, message: message.into(), suggestion: None, refusal: None }
    }

    pub fn general(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { field: None, code, message: message.into(), suggestion: None, refusal: None }
    }

    /// A refusal, without words yet: `web::messages::body` gives them.
    pub fn refused(refusal: Refusal) -> Self {
        Self {
            field: refusal.field(),
            code: refusal.code(),
            message: String::new(),
            suggestion: None,
            refusal: Some(refusal),
        }
    }

    pub fn with_suggestion(mut self, suggestion: Option<String>) -> Self {
        self.suggestion = suggestion;
        self
    }
}

/// The JSON body of every error answer: `{"errors":[...]}`.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorBody {
    pub errors: Vec<FieldError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl ErrorBody {
    pub fn new(errors: Vec<FieldError>) -> Self {
        Self { errors, ready_at: None, email: None }
    }

    /// The message of the error tied to `field`, for showing next to it.
    pub fn for_field(&self, field: Field) -> Option<&FieldError> {
        self.errors.iter().find(|e| e.field == Some(field))
    }

    /// Errors that belong to no field, shown above a form.
    pub fn general(&self) -> impl Iterator<Item = &FieldError> {
        self.errors.iter().filter(|e| e.field.is_none())
    }
}

/// A failure that is not the resident's: it is logged with its cause, and the
/// resident gets a plain "try again" page. Nothing half-done is left behind.
#[derive(Debug, thiserror::Error)]
#[error("{context}: {source}{aws}")]
pub struct Unexpected {
    pub context: &'static str,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
    /// What AWS said, when it was an AWS call that failed.
    pub aws: AwsFailure,
}

/// The parts of a failed AWS call that tell throttling from an outage from
/// a bug: logged with every such error.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AwsFailure {
    /// The error code (`ThrottlingException`, `InternalServerError`, ...),
    /// or the kind of failure when AWS never answered (`timeout`, `dispatch`).
    pub code: Option<String>,
    pub request_id: Option<String>,
    pub status: Option<u16>,
    /// Likely to pass if tried again soon: throttling, a 5xx, a timeout, a
    /// lost connection. The resident is told 503 and when to come back.
    pub transient: bool,
}

impl std::fmt::Display for AwsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(code) = &self.code {
            write!(f, " (AWS {code}")?;
            if let Some(status) = self.status {
                write!(f, ", HTTP {status}")?;
            }
            if let Some(id) = &self.request_id {
                write!(f, ", request {id}")?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// Error codes AWS services answer when a caller goes too fast.
const THROTTLING: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "LimitExceededException",
    "SlowDown",
    "TransactionInProgressException",
];

impl AwsFailure {
    fn of<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> Self {
        let request_id = error.request_id().map(str::to_owned);
        match error {
            SdkError::TimeoutError(_) => {
                Self { code: Some("timeout".into()), request_id, status: None, transient: true }
            }
            SdkError::DispatchFailure(_) => {
                Self { code: Some("dispatch".into()), request_id, status: None, transient: true }
            }
            SdkError::ResponseError(_) => {
                Self { code: Some("response".into()), request_id, status: None, transient: true }
            }
            SdkError::ServiceError(service) => {
                let status = service.raw().status().as_u16();
                let code = service.err().code().map(str::to_owned);
                let throttled = code.as_deref().is_some_and(|c| THROTTLING.contains(&c));
                Self { transient: throttled || status >= 500, code, request_id, status: Some(status) }
            }
            _ => Self { code: Some("construction".into()), request_id, status: None, transient: false },
        }
    }
}

impl AwsFailure {
    /// Whether the failed call may have been carried out all the same: no
    /// answer came in time (a timeout, a lost connection, an answer cut
    /// short) or AWS failed (5xx) after perhaps acting. Throttling and
    /// other refusals were not carried out.
    pub fn outcome_unknown(&self) -> bool {
        matches!(self.code.as_deref(), Some("timeout" | "dispatch" | "response"))
            || self.status.is_some_and(|status| status >= 500)
    }
}

impl Unexpected {
    pub fn new(context: &'static str, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self { context, source: Box::new(source), aws: AwsFailure::default() }
    }

    /// A failed AWS call, with its code and request id kept for the logs.
    pub fn aws<E>(context: &'static str, error: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let aws = AwsFailure::of(&error);
        Self { context, source: Box::new(error), aws }
    }

    /// A failure of something busy (retries spent on throttling or
    /// conflicts): likely to pass if tried again soon.
    pub fn busy(context: &'static str, what: &'static str) -> Self {
        let aws = AwsFailure { code: Some(what.to_owned()), transient: true, ..AwsFailure::default() };
        Self { context, source: Box::new(std::io::Error::other(what)), aws }
    }

    /// Whether trying again soon may well work (see [`AwsFailure::transient`]).
    pub fn is_transient(&self) -> bool {
        self.aws.transient
    }
}

/// [`Context`] for AWS calls: keeps the error code and request id.
pub trait AwsContext<T> {
    fn aws_context(self, context: &'static str) -> Result<T, Unexpected>;
}

impl<T, E> AwsContext<T> for Result<T, SdkError<E, HttpResponse>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    fn aws_context(self, context: &'static str) -> Result<T, Unexpected> {
        self.map_err(|e| Unexpected::aws(context, e))
    }
}

/// Attach a "what were we doing" to any error, as `anyhow::Context` does.
pub trait Context<T> {
    fn context(self, context: &'static str) -> Result<T, Unexpected>;
}

impl<T, E: std::error::Error + Send + Sync + 'static> Context<T> for Result<T, E> {
    fn context(self, context: &'static str) -> Result<T, Unexpected> {
        self.map_err(|e| Unexpected::new(context, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::error::ErrorMetadata;
    use aws_sdk_dynamodb::operation::get_item::GetItemError;
    use aws_smithy_types::body::SdkBody;

    fn service_error(code: &str, status: u16) -> Unexpected {
        let error = GetItemError::generic(ErrorMetadata::builder().code(code).build());
        let raw = HttpResponse::new(status.try_into().unwrap(), SdkBody::empty());
        Unexpected::aws("reading", SdkError::service_error(error, raw))
    }

    #[test]
    fn throttling_5xx_and_timeouts_are_transient_and_refusals_are_not() {
        for (code, status, transient) in [
            ("ThrottlingException", 400, true),
            ("ProvisionedThroughputExceededException", 400, true),
            ("RequestLimitExceeded", 400, true),
            ("InternalServerError", 500, true),
            ("ServiceUnavailable", 503, true),
            ("ConditionalCheckFailedException", 400, false),
            ("AccessDeniedException", 400, false),
            ("ValidationException", 400, false),
        ] {
            let failure = service_error(code, status);
            assert_eq!(failure.is_transient(), transient, "{code}");
            assert_eq!(failure.aws.code.as_deref(), Some(code));
            assert_eq!(failure.aws.status, Some(status));
            assert!(failure.to_string().contains(code), "the log line names the code: {failure}");
        }
        let timeout: SdkError<GetItemError, HttpResponse> = SdkError::timeout_error("slow");
        assert!(Unexpected::aws("reading", timeout).is_transient());
        assert!(!Unexpected::new("mapping", std::io::Error::other("bug")).is_transient());
    }

    #[test]
    fn only_calls_that_got_no_answer_or_a_5xx_may_have_been_carried_out() {
        for (code, status, unknown) in [
            ("InternalServerError", 500, true),
            ("ServiceUnavailable", 503, true),
            ("TooManyRequestsException", 429, false),
            ("ThrottlingException", 400, false),
            ("MessageRejected", 400, false),
        ] {
            assert_eq!(service_error(code, status).aws.outcome_unknown(), unknown, "{code}");
        }
        let timeout: SdkError<GetItemError, HttpResponse> = SdkError::timeout_error("slow");
        assert!(Unexpected::aws("sending", timeout).aws.outcome_unknown());
        assert!(!Unexpected::busy("retrying", "retries exhausted").aws.outcome_unknown());
        assert!(!Unexpected::new("mapping", std::io::Error::other("bug")).aws.outcome_unknown());
    }
}
