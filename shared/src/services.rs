//! The adapters a function needs, built once at start-up and shared by every
//! invocation.

use aws_config::{BehaviorVersion, SdkConfig};

use crate::config::{Config, ConfigError};
#[cfg(feature = "import")]
use crate::files::BillingFiles;
use crate::mail::Mailer;
use crate::queue::IdentificationQueue;
use crate::store::Store;

#[derive(Clone)]
pub struct Services {
    pub config: Config,
    pub store: Store,
    pub mailer: Mailer,
    pub queue: IdentificationQueue,
    /// Billing files in S3 (the import functions only).
    #[cfg(feature = "import")]
    pub files: BillingFiles,
}

impl Services {
    /// Clients for the endpoints configured by the standard AWS variables
    /// (`AWS_ENDPOINT_URL` points them at a local endpoint).
    pub fn new(config: Config, aws: &SdkConfig) -> Self {
        Self::with_clients(
            config,
            aws_sdk_dynamodb::Client::new(aws),
            aws_sdk_sesv2::Client::new(aws),
            aws_sdk_sqs::Client::new(aws),
            #[cfg(feature = "import")]
            aws_sdk_s3::Client::new(aws),
        )
    }

    /// The same with clients built elsewhere (the local stack adds an
    /// interceptor that records each function's calls).
    pub fn with_clients(
        config: Config,
        dynamodb: aws_sdk_dynamodb::Client,
        ses: aws_sdk_sesv2::Client,
        sqs: aws_sdk_sqs::Client,
        #[cfg(feature = "import")] s3: aws_sdk_s3::Client,
    ) -> Self {
        let store = Store::new(dynamodb, &config.residents_table, &config.billing_table, &config.audit_table);
        let mailer = Mailer::new(ses, &config.mail_from, config.ses_configuration_set.clone());
        let queue = IdentificationQueue::new(sqs, &config.identify_queue_url);
        Self {
            config,
            store,
            mailer,
            queue,
            #[cfg(feature = "import")]
            files: BillingFiles::new(s3),
        }
    }

    pub async fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_with(lambda_timeouts()).await
    }

    /// As [`Services::from_env`], with other timeouts (the import moves
    /// large files).
    pub async fn from_env_with(timeouts: aws_config::timeout::TimeoutConfig) -> Result<Self, ConfigError> {
        let config = Config::from_env()?;
        let aws = aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts).load().await;
        Ok(Self::new(config, &aws))
    }
}

/// Timeouts of every AWS call in a function, well under the function's own
/// (15 s for HTTP): a hung call is cut off and retried (the SDK's standard
/// retries, three attempts), and the whole call gives up in time for the
/// resident to get our 503 rather than API Gateway's error.
pub fn lambda_timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(1))
        .operation_attempt_timeout(std::time::Duration::from_millis(2_500))
        .operation_timeout(std::time::Duration::from_secs(6))
        .build()
}

/// Timeouts of the import's AWS calls: billing files and their reports are
/// large, and the import has 15 minutes.
pub fn import_timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(2))
        .operation_attempt_timeout(std::time::Duration::from_secs(60))
        .operation_timeout(std::time::Duration::from_secs(180))
        .build()
}
