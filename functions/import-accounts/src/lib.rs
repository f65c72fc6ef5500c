//! S3 `ObjectCreated` under `incoming/` of the billing bucket: loads the
//! uploaded billing export. An error fails the invocation, so Lambda retries
//! it; a retried or duplicated event redoes nothing that was done.

use aws_lambda_events::event::s3::S3Event;
use cabinet::Services;
use cabinet::errors::{Context, Unexpected};
use cabinet::usecases::import::{Imported, import_object};

/// Object keys in S3 events are URL-encoded, with `+` for spaces.
fn object_key(encoded: &str) -> Result<String, Unexpected> {
    let spaced = encoded.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced).decode_utf8().map(|k| k.into_owned()).context("decoding an S3 key")
}

pub async fn handle(services: &Services, event: S3Event) -> Result<Vec<Imported>, Unexpected> {
    let mut outcomes = Vec::new();
    for record in event.records {
        let (Some(bucket), Some(key)) = (record.s3.bucket.name.as_deref(), record.s3.object.key.as_deref()) else {
            tracing::warn!("S3 record without a bucket or key");
            continue;
        };
        let key = object_key(key)?;
        outcomes.push(import_object(services, bucket, &key).await?);
    }
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_keys_as_s3_encodes_them() {
        assert_eq!(object_key("incoming/%D0%9B%D0%A1+2026.csv").unwrap(), "incoming/ЛС 2026.csv");
    }
}
