//! The registration form: from what arrived (JSON or a form post) to a
//! [`NewRegistration`] whose every part is valid, or every field error at once.

use serde::Deserialize;

use super::{
    AccountNumber, AccountNumberError, Email, EmailDoubt, EmailError, FullName, FullNameError, Password, PasswordError,
    Phone, PhoneError,
};
use crate::errors::{ErrorCode, Field, FieldError};
use crate::forms::{AsTyped, as_typed, flag, text};

/// The fields as they arrived. Everything is optional here so that a missing
/// field is reported as `required` along with every other problem.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct RegistrationForm {
    #[serde(default, deserialize_with = "text")]
    pub account: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub full_name: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub phone: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub password: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub password_confirm: Option<String>,
    #[serde(default, deserialize_with = "flag")]
    pub consent: bool,
    /// The resident says the address is right as typed: the check for a
    /// typo of a popular mailbox is skipped (a domain that does not exist
    /// is still refused). See [`RegistrationForm::kept_as_typed`].
    #[serde(default, deserialize_with = "as_typed")]
    pub email_as_typed: AsTyped,
    /// The suggested address the resident accepted («Исправить на …»,
    /// a submit button, so it works without JavaScript); replaces `email`.
    #[serde(default, deserialize_with = "text")]
    pub use_suggestion: Option<String>,
}

impl RegistrationForm {
    /// The address to register: an accepted suggestion, else the one typed.
    pub fn email_input(&self) -> Option<&str> {
        present(&self.use_suggestion).or_else(|| present(&self.email))
    }

    /// Whether «Адрес верный» holds for the address in the form: said of
    /// it (`true`), or of the same address when the form was shown again.
    pub fn kept_as_typed(&self) -> bool {
        match &self.email_as_typed {
            AsTyped::No => false,
            AsTyped::Yes => true,
            AsTyped::Of(kept) => match (Email::parse(kept), self.email_input().map(Email::parse)) {
                (Ok(kept), Some(Ok(typed))) => kept == typed,
                _ => false,
            },
        }
    }
}

/// A registration whose every field is valid; nothing is known yet about
/// whether the billing data agrees.
#[derive(Debug, Clone)]
pub struct NewRegistration {
    pub account: AccountNumber,
    pub full_name: FullName,
    pub phone: Phone,
    pub email: Email,
    pub password: Password,
    /// A likely intended address when `email` looks like a typo.
    pub email_suggestion: Option<Email>,
}

fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !crate::text::fold(v).is_empty())
}

fn required(field: Field) -> FieldError {
    let message = match field {
        Field::Account => "Укажите номер лицевого счёта — он напечатан на квитанции рядом со словами «Лицевой счёт».",
        Field::FullName => "Укажите фамилию, имя и отчество плательщика так, как они напечатаны на квитанции.",
        Field::Phone => "Укажите номер телефона, например +7 916 123-45-67.",
        Field::Email => "Укажите адрес электронной почты — на него придёт ссылка для подтверждения.",
        Field::Password => "Придумайте пароль не короче 8 символов.",
        Field::PasswordConfirm => "Повторите пароль.",
        _ => "Заполните это поле.",
    };
    FieldError::field(field, ErrorCode::Required, message)
}

pub fn account_error(error: &AccountNumberError) -> FieldError {
    let message = match error {
        AccountNumberError::Empty => return required(Field::Account),
        AccountNumberError::NotDigits => {
            "Номер лицевого счёта состоит только из цифр. Пробелы и дефисы можно оставить — они не мешают."
        }
        AccountNumberError::TooLong => "Номер лицевого счёта слишком длинный. Сверьте его с квитанцией.",
    };
    FieldError::field(Field::Account, ErrorCode::Invalid, message)
}

fn full_name_error(error: &FullNameError) -> FieldError {
    let message = match error {
        FullNameError::Empty => return required(Field::FullName),
        FullNameError::TooLong => "ФИО слишком длинное. Введите его так, как оно напечатано на квитанции.",
        FullNameError::SurnameOnly => {
            "Одной фамилии недостаточно: укажите также имя и отчество или инициалы, например «Иванов И. И.»."
        }
        FullNameError::BadCharacter => {
            "В ФИО могут быть только буквы, дефис и точки после инициалов. Фамилия пишется первой."
        }
        FullNameError::MixedScripts => {
            "В ФИО смешаны русские и латинские буквы. Введите ФИО русскими буквами, как на квитанции."
        }
    };
    FieldError::field(Field::FullName, ErrorCode::Invalid, message)
}

