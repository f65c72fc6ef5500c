//! S3 adapter for billing exports and import reports.

use std::collections::HashMap;
use std::path::Path;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Tag, Tagging};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::errors::{AwsContext, Context, Unexpected};
use crate::services::LazyClient;

/// An object key as S3 events carry it (URL-encoded, `+` for spaces).
pub fn object_key(encoded: &str) -> Result<String, Unexpected> {
    let spaced = encoded.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced).decode_utf8().map(|k| k.into_owned()).context("decoding an S3 key")
}

/// An object fetched from S3 to a local file.
#[derive(Debug, Clone)]
pub struct Downloaded {
    pub etag: String,
    pub bytes: u64,
    /// False when the object was larger than allowed and was not saved.
    pub saved: bool,
}

#[derive(Clone)]
pub struct BillingFiles {
    client: LazyClient<Client>,
}

impl BillingFiles {
    pub fn new(client: LazyClient<Client>) -> Self {
        Self { client }
    }

    /// Streams an object to `destination` without holding it in memory,
    /// unless it is larger than `max_bytes` (then nothing is saved).
    #[tracing::instrument(skip_all, fields(key))]
    pub async fn download(
        &self,
        bucket: &str,
        key: &str,
        destination: &Path,
        max_bytes: u64,
    ) -> Result<Downloaded, Unexpected> {
        let object = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .aws_context("reading a billing file from S3")?;
        let etag = object.e_tag().unwrap_or_default().trim_matches('"').to_owned();
        let bytes = object.content_length().and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
        if bytes > max_bytes {
            return Ok(Downloaded { etag, bytes, saved: false });
        }
        let mut body = object.body.into_async_read();
        let mut file = tokio::fs::File::create(destination).await.context("creating a temporary file")?;
        let copied =
            tokio::io::copy(&mut (&mut body).take(max_bytes + 1), &mut file).await.context("saving a billing file")?;
        file.flush().await.context("saving a billing file")?;
        Ok(Downloaded { etag, bytes: copied.max(bytes), saved: copied <= max_bytes })
    }

    pub async fn upload_file(
        &self,
        bucket: &str,
        key: &str,
        path: &Path,
        content_type: &str,
    ) -> Result<(), Unexpected> {
        let body = ByteStream::from_path(path).await.context("reading a report file")?;
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .body(body)
            .send()
            .await
            .aws_context("writing an import report to S3")?;
        Ok(())
    }

    pub async fn put(&self, bucket: &str, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), Unexpected> {
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .aws_context("writing an import report to S3")?;
        Ok(())
    }

    pub async fn tags(&self, bucket: &str, key: &str) -> Result<HashMap<String, String>, Unexpected> {
        let output =
            self.client.get_object_tagging().bucket(bucket).key(key).send().await.aws_context("reading S3 tags")?;
        Ok(output.tag_set().iter().map(|t| (t.key().to_owned(), t.value().to_owned())).collect())
    }

    pub async fn set_tags(&self, bucket: &str, key: &str, tags: &[(&str, &str)]) -> Result<(), Unexpected> {
        let mut tagging = Tagging::builder();
        for (k, v) in tags {
            tagging = tagging.tag_set(Tag::builder().key(*k).value(*v).build().context("building an S3 tag")?);
        }
        self.client
            .put_object_tagging()
            .bucket(bucket)
            .key(key)
            .tagging(tagging.build().context("building S3 tags")?)
            .send()
            .await
            .aws_context("tagging a billing file")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_keys_as_s3_encodes_them() {
        assert_eq!(object_key("incoming/%D0%9B%D0%A1+2026.csv").unwrap(), "incoming/ЛС 2026.csv");
    }
}
