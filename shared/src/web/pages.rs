//! Page templates (`templates/pages/`), each a typed struct; askama escapes
//! every value.

use askama::Template;

use crate::domain::{BalanceLine, RegistrationForm};
use crate::errors::{ErrorBody, ErrorCode, Field};

#[derive(Template, Default)]
#[template(path = "pages/register.html")]
pub struct RegisterPage {
    pub account: String,
    pub full_name: String,
    pub phone: String,
    pub email: String,
    pub consent: bool,
    pub general_errors: Vec<String>,
    pub account_error: Option<String>,
    pub full_name_error: Option<String>,
    pub phone_error: Option<String>,
    pub email_error: Option<String>,
    pub password_error: Option<String>,
    pub password_confirm_error: Option<String>,
    pub consent_error: Option<String>,
    /// A likely intended address, offered with a one-click button.
    pub email_suggestion: Option<String>,
    /// Whether «Адрес верный» is offered: the typed address may be real
    /// (its domain exists) and was held back only as a likely typo.
    pub email_may_be_kept: bool,
    /// The first field with an error (`autofocus` there works without JS).
    pub first_invalid: String,
}

impl RegisterPage {
    /// The form again, with what the resident typed (passwords aside) and
    /// each error by its field.
    pub fn with_errors(form: &RegistrationForm, errors: &ErrorBody) -> Self {
        let message = |field| errors.for_field(field).map(|e| e.message.clone());
        Self {
            account: form.account.clone().unwrap_or_default(),
            full_name: form.full_name.clone().unwrap_or_default(),
            phone: form.phone.clone().unwrap_or_default(),
            email: form.email_input().unwrap_or_default().to_owned(),
            consent: form.consent,
            general_errors: errors.general().map(|e| e.message.clone()).collect(),
            account_error: message(Field::Account),
            full_name_error: message(Field::FullName),
            phone_error: message(Field::Phone),
            email_error: message(Field::Email),
            password_error: message(Field::Password),
            password_confirm_error: message(Field::PasswordConfirm),
            consent_error: message(Field::Consent),
            email_suggestion: errors.for_field(Field::Email).and_then(|e| e.suggestion.clone()),
            email_may_be_kept: errors.for_field(Field::Email).is_some_and(|e| e.code == ErrorCode::EmailSuggestion)
                && form
                    .email_input()
                    .and_then(|v| crate::domain::Email::parse(v).ok())
                    .is_some_and(|e| e.has_public_suffix()),
            first_invalid: errors.errors.iter().find_map(|e| e.field).map(|f| f.name().to_owned()).unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "pages/check_mail.html")]
pub struct CheckMailPage {
    pub masked_email: String,
    pub letter_sent: bool,
    pub suggestion: Option<String>,
    /// What the resident registered with, for the resend and change forms.
    pub login: String,
}

#[derive(Template)]
#[template(path = "pages/confirmed.html")]
pub struct ConfirmedPage {
    pub heading: String,
    pub text: String,
    pub ready_at: Option<String>,
    pub ready_at_iso: String,
    /// 2 while identification is pending, 3 once the cabinet is open.
    pub stage: u8,
}

/// Where a registration is: the page the registering browser can come back
/// to (its cookie) to see the stage, the ready time, or that mail bounced.
#[derive(Template)]
#[template(path = "pages/status.html")]
pub struct StatusPage {
    pub account: String,
    pub masked_email: String,
    /// 1 until the address is confirmed, 2 during identification, 3 open.
    pub stage: u8,
    pub undeliverable: Option<String>,
    pub ready_at: Option<String>,
    pub ready_at_iso: String,
    pub rejection: Option<String>,
}

#[derive(Template, Default)]
#[template(path = "pages/login.html")]
pub struct LoginPage {
    pub login: String,
    pub errors: Vec<String>,
    pub notice: Option<String>,
    /// The address is not confirmed: offer to resend or correct it here.
    pub unconfirmed: bool,
    /// Mail to the address bounced: offer only to correct it.
    pub undeliverable: bool,
}

#[derive(Template, Default)]
#[template(path = "pages/forgot.html")]
pub struct ForgotPage {
    pub login: String,
    pub errors: Vec<String>,
    /// How long the link works, e.g. "1 час".
    pub valid_for: String,
}

#[derive(Template, Default)]
#[template(path = "pages/reset.html")]
pub struct ResetPage {
    pub token: String,
    pub account: String,
    pub general_errors: Vec<String>,
    pub password_error: Option<String>,
    pub password_confirm_error: Option<String>,
}

#[derive(Template)]
#[template(path = "pages/account.html")]
pub struct AccountPage {
    pub account: String,
    pub full_name: String,
    pub address: Option<String>,
    /// «К оплате» or «Переплата» and the amount (`BalanceLine::of`).
    pub balance: BalanceLine,
    pub data_as_of: Option<String>,
    pub undeliverable: Option<String>,
    pub masked_email: String,
}

#[derive(Template)]
#[template(path = "pages/message.html")]
pub struct MessagePage {
    pub heading: String,
    pub text: String,
    pub link: String,
    pub link_label: String,
}

impl MessagePage {
    pub fn new(heading: &str, text: &str, link: &str, link_label: &str) -> Self {
        Self { heading: heading.into(), text: text.into(), link: link.into(), link_label: link_label.into() }
    }
}

/// The version of the personal data policy residents consent to.
pub use crate::domain::PRIVACY_POLICY_VERSION;

#[derive(Template)]
#[template(path = "pages/help.html")]
pub struct HelpPage;

#[derive(Template)]
#[template(path = "pages/privacy.html")]
pub struct PrivacyPage {
    pub version: &'static str,
}