fn phone_error(error: &PhoneError) -> FieldError {
    let message = match error {
        PhoneError::Empty => return required(Field::Phone),
        PhoneError::BadCharacter => "В номере телефона могут быть только цифры, «+», скобки, пробелы и дефисы.",
        PhoneError::WrongLength => {
            "Не похоже на номер телефона. Российский номер — 11 цифр, например +7 916 123-45-67; номер другой страны начните с «+» и кода страны."
        }
    };
    FieldError::field(Field::Phone, ErrorCode::Invalid, message)
}

pub fn email_error(error: &EmailError, input: &str) -> FieldError {
    let message = match error {
        EmailError::Empty => return required(Field::Email),
        EmailError::Invalid => "Это не похоже на адрес электронной почты. Адрес выглядит так: ivanov@mail.ru.",
        EmailError::NonAsciiLocalPart => {
            "Часть адреса до «@» должна быть латинскими буквами. Возможно, включена русская раскладка клавиатуры."
        }
        EmailError::TooLong => "Адрес электронной почты слишком длинный.",
    };
    let suggestion = Email::suggest_for(input);
    let message = match &suggestion {
        Some(s) => format!("{message} Возможно, вы имели в виду {s}?"),
        None => message.to_owned(),
    };
    FieldError::field(Field::Email, ErrorCode::Invalid, message).with_suggestion(suggestion.map(String::from))
}

/// Holds back an address a letter should not go to yet: a domain under no
/// public suffix (always), or a likely typo of a popular mailbox (unless the
/// resident said the address is right as typed).
pub fn check_doubt(email: Email, as_typed: bool) -> Result<Email, FieldError> {
    let domain = email.display_domain();
    match email.doubt() {
        None => Ok(email),
        Some(EmailDoubt::LikelyTypo { .. }) if as_typed => Ok(email),
        Some(EmailDoubt::LikelyTypo { suggestion }) => Err(FieldError::field(
            Field::Email,
            ErrorCode::EmailSuggestion,
            format!(
                "Похоже, в адресе опечатка: {domain}. Возможно, вы имели в виду {suggestion}? Выберите «Исправить на {suggestion}» или, если адрес верный, «Адрес верный»."
            ),
        )
        .with_suggestion(Some(suggestion.to_string()))),
        Some(EmailDoubt::NoSuchDomain { suggestion: Some(suggestion) }) if !as_typed => Err(FieldError::field(
            Field::Email,
            ErrorCode::EmailSuggestion,
            format!(
                "Домена {domain} не существует, письмо на этот адрес не дойдёт. Возможно, вы имели в виду {suggestion}?"
            ),
        )
        .with_suggestion(Some(suggestion.to_string()))),
        Some(EmailDoubt::NoSuchDomain { suggestion }) => Err(FieldError::field(
            Field::Email,
            ErrorCode::Invalid,
            format!(
                "Домена {domain} не существует, письмо на этот адрес не дойдёт. Проверьте часть адреса после «@»."
            ),
        )
        .with_suggestion(suggestion.map(String::from))),
    }
}

fn password_error(error: &PasswordError) -> FieldError {
    let message = match error {
        PasswordError::Empty => return required(Field::Password),
        PasswordError::TooShort => {
            "Пароль слишком короткий: нужно не меньше 8 символов. Удобно взять фразу из нескольких слов."
        }
        PasswordError::TooLong => "Пароль слишком длинный: не больше 128 символов.",
        PasswordError::Common => {
            "Этот пароль слишком распространён, его легко подобрать. Придумайте другой, например фразу из нескольких слов."
        }
        PasswordError::RepeatsPersonalData => {
            "Пароль не должен совпадать с номером лицевого счёта, телефоном или e-mail."
        }
    };
    FieldError::field(Field::Password, ErrorCode::WeakPassword, message)
}

/// Version of the personal data policy residents consent to (`/privacy`).
pub const PRIVACY_POLICY_VERSION: &str = "2026-11-25";

