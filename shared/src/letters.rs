//! The letters residents get, rendered from templates in `templates/mail/`.

use std::time::Duration;

use askama::Template;

use crate::domain::{AccountNumber, Email, RejectionReason};
use crate::errors::{Context, Unexpected};
use crate::mail::Letter;
use crate::numerals::{Unit, count};

#[derive(Template)]
#[template(path = "mail/confirm.html")]
struct ConfirmHtml<'a> {
    subject: &'a str,
    account: &'a str,
    link: &'a str,
    valid_for: &'a str,
    wait: &'a str,
}

#[derive(Template)]
#[template(path = "mail/confirm.txt")]
struct ConfirmText<'a> {
    account: &'a str,
    link: &'a str,
    valid_for: &'a str,
    wait: &'a str,
}

#[derive(Template)]
#[template(path = "mail/ready.html")]
struct ReadyHtml<'a> {
    subject: &'a str,
    account: &'a str,
    link: &'a str,
    added: bool,
}

#[derive(Template)]
#[template(path = "mail/ready.txt")]
struct ReadyText<'a> {
    account: &'a str,
    link: &'a str,
    added: bool,
}

#[derive(Template)]
#[template(path = "mail/rejected.html")]
struct RejectedHtml<'a> {
    subject: &'a str,
    account: &'a str,
    reason: &'a str,
    added: bool,
}

#[derive(Template)]
#[template(path = "mail/rejected.txt")]
struct RejectedText<'a> {
    account: &'a str,
    reason: &'a str,
    added: bool,
}

#[derive(Template)]
#[template(path = "mail/suspended.html")]
struct SuspendedHtml<'a> {
    subject: &'a str,
    account: &'a str,
    ready_at: &'a str,
    others: bool,
}

#[derive(Template)]
#[template(path = "mail/suspended.txt")]
struct SuspendedText<'a> {
    account: &'a str,
    ready_at: &'a str,
    others: bool,
}

#[derive(Template)]
#[template(path = "mail/reset.html")]
struct ResetHtml<'a> {
    subject: &'a str,
    account: &'a str,
    link: &'a str,
    valid_for: &'a str,
}

#[derive(Template)]
#[template(path = "mail/reset.txt")]
struct ResetText<'a> {
    account: &'a str,
    link: &'a str,
    valid_for: &'a str,
}

#[derive(Template)]
#[template(path = "mail/email_change.html")]
struct EmailChangeHtml<'a> {
    subject: &'a str,
    account: &'a str,
    link: &'a str,
    valid_for: &'a str,
}

#[derive(Template)]
#[template(path = "mail/email_change.txt")]
struct EmailChangeText<'a> {
    account: &'a str,
    link: &'a str,
    valid_for: &'a str,
}

#[derive(Template)]
#[template(path = "mail/password_changed.html")]
struct PasswordChangedHtml<'a> {
    subject: &'a str,
    account: &'a str,
    at: &'a str,
    link: &'a str,
}

#[derive(Template)]
#[template(path = "mail/password_changed.txt")]
struct PasswordChangedText<'a> {
    account: &'a str,
    at: &'a str,
    link: &'a str,
}

#[derive(Template)]
#[template(path = "mail/notice.html")]
struct NoticeHtml<'a> {
    subject: &'a str,
    paragraphs: &'a [String],
    link: Option<(&'a str, &'a str)>,
}

#[derive(Template)]
#[template(path = "mail/notice.txt")]
struct NoticeText<'a> {
    paragraphs: &'a [String],
    link: Option<(&'a str, &'a str)>,
}

/// A letter from its HTML and text renderings.
fn letter(to: &Email, subject: &str, html: &impl Template, text: &impl Template) -> Result<Letter, Unexpected> {
    Ok(Letter {
        to: to.clone(),
        subject: subject.to_owned(),
        html: html.render().context("rendering a letter")?,
        text: text.render().context("rendering a letter")?,
    })
}

/// "10 минут", "30 секунд", "24 часа": a lifetime or wait as a resident
/// reads it; from two hours on, whole hours, rounded down (a link is never
/// said to work longer than it does).
pub fn human_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    if seconds < 60 {
        return count(seconds, Unit::Second);
    }
    if seconds >= 7200 {
        return count(seconds / 3600, Unit::Hour);
    }
    let minutes = seconds.div_ceil(60);
    if minutes % 60 == 0 {
        return count(minutes / 60, Unit::Hour);
    }
    count(minutes, Unit::Minute)
}

