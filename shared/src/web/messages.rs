//! What the resident reads, in one place: the HTTP status of each error
//! code and the Russian words of the use cases' refusals and states. Use
//! cases return codes and data ([`Refusal`], [`RejectionReason`],
//! [`Undeliverable`]); the edge words them here.

use crate::domain::{RejectionReason, Undeliverable, UndeliverableReason};
use crate::errors::{ErrorBody, ErrorCode, FieldError, Refusal};

/// The HTTP status an error code is answered with.
pub fn status_of(code: ErrorCode) -> u16 {
    match code {
        ErrorCode::AccountNotFound | ErrorCode::NameMismatch => 422,
        ErrorCode::AlreadyRegistered
        | ErrorCode::EmailTaken
        | ErrorCode::EmailHasCabinet
        | ErrorCode::AlreadyInCabinet
        | ErrorCode::LastActiveAccount => 409,
        ErrorCode::NotLinked => 404,
        ErrorCode::InvalidCredentials | ErrorCode::NotAuthenticated => 401,
        ErrorCode::EmailNotConfirmed | ErrorCode::IdentificationPending | ErrorCode::IdentificationFailed => 403,
        ErrorCode::RateLimited | ErrorCode::RegistrationPaused => 429,
        ErrorCode::CrossSiteRequest => 403,
        ErrorCode::NotFound => 404,
        ErrorCode::MethodNotAllowed => 405,
        ErrorCode::ExpiredToken | ErrorCode::AddressChanged | ErrorCode::RegistrationExpired => 410,
        ErrorCode::UnsupportedMediaType => 415,
        ErrorCode::PayloadTooLarge => 413,
        ErrorCode::Unavailable => 503,
        ErrorCode::Internal => 500,
        _ => 400,
    }
}

/// The status of an error answer: that of its first error.
pub fn status(body: &ErrorBody) -> u16 {
    body.errors.first().map_or(400, |e| status_of(e.code))
}

/// The words of a refusal.
pub fn refusal(refusal: &Refusal) -> String {
    match refusal {
        Refusal::LoginRequired => "Укажите e-mail или номер лицевого счёта, указанные при регистрации.".to_owned(),
        Refusal::AccountNotFound { account } => format!(
            "Лицевой счёт {account} не найден в данных ООО «Потенциал». Сверьте номер с последней квитанцией: он напечатан рядом со словами «Лицевой счёт». Если номер верный, обратитесь в офис управляющей компании."
        ),
        Refusal::NameMismatch => "ФИО не совпадает с плательщиком по этому лицевому счёту. Введите фамилию, имя и отчество плательщика так, как они напечатаны на квитанции: полностью, если там они полностью, и инициалами, только если на квитанции инициалы. Регистр букв, «ё» и лишние пробелы значения не имеют.".to_owned(),
        Refusal::AlreadyRegistered => "По этому лицевому счёту личный кабинет уже зарегистрирован. Войдите с e-mail или номером лицевого счёта и паролем.".to_owned(),
        Refusal::EmailTaken => format!("{EMAIL_TAKEN} Укажите другой адрес."),
        // No more than `email_taken` told: the address has a cabinet. The
        // account goes into it only when its owner adds it there.
        Refusal::EmailHasCabinet => "С этим e-mail уже есть личный кабинет или начатая регистрация. Если он ваш, войдите в него и добавьте этот лицевой счёт кнопкой «Добавить лицевой счёт» — второй кабинет не нужен. Если регистрацию ещё не подтвердили, сначала откройте ссылку из письма (на странице входа её можно получить снова). Пароль не помните — нажмите «Забыли пароль?» на странице входа. Если кабинет не ваш, укажите другой адрес.".to_owned(),
        Refusal::AlreadyInCabinet => "Этот лицевой счёт уже есть в вашем кабинете.".to_owned(),
        Refusal::NotLinked => "Этого лицевого счёта нет в вашем кабинете.".to_owned(),
        Refusal::LastActiveAccount => "Без этого лицевого счёта в кабинете не останется подключённых счетов, и войти в него будет нельзя. Отвязать его можно, когда в кабинете есть другой подключённый счёт.".to_owned(),
        Refusal::RegistrationPaused => "По этому лицевому счёту слишком много раз ввели ФИО, которое не совпадает с плательщиком, поэтому регистрация по нему приостановлена на сутки. Обратитесь в офис управляющей компании с документом, удостоверяющим личность, и квитанцией — вам помогут зарегистрироваться.".to_owned(),
        Refusal::UnconfirmedCredentials => "Неверный e-mail, номер лицевого счёта или пароль. Если адрес уже подтверждён, изменить его здесь нельзя: войдите в личный кабинет и смените адрес там.".to_owned(),
        Refusal::SameAddress => "Это и есть ваш текущий адрес. Укажите новый.".to_owned(),
        Refusal::WrongPassword => "Неверный пароль. Введите пароль, с которым вы входите в кабинет.".to_owned(),
        Refusal::CabinetChanged => "Кабинет изменился, пока выполнялся запрос (например, форму отправили дважды). Обновите страницу и проверьте список счетов.".to_owned(),
        Refusal::ChangedMeanwhile => "Регистрация изменилась, пока выполнялся запрос (например, форму отправили дважды). Проверьте почту: если письма нет, отправьте его ещё раз.".to_owned(),
    }
}

