//! The error model both faces share: a code clients can act on, the field it
//! belongs to, and a Russian message a resident can act on.

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

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<Field>,
    pub code: ErrorCode,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<String>,
}

impl FieldError {
    pub fn field(field: Field, code: ErrorCode, message: impl Into<String>) -> Self {
        Self { field: Some(field), code, message: message.into(), suggestion: None }
    }

    pub fn general(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { field: None, code, message: message.into(), suggestion: None }
    }

    pub fn with_suggestion(mut self, suggestion: Option<String>) -> Self {
        self.suggestion = suggestion;
        self
    }

    /// The HTTP status this error is answered with when it is the first one.
    pub fn status(&self) -> u16 {
        match self.code {
            ErrorCode::AccountNotFound | ErrorCode::NameMismatch => 422,
            ErrorCode::AlreadyRegistered | ErrorCode::EmailTaken => 409,
            ErrorCode::InvalidCredentials | ErrorCode::NotAuthenticated => 401,
            ErrorCode::EmailNotConfirmed | ErrorCode::IdentificationPending | ErrorCode::IdentificationFailed => 403,
            ErrorCode::RateLimited | ErrorCode::RegistrationPaused => 429,
            ErrorCode::CrossSiteRequest => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::ExpiredToken | ErrorCode::AddressChanged | ErrorCode::RegistrationExpired => 410,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::Internal => 500,
            _ => 400,
        }
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

    pub fn status(&self) -> u16 {
        self.errors.first().map_or(400, FieldError::status)
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
#[error("{context}: {source}")]
pub struct Unexpected {
    pub context: &'static str,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl Unexpected {
    pub fn new(context: &'static str, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self { context, source: Box::new(source) }
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