/// A new password typed twice (at registration and at a reset): the
/// password, or every problem with either field.
pub fn parse_new_password(
    password: Option<&str>,
    confirm: Option<&str>,
    personal: &[&str],
) -> Result<Password, Vec<FieldError>> {
    let mut errors = Vec::new();
    let parsed = match password.filter(|p| !p.is_empty()) {
        None => Err(required(Field::Password)),
        Some(v) => Password::parse_new(v, personal).map_err(|e| password_error(&e)),
    };
    match (password, confirm) {
        (_, None | Some("")) => errors.push(required(Field::PasswordConfirm)),
        (Some(p), Some(c)) if Password::from_login_input(p).expose() != Password::from_login_input(c).expose() => {
            errors.push(FieldError::field(
                Field::PasswordConfirm,
                ErrorCode::PasswordMismatch,
                "Пароли не совпадают. Введите один и тот же пароль в оба поля.",
            ))
        }
        _ => {}
    }
    match parsed {
        Ok(password) if errors.is_empty() => Ok(password),
        Ok(_) => Err(errors),
        Err(error) => {
            errors.insert(0, error);
            Err(errors)
        }
    }
}

/// The account number field: required, then parsed.
fn parse_account(value: &Option<String>) -> Result<AccountNumber, FieldError> {
    match present(value) {
        None => Err(required(Field::Account)),
        Some(v) => AccountNumber::parse(v).map_err(|e| account_error(&e)),
    }
}

/// The payer's name field: required, then parsed.
fn parse_full_name(value: &Option<String>) -> Result<FullName, FieldError> {
    match present(value) {
        None => Err(required(Field::FullName)),
        Some(v) => FullName::parse(v).map_err(|e| full_name_error(&e)),
    }
}

/// «Добавить лицевой счёт»: an account and its payer's name as printed on
/// that account's bill.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct AddAccountForm {
    #[serde(default, deserialize_with = "text")]
    pub account: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub full_name: Option<String>,
}

/// An account to add whose fields are valid; whether the billing data
/// agrees is not known yet.
#[derive(Debug, Clone)]
pub struct NewLink {
    pub account: AccountNumber,
    pub full_name: FullName,
}

impl NewLink {
    /// Parses both fields and reports both problems at once, in the words
    /// of the registration form.
    pub fn parse(form: &AddAccountForm) -> Result<Self, Vec<FieldError>> {
        match (parse_account(&form.account), parse_full_name(&form.full_name)) {
            (Ok(account), Ok(full_name)) => Ok(Self { account, full_name }),
            (account, full_name) => Err(account.err().into_iter().chain(full_name.err()).collect()),
        }
    }
}

/// «Отвязать»: the account to remove from the cabinet and the password.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct UnlinkForm {
    #[serde(default, deserialize_with = "text")]
    pub account: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub password: Option<String>,
}