/// An address that is another cabinet's: the start of every message about it.
pub const EMAIL_TAKEN: &str = "Этот e-mail уже указан в другом личном кабинете.";

/// Gives every refusal among `errors` its words.
pub fn word(mut errors: Vec<FieldError>) -> Vec<FieldError> {
    for error in &mut errors {
        if let Some(refused) = &error.refusal {
            error.message = refusal(refused);
        }
    }
    errors
}

/// The error answer of `errors`, every refusal worded.
pub fn body(errors: Vec<FieldError>) -> ErrorBody {
    ErrorBody::new(word(errors))
}

/// Why identification did not let a resident in.
pub fn rejection(reason: RejectionReason) -> &'static str {
    match reason {
        RejectionReason::AccountVanished => {
            "Лицевой счёт больше не найден в данных ООО «Потенциал». Обратитесь в офис управляющей компании — мы проверим данные."
        }
        RejectionReason::PayerChanged => {
            "В данных ООО «Потенциал» по этому лицевому счёту теперь указан другой плательщик. Обратитесь в офис управляющей компании, чтобы обновить данные."
        }
    }
}

/// Why letters to the resident's address do not arrive.
pub fn undeliverable(undeliverable: &Undeliverable, masked_email: &str) -> String {
    match undeliverable.reason {
        UndeliverableReason::Bounced => format!(
            "Письма на адрес {masked_email} не доставляются: почтовый сервер ответил, что такого адреса нет. Проверьте адрес и укажите правильный ниже."
        ),
        UndeliverableReason::Complained => format!(
            "Почтовый сервис адреса {masked_email} пометил наше письмо как спам, и мы больше не отправляем на него писем. Укажите другой адрес ниже или отметьте письмо как «не спам» и запросите его снова."
        ),
    }
}

/// What the account page says when letters to the address bounce.
pub fn notices_will_not_arrive(masked_email: &str) -> String {
    format!(
        "Письма на адрес {masked_email} не доставляются, поэтому наши уведомления (например, ссылка для смены пароля) до вас не дойдут. Укажите другой адрес ниже."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_is_worded_and_keeps_its_code_and_field() {
        let refusals = [
            Refusal::LoginRequired,
            Refusal::AccountNotFound { account: "100200300".into() },
            Refusal::NameMismatch,
            Refusal::AlreadyRegistered,
            Refusal::EmailHasCabinet,
            Refusal::EmailTaken,
            Refusal::RegistrationPaused,
            Refusal::UnconfirmedCredentials,
            Refusal::SameAddress,
            Refusal::WrongPassword,
            Refusal::ChangedMeanwhile,
            Refusal::AlreadyInCabinet,
            Refusal::NotLinked,
            Refusal::LastActiveAccount,
            Refusal::CabinetChanged,
        ];
        let worded = body(refusals.iter().cloned().map(FieldError::refused).collect());
        for (error, refused) in worded.errors.iter().zip(&refusals) {
            assert!(error.message.ends_with('.'), "{refused:?}: {}", error.message);
            assert_eq!((error.code, error.field), (refused.code(), refused.field()));
        }
        assert!(worded.errors[1].message.contains("100200300"));
        let has_cabinet = &worded.errors[4].message;
        assert!(has_cabinet.contains("войдите") && has_cabinet.contains("«Добавить лицевой счёт»"), "{has_cabinet}");
        assert!(worded.errors[5].message.starts_with(EMAIL_TAKEN));
        assert_eq!(status(&worded), 400);
        assert_eq!(status(&body(vec![FieldError::refused(Refusal::NameMismatch)])), 422);
    }

    #[test]
    fn errors_that_have_words_keep_them() {
        let error = FieldError::general(ErrorCode::Invalid, "Своё сообщение.");
        assert_eq!(word(vec![error.clone()]), vec![error]);
    }
}