pub fn confirmation(
    to: &Email,
    account: &AccountNumber,
    link: &str,
    valid_for: Duration,
    identify_delay: Duration,
) -> Result<Letter, Unexpected> {
    let subject = "Подтвердите e-mail для личного кабинета ООО «Потенциал»";
    let wait = human_duration(identify_delay);
    let valid_for = human_duration(valid_for);
    let account = account.as_str();
    letter(
        to,
        subject,
        &ConfirmHtml { subject, account, link, valid_for: &valid_for, wait: &wait },
        &ConfirmText { account, link, valid_for: &valid_for, wait: &wait },
    )
}

/// Identification let the account in: the cabinet opens, or (`added`) an
/// account added to it appears there.
pub fn ready(to: &Email, account: &AccountNumber, link: &str, added: bool) -> Result<Letter, Unexpected> {
    let subject = if added {
        "Лицевой счёт добавлен в личный кабинет ООО «Потенциал»"
    } else {
        "Личный кабинет ООО «Потенциал» открыт"
    };
    let account = account.as_str();
    letter(to, subject, &ReadyHtml { subject, account, link, added }, &ReadyText { account, link, added })
}

/// Identification did not let the account in: the cabinet does not open,
/// or (`added`) the account added to it stays out.
pub fn rejected(
    to: &Email,
    account: &AccountNumber,
    reason: RejectionReason,
    added: bool,
) -> Result<Letter, Unexpected> {
    let subject = "Личный кабинет ООО «Потенциал»: не удалось сверить данные";
    let account = account.as_str();
    let reason = crate::web::messages::rejection(reason);
    let html = RejectedHtml { subject, account, reason, added };
    letter(to, subject, &html, &RejectedText { account, reason, added })
}

/// The payer of the account changed; identification decides again. With
/// `others`, the cabinet has other accounts, which it keeps.
pub fn suspended(to: &Email, account: &AccountNumber, ready_at: &str, others: bool) -> Result<Letter, Unexpected> {
    let subject = if others {
        "Личный кабинет ООО «Потенциал»: лицевой счёт приостановлен до сверки данных"
    } else {
        "Личный кабинет ООО «Потенциал»: вход приостановлен до сверки данных"
    };
    let account = account.as_str();
    let html = SuspendedHtml { subject, account, ready_at, others };
    letter(to, subject, &html, &SuspendedText { account, ready_at, others })
}

/// The password reset link.
pub fn password_reset(
    to: &Email,
    account: &AccountNumber,
    link: &str,
    valid_for: Duration,
) -> Result<Letter, Unexpected> {
    let subject = "Смена пароля личного кабинета ООО «Потенциал»";
    let account = account.as_str();
    let valid_for = human_duration(valid_for);
    let valid_for = valid_for.as_str();
    letter(to, subject, &ResetHtml { subject, account, link, valid_for }, &ResetText { account, link, valid_for })
}

/// The link that confirms a new address of an active resident, sent to
/// that new address.
pub fn email_change(
    to: &Email,
    account: &AccountNumber,
    link: &str,
    valid_for: Duration,
) -> Result<Letter, Unexpected> {
    let subject = "Подтвердите новый e-mail личного кабинета ООО «Потенциал»";
    let account = account.as_str();
    let valid_for = human_duration(valid_for);
    let valid_for = valid_for.as_str();
    letter(
        to,
        subject,
        &EmailChangeHtml { subject, account, link, valid_for },
        &EmailChangeText { account, link, valid_for },
    )
}

/// A notice of a few paragraphs and, optionally, one link (label, URL).
fn notice(to: &Email, subject: &str, paragraphs: &[String], link: Option<(&str, &str)>) -> Result<Letter, Unexpected> {
    letter(to, subject, &NoticeHtml { subject, paragraphs, link }, &NoticeText { paragraphs, link })
}

/// To the current address when someone with the password asks to move the
/// cabinet to `new` (masked): the link cancels it.
pub fn email_change_requested(
    to: &Email,
    account: &AccountNumber,
    new_masked: &str,
    cancel_link: &str,
) -> Result<Letter, Unexpected> {
    let paragraphs = [
        format!(
            "В личном кабинете по лицевому счёту {account} запрошена смена адреса электронной почты на {new_masked}. Адрес сменится, только когда откроют ссылку из письма на новый адрес."
        ),
        "Если это сделали не вы, отмените смену по ссылке ниже: все запросы смены адреса и ссылки для смены пароля перестанут действовать, все сеансы входа завершатся. Затем задайте новый пароль через «Забыли пароль?» на странице входа — ваш пароль знает кто-то ещё.".to_owned(),
    ];
    let subject = "Запрошена смена e-mail личного кабинета ООО «Потенциал»";
    notice(to, subject, &paragraphs, Some(("Это не я — отменить смену адреса", cancel_link)))
}

