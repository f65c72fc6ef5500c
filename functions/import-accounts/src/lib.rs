//! S3 `ObjectCreated` under `incoming/` of the billing bucket: loads the
//! uploaded billing export. An error fails the invocation, so Lambda retries
//! it; a retried or duplicated event redoes nothing that was done. When the
//! retries are spent (or the function timed out or ran out of memory),
//! Lambda sends the event to the on-failure queue, whose consumer
//! (`import-failures`) writes the failure report.

use aws_lambda_events::event::s3::S3Event;
use cabinet::Services;
use cabinet::errors::Unexpected;
use cabinet::files::object_key;
use cabinet::usecases::import::{Imported, import_object};

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
