//! SES bounce and complaint events: an address that bounced for good, or
//! whose owner reported our letter as spam, is marked undeliverable. The
//! resident sees it at login and can correct the address (before it is
//! confirmed) there.

use serde::Deserialize;

use crate::audit::{self, AuditEvent, Entry};
use crate::clock;
use crate::domain::{Email, Undeliverable, UndeliverableReason};
use crate::errors::Unexpected;
use crate::services::Services;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Notification {
    /// Event publishing (configuration sets) says `eventType`; identity
    /// notifications say `notificationType`.
    #[serde(alias = "notificationType")]
    event_type: String,
    #[serde(default)]
    bounce: Option<Bounce>,
    #[serde(default)]
    complaint: Option<Complaint>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bounce {
    bounce_type: String,
    #[serde(default)]
    bounced_recipients: Vec<Recipient>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Complaint {
    #[serde(default)]
    complained_recipients: Vec<Recipient>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Recipient {
    email_address: String,
}

/// An SNS envelope, when the subscription does not deliver raw messages.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Envelope {
    message: String,
}

/// What an SES event means for us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailEvent {
    /// These addresses do not take our mail.
    Undeliverable { reason: UndeliverableReason, recipients: Vec<String> },
    /// A soft bounce, a delivery or another event: nothing to do.
    Other(String),
}

#[derive(Debug, thiserror::Error)]
#[error("not an SES event: {0}")]
pub struct MalformedEvent(#[from] serde_json::Error);

impl MailEvent {
    /// Reads an SES event as SNS delivers it to SQS, raw or in an envelope.
    pub fn parse(body: &str) -> Result<Self, MalformedEvent> {
        let notification: Notification = match serde_json::from_str::<Envelope>(body) {
            Ok(envelope) => serde_json::from_str(&envelope.message)?,
            Err(_) => serde_json::from_str(body)?,
        };
        let addresses = |recipients: Vec<Recipient>| recipients.into_iter().map(|r| r.email_address).collect();
        Ok(match (notification.event_type.as_str(), notification.bounce, notification.complaint) {
            ("Bounce", Some(bounce), _) if bounce.bounce_type == "Permanent" => MailEvent::Undeliverable {
                reason: UndeliverableReason::Bounced,
                recipients: addresses(bounce.bounced_recipients),
            },
            ("Complaint", _, Some(complaint)) => MailEvent::Undeliverable {
                reason: UndeliverableReason::Complained,
                recipients: addresses(complaint.complained_recipients),
            },
            (kind, _, _) => MailEvent::Other(kind.to_owned()),
        })
    }
}

/// Marks the addresses of an event; returns how many belonged to residents.
#[tracing::instrument(skip_all)]
pub async fn record_mail_event(services: &Services, event: &MailEvent) -> Result<usize, Unexpected> {
    let MailEvent::Undeliverable { reason, recipients } = event else {
        return Ok(0);
    };
    let mark = Undeliverable { reason: *reason, at: clock::now() };
    let mut marked = 0;
    for address in recipients {
        let Ok(email) = Email::parse(address) else {
            tracing::warn!("an SES event names an address we could not read");
            continue;
        };
        if let Some(account) = services.store.residents.mark_undeliverable(&email, &mark).await? {
            marked += 1;
            let detail = Some(match reason {
                UndeliverableReason::Bounced => "bounced",
                UndeliverableReason::Complained => "complained",
            });
            audit::record(
                services,
                AuditEvent::EmailUndeliverable,
                Entry { account: Some(&account), detail, ..Entry::default() },
            )
            .await;
        }
    }
    Ok(marked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_bounces_and_complaints_mark_addresses_soft_bounces_do_not() {
        let hard = r#"{"eventType":"Bounce","bounce":{"bounceType":"Permanent","bouncedRecipients":[{"emailAddress":"a@example.ru"}]},"mail":{}}"#;
        assert_eq!(
            MailEvent::parse(hard).unwrap(),
            MailEvent::Undeliverable { reason: UndeliverableReason::Bounced, recipients: vec!["a@example.ru".into()] }
        );
        let soft = r#"{"eventType":"Bounce","bounce":{"bounceType":"Transient","bouncedRecipients":[{"emailAddress":"a@example.ru"}]}}"#;
        assert_eq!(MailEvent::parse(soft).unwrap(), MailEvent::Other("Bounce".into()));
        let complaint = r#"{"notificationType":"Complaint","complaint":{"complainedRecipients":[{"emailAddress":"b@example.ru"}]}}"#;
        let wrapped = serde_json::json!({"Type": "Notification", "Message": complaint}).to_string();
        assert_eq!(
            MailEvent::parse(&wrapped).unwrap(),
            MailEvent::Undeliverable {
                reason: UndeliverableReason::Complained,
                recipients: vec!["b@example.ru".into()]
            }
        );
        assert!(MailEvent::parse("not json").is_err());
    }
}