/// To the old address once the change is done.
pub fn email_changed(to: &Email, account: &AccountNumber, new_masked: &str, at: &str) -> Result<Letter, Unexpected> {
    let paragraphs = [
        format!(
            "Адрес электронной почты личного кабинета по лицевому счёту {account} изменён {at} (по московскому времени) на {new_masked}. Письма теперь приходят туда, а ссылки для смены пароля, отправленные на этот адрес, больше не действуют."
        ),
        "Если адрес меняли не вы, сразу обратитесь в офис управляющей компании: вход в кабинет вернут после проверки документов.".to_owned(),
    ];
    notice(to, "E-mail личного кабинета ООО «Потенциал» изменён", &paragraphs, None)
}

/// To an address someone asked to move a cabinet to while it is already
/// in use in another one: the answer to the asker is the same as for a free
/// address, only this letter tells.
pub fn email_in_use(to: &Email, login_link: &str) -> Result<Letter, Unexpected> {
    let paragraphs = [
        "Кто-то попросил привязать этот адрес электронной почты к личному кабинету ООО «Потенциал», но он уже указан в другом личном кабинете, поэтому ничего не изменилось.".to_owned(),
        "Если это были вы, войдите в кабинет, к которому привязан адрес, или укажите другой адрес. Если нет, просто удалите это письмо.".to_owned(),
    ];
    notice(to, "Адрес уже указан в личном кабинете ООО «Потенциал»", &paragraphs, Some(("Войти", login_link)))
}

/// The notice after a password was changed.
pub fn password_changed(to: &Email, account: &AccountNumber, at: &str, link: &str) -> Result<Letter, Unexpected> {
    let subject = "Пароль личного кабинета ООО «Потенциал» изменён";
    let account = account.as_str();
    letter(to, subject, &PasswordChangedHtml { subject, account, at, link }, &PasswordChangedText { account, at, link })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally_in_russian() {
        assert_eq!(human_duration(Duration::from_secs(30)), "30 секунд");
        assert_eq!(human_duration(Duration::from_secs(21)), "21 секунду");
        assert_eq!(human_duration(Duration::from_secs(600)), "10 минут");
        assert_eq!(human_duration(Duration::from_secs(120)), "2 минуты");
        assert_eq!(human_duration(Duration::from_secs(60)), "1 минуту");
        assert_eq!(human_duration(Duration::from_secs(3600)), "1 час");
        assert_eq!(human_duration(Duration::from_secs(7200)), "2 часа");
    }

    #[test]
    fn the_confirmation_letter_has_the_link_in_both_parts() {
        let to = Email::parse("a@example.ru").unwrap();
        let account = AccountNumber::parse("123").unwrap();
        let letter = confirmation(
            &to,
            &account,
            "https://x/confirm?token=abc&x=1",
            Duration::from_secs(86400),
            Duration::from_secs(600),
        )
        .unwrap();
        assert!(letter.text.contains("https://x/confirm?token=abc&x=1"));
        assert!(letter.html.contains("https://x/confirm?token=abc&#38;x=1"), "{}", letter.html);
        assert!(letter.text.contains("24 ч"));
        assert!(letter.text.contains("10 минут"));
    }

    #[test]
    fn the_confirmation_letter_says_a_number_of_units_as_russian_does() {
        // Issue 14: it said «около 3 секунды».
        let to = Email::parse("a@example.ru").unwrap();
        let account = AccountNumber::parse("123").unwrap();
        for (wait, said) in [(3, "3 секунды"), (60, "1 минуту"), (300, "5 минут"), (1260, "21 минуту")]
        {
            let letter =
                confirmation(&to, &account, "https://x/c", Duration::from_secs(86400), Duration::from_secs(wait))
                    .unwrap();
            for body in [&letter.text, &letter.html] {
                assert!(body.contains(&format!("займёт примерно {said};")), "{body}");
                assert!(body.contains("Ссылка действует 24 часа."), "{body}");
                assert!(!body.contains("около"), "{body}");
            }
        }
    }
}
