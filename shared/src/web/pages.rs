//! Page templates (`templates/pages/`), each a typed struct; askama escapes
//! every value.

use askama::Template;

use crate::domain::{BalanceLine, RegistrationForm};
use crate::errors::{ErrorBody, ErrorCode, Field};

/// The error summary at the top of a form (GOV.UK's pattern): every
/// error, each linked to the field it is about. A page with one is titled
/// «Ошибка: …».
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorSummary {
    pub lines: Vec<SummaryLine>,
}

/// One error: its message and the `id` of its field, if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryLine {
    pub message: String,
    pub field: Option<&'static str>,
}

impl ErrorSummary {
    /// Every error of `errors`, in order, each linked to the field `id_of`
    /// names for it.
    pub fn of(errors: &ErrorBody, id_of: impl Fn(Field) -> Option<&'static str>) -> Self {
        let lines = errors
            .errors
            .iter()
            .map(|e| SummaryLine { message: e.message.clone(), field: e.field.and_then(&id_of) })
            .collect();
        Self { lines }
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Whether some error has a field to focus; if none has, the summary
    /// itself takes the focus.
    pub fn links_a_field(&self) -> bool {
        self.lines.iter().any(|l| l.field.is_some())
    }
}

#[derive(Template, Default)]
#[template(path = "pages/register.html")]
pub struct RegisterPage {
    pub account: String,
    pub full_name: String,
    pub phone: String,
    pub email: String,
    pub consent: bool,
    /// Every error, above the form; a page with any is titled «Ошибка: …».
    pub summary: ErrorSummary,
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
    /// «Адрес верный» was chosen for this address and it passed: the form
    /// carries the choice (a hidden `email_as_typed` with the address), so
    /// the resident is not asked again while other fields are corrected.
    pub email_as_typed: Option<String>,
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
            summary: ErrorSummary::of(errors, |field| Some(field.name())),
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
            email_as_typed: form
                .kept_as_typed()
                .then(|| form.email_input())
                .flatten()
                .filter(|_| errors.for_field(Field::Email).is_none())
                .map(str::to_owned),
            first_invalid: errors.errors.iter().find_map(|e| e.field).map(|f| f.name().to_owned()).unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "pages/check_mail.html")]
pub struct CheckMailPage {
    pub masked_email: String,
    pub letter_sent: bool,
    /// Shown after the address was corrected (not after registration).
    pub address_changed: bool,
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
    /// Identification is long overdue and could not be run now either.
    pub delayed: bool,
    pub rejection: Option<String>,
}

#[derive(Template, Default)]
#[template(path = "pages/login.html")]
pub struct LoginPage {
    pub login: String,
    pub summary: ErrorSummary,
    /// Wrong login or password: said by both fields, and focus goes to the
    /// password (or to the login when none was typed).
    pub credentials_error: Option<String>,
    pub notice: Option<String>,
    /// The address is not confirmed: offer to resend or correct it here.
    pub unconfirmed: bool,
    /// Mail to the address bounced: offer only to correct it.
    pub undeliverable: bool,
}

impl LoginPage {
    /// The form again after a refusal: an error tied to the login field is
    /// the wrong pair of login and password, the others are general.
    pub fn refused(login: String, errors: &ErrorBody) -> Self {
        let mut page = Self {
            login,
            credentials_error: errors.for_field(Field::Login).map(|e| e.message.clone()),
            ..Self::default()
        };
        let focus = page.focus();
        page.summary = ErrorSummary::of(errors, |_| Some(focus));
        page
    }

    /// Which field `autofocus` goes to after a wrong login or password.
    pub fn focus(&self) -> &'static str {
        if crate::text::fold(&self.login).is_empty() { "login" } else { "password" }
    }
}

#[derive(Template, Default)]
#[template(path = "pages/forgot.html")]
pub struct ForgotPage {
    pub login: String,
    pub summary: ErrorSummary,
    /// The error of the login field, shown under it.
    pub login_error: Option<String>,
    /// How long the link works, e.g. "1 час".
    pub valid_for: String,
}

impl ForgotPage {
    pub fn refused(login: String, errors: &ErrorBody, valid_for: String) -> Self {
        Self {
            summary: ErrorSummary::of(errors, |field| (field == Field::Login).then_some("login")),
            login_error: errors.for_field(Field::Login).map(|e| e.message.clone()),
            login,
            valid_for,
        }
    }
}