impl NewRegistration {
    /// Parses every field and reports every problem at once.
    pub fn parse(form: &RegistrationForm) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let account = parse_account(&form.account);
        let full_name = parse_full_name(&form.full_name);
        let phone = match present(&form.phone) {
            None => Err(required(Field::Phone)),
            Some(v) => Phone::parse(v).map_err(|e| phone_error(&e)),
        };
        let email = match form.email_input() {
            None => Err(required(Field::Email)),
            Some(v) => Email::parse(v)
                .map_err(|e| email_error(&e, v))
                .and_then(|email| check_doubt(email, form.kept_as_typed())),
        };
        let personal: Vec<&str> = [
            account.as_ref().ok().map(AccountNumber::as_str),
            form.account.as_deref(),
            phone.as_ref().ok().map(Phone::as_str),
            phone.as_ref().ok().map(Phone::digits),
            email.as_ref().ok().map(Email::as_str),
        ]
        .into_iter()
        .flatten()
        .collect();
        let password = parse_new_password(form.password.as_deref(), form.password_confirm.as_deref(), &personal);
        if !form.consent {
            errors.push(FieldError::field(
                Field::Consent,
                ErrorCode::ConsentRequired,
                "Чтобы зарегистрироваться, отметьте согласие на обработку персональных данных.",
            ));
        }
        let (password, mut password_errors) = match password {
            Ok(password) => (Some(password), Vec::new()),
            Err(errors) => (None, errors),
        };
        match (account, full_name, phone, email, password) {
            (Ok(account), Ok(full_name), Ok(phone), Ok(email), Some(password)) if errors.is_empty() => {
                let email_suggestion = email.suggestion();
                Ok(Self { account, full_name, phone, email, password, email_suggestion })
            }
            (account, full_name, phone, email, _) => {
                let mut field_errors: Vec<FieldError> =
                    [account.err(), full_name.err(), phone.err(), email.err()].into_iter().flatten().collect();
                field_errors.append(&mut password_errors);
                field_errors.append(&mut errors);
                Err(field_errors)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid_form() -> RegistrationForm {
        RegistrationForm {
            account: Some("00 1234-5678".into()),
            full_name: Some("Иванов Иван Иванович".into()),
            phone: Some("8 (916) 123-45-67".into()),
            email: Some("ivanov@mail.ru".into()),
            password: Some("синий трамвай".into()),
            password_confirm: Some("синий трамвай".into()),
            consent: true,
            ..RegistrationForm::default()
        }
    }

    fn codes(form: &RegistrationForm) -> Vec<(Option<&'static str>, ErrorCode)> {
        NewRegistration::parse(form).unwrap_err().into_iter().map(|e| (e.field.map(Field::name), e.code)).collect()
    }

    #[test]
    fn a_valid_form_parses_into_normalized_parts() {
        let r = NewRegistration::parse(&valid_form()).unwrap();
        assert_eq!(r.account.as_str(), "12345678");
        assert_eq!(r.phone.as_str(), "+79161234567");
        assert!(r.email_suggestion.is_none());
    }

    #[test]
    fn an_empty_form_reports_every_field_at_once() {
        let got = codes(&RegistrationForm::default());
        let fields: Vec<_> = got.iter().map(|(f, _)| f.unwrap_or("")).collect();
        assert_eq!(fields, ["account", "full_name", "phone", "email", "password", "password_confirm", "consent"]);
        assert!(got[..6].iter().all(|(_, c)| *c == ErrorCode::Required));
        assert_eq!(got[6].1, ErrorCode::ConsentRequired);
    }

    #[test]
    fn each_invalid_field_gets_its_code() {
        type Case = (fn(&mut RegistrationForm), &'static str, ErrorCode);
        let table: Vec<Case> = vec![
            (|f| f.account = Some("12a".into()), "account", ErrorCode::Invalid),
            (|f| f.full_name = Some("Иванов".into()), "full_name", ErrorCode::Invalid),
            (|f| f.phone = Some("123".into()), "phone", ErrorCode::Invalid),
            (|f| f.email = Some("ivanov@".into()), "email", ErrorCode::Invalid),
            (
                |f| {
                    f.password = Some("qwerty123".into());
                    f.password_confirm = f.password.clone();
                },
                "password",
                ErrorCode::WeakPassword,
            ),
            (|f| f.password_confirm = Some("другой пароль".into()), "password_confirm", ErrorCode::PasswordMismatch),
            (|f| f.consent = false, "consent", ErrorCode::ConsentRequired),
        ];
        for (change, field, code) in table {
            let mut form = valid_form();
            change(&mut form);
            assert_eq!(codes(&form), vec![(Some(field), code)], "{field}");
        }
    }

    #[test]
    fn password_equal_to_the_account_number_is_weak() {
        let mut form = valid_form();
        form.account = Some("123456789012".into());
        form.password = Some("123456789012".into());
        form.password_confirm = form.password.clone();
        assert_eq!(codes(&form), vec![(Some("password"), ErrorCode::WeakPassword)]);
    }

    #[test]
    fn an_email_typo_is_suggested_but_not_applied() {
        // Issue 14: a typo is now refused unless the resident says it is
        // meant (`email_as_typed`); mail.ry (no such zone) is refused always.
        let mut form = valid_form();
        form.email = Some("ivanov@gmial.com".into());
        form.email_as_typed = AsTyped::Yes;
        let r = NewRegistration::parse(&form).unwrap();
        assert_eq!(r.email.as_str(), "ivanov@gmial.com");
        assert_eq!(r.email_suggestion.unwrap().as_str(), "ivanov@gmail.com");
    }

    #[test]
    fn an_email_typo_is_refused_with_a_suggestion_along_with_every_other_error() {
        for (typed, suggested) in [
            ("ivanov@mail.ry", "ivanov@mail.ru"),
            ("ivanov@gmial.com", "ivanov@gmail.com"),
            ("ivanov@yandex.ry", "ivanov@yandex.ru"),
            ("ivanov@ьфшд.ru", "ivanov@mail.ru"),
        ] {
            let mut form = valid_form();
            form.email = Some(typed.into());
            form.account = Some("12a".into());
            let errors = NewRegistration::parse(&form).unwrap_err();
            assert_eq!(errors.len(), 2, "{errors:?}");
            assert_eq!((errors[0].field, errors[0].code), (Some(Field::Account), ErrorCode::Invalid));
            assert_eq!((errors[1].field, errors[1].code), (Some(Field::Email), ErrorCode::EmailSuggestion), "{typed}");
            assert_eq!(errors[1].suggestion.as_deref(), Some(suggested), "{typed}");
        }
    }

    #[test]
    fn as_typed_skips_only_the_typo_check() {
        let mut form = valid_form();
        form.email_as_typed = AsTyped::Yes;
        form.email = Some("ivanov@mail.ry".into());
        let errors = NewRegistration::parse(&form).unwrap_err();
        assert_eq!((errors[0].field, errors[0].code), (Some(Field::Email), ErrorCode::Invalid));
        assert_eq!(errors[0].suggestion.as_deref(), Some("ivanov@mail.ru"));
        form.email = Some("ivanov@ьфшд.ru".into());
        assert_eq!(NewRegistration::parse(&form).unwrap().email.display_domain(), "ьфшд.ru");
    }

    #[test]
    fn an_accepted_suggestion_replaces_the_typed_address() {
        let mut form = valid_form();
        form.email = Some("ivanov@mail.ry".into());
        form.use_suggestion = Some("ivanov@mail.ru".into());
        assert_eq!(NewRegistration::parse(&form).unwrap().email.as_str(), "ivanov@mail.ru");
    }

    #[test]
    fn an_invalid_email_carries_a_suggestion() {
        let mut form = valid_form();
        form.email = Some("шмфтщм\"ьфшдюкг".into());
        let errors = NewRegistration::parse(&form).unwrap_err();
        assert_eq!(errors[0].suggestion.as_deref(), Some("ivanov@mail.ru"));
        assert!(errors[0].message.contains("Возможно, вы имели в виду ivanov@mail.ru?"));
    }
    #[test]
    fn the_address_kept_as_typed_holds_for_that_address_only() {
        // Issue 14: the form shown again carries «Адрес верный» with the
        // address it was said of; the same address (in any case) is not
        // questioned again, another one is.
        let mut form = valid_form();
        form.email = Some("Ivanov@Gmial.com ".into());
        form.email_as_typed = AsTyped::Of("ivanov@gmial.com".into());
        assert_eq!(NewRegistration::parse(&form).unwrap().email.as_str(), "ivanov@gmial.com");
        form.email = Some("petrov@gmial.com".into());
        assert_eq!(codes(&form), vec![(Some("email"), ErrorCode::EmailSuggestion)]);
        form.email_as_typed = AsTyped::Of("not an address".into());
        assert_eq!(codes(&form), vec![(Some("email"), ErrorCode::EmailSuggestion)]);
    }

    #[test]
    fn email_as_typed_reads_a_flag_or_an_address_in_both_faces() {
        let read = |body: &str| serde_urlencoded::from_str::<RegistrationForm>(body).unwrap().email_as_typed;
        assert_eq!(read("email_as_typed=true"), AsTyped::Yes);
        assert_eq!(read("email_as_typed=ivanov%40gmial.com"), AsTyped::Of("ivanov@gmial.com".into()));
        assert_eq!(read("email_as_typed="), AsTyped::No);
        assert_eq!(read("email=a%40b.ru"), AsTyped::No);
        let json = |body: &str| serde_json::from_str::<RegistrationForm>(body).unwrap().email_as_typed;
        assert_eq!(json(r#"{"email_as_typed": true}"#), AsTyped::Yes);
        assert_eq!(json(r#"{"email_as_typed": false}"#), AsTyped::No);
        assert_eq!(json(r#"{"email_as_typed": null}"#), AsTyped::No);
    }
}
