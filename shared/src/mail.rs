//! SES v2 adapter. Letters go out as one MIME message with a plain-text and
//! an HTML part, so every mail program shows something readable.

use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{Destination, EmailContent, RawMessage};
use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;

use crate::domain::Email;
use crate::errors::{AwsContext, Context, Unexpected};
use crate::services::LazyClient;

/// A letter ready to send: both bodies already rendered.
#[derive(Debug, Clone)]
pub struct Letter {
    pub to: Email,
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Clone)]
pub struct Mailer {
    client: LazyClient<Client>,
    from_name: String,
    from_address: String,
    configuration_set: Option<String>,
}

/// `Name <address>` or a bare address.
fn split_sender(from: &str) -> (String, String) {
    match from.rsplit_once('<') {
        Some((name, address)) => {
            (name.trim().trim_matches('"').to_owned(), address.trim_end_matches('>').trim().to_owned())
        }
        None => (String::new(), from.trim().to_owned()),
    }
}

impl Mailer {
    pub fn new(client: LazyClient<Client>, from: &str, configuration_set: Option<String>) -> Self {
        let (from_name, from_address) = split_sender(from);
        Self { client, from_name, from_address, configuration_set }
    }

    #[tracing::instrument(skip_all, fields(to = %letter.to.masked()))]
    pub async fn send(&self, letter: &Letter) -> Result<(), Unexpected> {
        let from = if self.from_name.is_empty() {
            Address::new_address(None::<&str>, self.from_address.as_str())
        } else {
            Address::new_address(Some(self.from_name.as_str()), self.from_address.as_str())
        };
        let mime = MessageBuilder::new()
            .from(from)
            .to(letter.to.as_str())
            .subject(letter.subject.as_str())
            .text_body(letter.text.as_str())
            .html_body(letter.html.as_str())
            .write_to_vec()
            .context("building a MIME letter")?;
        let raw = RawMessage::builder().data(Blob::new(mime)).build().context("building an SES raw message")?;
        self.client
            .send_email()
            .from_email_address(&self.from_address)
            .destination(Destination::builder().to_addresses(letter.to.as_str()).build())
            .content(EmailContent::builder().raw(raw).build())
            .set_configuration_set_name(self.configuration_set.clone())
            .send()
            .await
            .aws_context("sending a letter through SES")?;
        tracing::info!("letter sent");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_a_named_sender() {
        assert_eq!(
            split_sender("ЛК «Потенциал» <noreply@example.ru>"),
            ("ЛК «Потенциал»".to_owned(), "noreply@example.ru".to_owned())
        );
        assert_eq!(split_sender("noreply@example.ru"), (String::new(), "noreply@example.ru".to_owned()));
    }
}