#[derive(Template, Default)]
#[template(path = "pages/reset.html")]
pub struct ResetPage {
    pub token: String,
    pub account: String,
    pub summary: ErrorSummary,
    pub password_error: Option<String>,
    pub password_confirm_error: Option<String>,
}

impl ResetPage {
    pub fn refused(token: String, account: String, errors: &ErrorBody) -> Self {
        let message = |field| errors.for_field(field).map(|e| e.message.clone());
        Self {
            token,
            account,
            summary: ErrorSummary::of(errors, |field| match field {
                Field::Password | Field::PasswordConfirm => Some(field.name()),
                _ => None,
            }),
            password_error: message(Field::Password),
            password_confirm_error: message(Field::PasswordConfirm),
        }
    }
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
    /// Every account of the cabinet, listed when there is more than one.
    pub accounts: Vec<AccountItem>,
    /// «Добавить лицевой счёт», with what was typed and its errors.
    pub add: AddAccountBox,
}

/// One account in the list of a cabinet.
#[derive(Debug, Clone)]
pub struct AccountItem {
    pub account: String,
    pub full_name: String,
    pub address: Option<String>,
    pub balance: Option<BalanceLine>,
    pub data_as_of: Option<String>,
    /// Where identification stands, in words.
    pub stage: String,
    /// Being identified: when it ends, for the countdown.
    pub ready_at: Option<String>,
    pub ready_at_iso: Option<String>,
    /// An added account: it can be unlinked.
    pub removable: bool,
}

/// The add-account form: what was typed and what was wrong with it.
#[derive(Debug, Clone, Default)]
pub struct AddAccountBox {
    pub account: String,
    pub full_name: String,
    pub summary: ErrorSummary,
    pub account_error: Option<String>,
    pub full_name_error: Option<String>,
}

impl AddAccountBox {
    pub fn refused(account: String, full_name: String, errors: &ErrorBody) -> Self {
        let message = |field| errors.for_field(field).map(|e| e.message.clone());
        Self {
            account,
            full_name,
            summary: ErrorSummary::of(errors, |field| match field {
                Field::Account => Some("add-account"),
                Field::FullName => Some("add-full-name"),
                _ => None,
            }),
            account_error: message(Field::Account),
            full_name_error: message(Field::FullName),
        }
    }
}

#[derive(Template)]
#[template(path = "pages/message.html")]
pub struct MessagePage {
    pub heading: String,
    pub text: String,
    pub link: String,
    pub link_label: String,
    /// Something went wrong: the title starts with «Ошибка: ».
    pub error: bool,
}

impl MessagePage {
    pub fn new(heading: &str, text: &str, link: &str, link_label: &str) -> Self {
        Self {
            heading: heading.into(),
            text: text.into(),
            link: link.into(),
            link_label: link_label.into(),
            error: false,
        }
    }

