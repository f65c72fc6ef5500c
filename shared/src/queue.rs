//! SQS adapter for identification jobs. The queue's delivery delay is the
//! one wait a resident has after confirming the e-mail.

use aws_sdk_sqs::Client;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::AccountNumber;
use crate::errors::{AwsContext, Context, Unexpected};
use crate::services::LazyClient;

/// SQS delays one message by at most 15 minutes; a longer wait is chained.
pub const MAX_SQS_DELAY_SECONDS: i64 = 900;

/// "Identify this resident, not before this time."
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentificationJob {
    pub account: AccountNumber,
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// Where the cabinet lives, for the link in the "ready" letter.
    pub base_url: String,
}

impl IdentificationJob {
    /// Seconds SQS should hold the message now: up to the cap, so a longer
    /// wait takes several hops.
    pub fn delay_seconds(&self, now: OffsetDateTime) -> i32 {
        let remaining = (self.not_before - now).whole_seconds();
        // Round up so the job never arrives a fraction of a second early.
        let remaining = if (self.not_before - now).subsec_nanoseconds() > 0 { remaining + 1 } else { remaining };
        i32::try_from(remaining.clamp(0, MAX_SQS_DELAY_SECONDS)).unwrap_or(0)
    }

    pub fn is_due(&self, now: OffsetDateTime) -> bool {
        now >= self.not_before
    }
}

#[derive(Clone)]
pub struct IdentificationQueue {
    client: LazyClient<Client>,
    url: String,
}

impl IdentificationQueue {
    pub fn new(client: LazyClient<Client>, url: impl Into<String>) -> Self {
        Self { client, url: url.into() }
    }

    #[tracing::instrument(skip_all, fields(delay_seconds))]
    pub async fn schedule(&self, job: &IdentificationJob, now: OffsetDateTime) -> Result<(), Unexpected> {
        let delay = job.delay_seconds(now);
        tracing::Span::current().record("delay_seconds", delay);
        let body = serde_json::to_string(job).context("encoding an identification job")?;
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .delay_seconds(delay)
            .send()
            .await
            .aws_context("queueing an identification job")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    fn job(not_before: OffsetDateTime) -> IdentificationJob {
        IdentificationJob { account: AccountNumber::parse("1").unwrap(), not_before, base_url: String::new() }
    }

    #[test]
    fn a_long_wait_is_cut_into_hops_of_at_most_fifteen_minutes() {
        let now = OffsetDateTime::now_utc();
        assert_eq!(job(now + Duration::minutes(40)).delay_seconds(now), 900);
        assert_eq!(job(now + Duration::seconds(30)).delay_seconds(now), 30);
        assert_eq!(job(now + Duration::milliseconds(29_500)).delay_seconds(now), 30);
        assert_eq!(job(now - Duration::seconds(5)).delay_seconds(now), 0);
        assert!(job(now - Duration::seconds(5)).is_due(now));
        assert!(!job(now + Duration::seconds(5)).is_due(now));
    }
}