    /// A page that says what went wrong (titled «Ошибка: …»).
    pub fn error(heading: &str, text: &str, link: &str, link_label: &str) -> Self {
        Self { error: true, ..Self::new(heading, text, link, link_label) }
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
    /// The AWS region of the deployment (e.g. `eu-central-1`), if known.
    pub region: Option<String>,
}

impl PrivacyPage {
    /// Where the region is, in Russian, for the regions a cabinet for
    /// Russian residents is likely deployed in; else none (the code is shown).
    pub fn region_place(&self) -> Option<&'static str> {
        Some(match self.region.as_deref()? {
            "eu-central-1" => "Франкфурт-на-Майне, Германия",
            "eu-central-2" => "Цюрих, Швейцария",
            "eu-west-1" => "Ирландия",
            "eu-west-2" => "Лондон, Великобритания",
            "eu-west-3" => "Париж, Франция",
            "eu-north-1" => "Стокгольм, Швеция",
            "eu-south-1" => "Милан, Италия",
            "eu-south-2" => "Испания",
            "us-east-1" => "Северная Вирджиния, США",
            "us-east-2" => "Огайо, США",
            "us-west-1" => "Северная Калифорния, США",
            "us-west-2" => "Орегон, США",
            "ca-central-1" => "Канада",
            "me-central-1" => "ОАЭ",
            "il-central-1" => "Тель-Авив, Израиль",
            "ap-south-1" => "Мумбаи, Индия",
            "ap-northeast-1" => "Токио, Япония",
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::FieldError;

    fn wrong_password() -> ErrorBody {
        ErrorBody::new(vec![FieldError::field(Field::Login, ErrorCode::InvalidCredentials, "Неверный пароль.")])
    }

    #[test]
    fn the_privacy_page_names_the_processor_and_where_the_data_is_kept() {
        let page = PrivacyPage { version: PRIVACY_POLICY_VERSION, region: Some("eu-central-1".to_owned()) };
        let html = page.render().expect("renders");
        assert!(html.contains("Amazon Web Services"), "the processor is named");
        assert!(html.contains("eu-central-1") && html.contains("Франкфурт-на-Майне, Германия"), "the region");
        assert!(html.contains("трансграничн"), "the transfer abroad is said");
        assert!(!html.contains("Данные не передаются третьим лицам"), "no claim that nobody else gets the data");
        let unknown = PrivacyPage { version: PRIVACY_POLICY_VERSION, region: Some("xx-test-1".to_owned()) };
        assert!(unknown.render().expect("renders").contains("xx-test-1"));
        let none = PrivacyPage { version: PRIVACY_POLICY_VERSION, region: None };
        assert!(none.render().expect("renders").contains("Amazon Web Services"));
    }

    #[test]
    fn a_page_with_errors_is_titled_so_and_sums_them_up_with_links_to_the_fields() {
        let errors = ErrorBody::new(vec![
            FieldError::general(ErrorCode::AlreadyRegistered, "Уже зарегистрирован."),
            FieldError::field(Field::Phone, ErrorCode::Invalid, "Не похоже на номер."),
        ]);
        let html = RegisterPage::with_errors(&RegistrationForm::default(), &errors).render().unwrap();
        assert!(html.contains("<title>Ошибка: Регистрация — "), "{html}");
        assert!(html.contains(r##"<li>Уже зарегистрирован.</li>"##), "{html}");
        assert!(html.contains(r##"<li><a href="#phone">Не похоже на номер.</a></li>"##), "{html}");
        let clean = RegisterPage::default().render().unwrap();
        assert!(clean.contains("<title>Регистрация — ") && !clean.contains(r#"class="error-summary""#));
    }

    #[test]
    fn with_no_field_to_go_to_the_summary_takes_the_focus() {
        let errors = ErrorBody::new(vec![FieldError::general(ErrorCode::AlreadyRegistered, "Уже зарегистрирован.")]);
        let html = RegisterPage::with_errors(&RegistrationForm::default(), &errors).render().unwrap();
        assert_eq!(html.matches("autofocus").count(), 1, "{html}");
        assert!(
            html.contains(r#"class="error-summary" tabindex="-1" aria-labelledby="error-summary-title" autofocus"#)
        );
    }

    #[test]
    fn after_a_wrong_password_focus_goes_to_the_password_or_to_an_empty_login() {
        for (login, focused) in [("ivanov@mail.ru", "password"), (" ", "login")] {
            let html = LoginPage::refused(login.to_owned(), &wrong_password()).render().unwrap();
            assert_eq!(html.matches("autofocus").count(), 1, "{html}");
            let field = html.split("<input").find(|i| i.contains("autofocus")).unwrap_or_default();
            assert!(field.contains(&format!(r#"id="{focused}""#)), "{login:?}: {field}");
            assert!(html.contains(&format!(r##"<a href="#{focused}">Неверный пароль.</a>"##)), "{html}");
            assert!(html.starts_with("<!doctype html>") && html.contains("<title>Ошибка: Вход — "));
        }
    }

    #[test]
    fn error_message_pages_are_titled_so() {
        let error = MessagePage::error("Ссылка не работает", "Запросите новую.", "/", "На главную").render().unwrap();
        assert!(error.contains("<title>Ошибка: Ссылка не работает — "));
        let fine = MessagePage::new("Пароль изменён", "Войдите.", "/login", "Войти").render().unwrap();
        assert!(fine.contains("<title>Пароль изменён — "));
    }
}
