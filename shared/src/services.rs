//! The adapters a function needs, built once at start-up and shared by every
//! invocation.

use std::sync::{Arc, LazyLock};

use aws_config::{BehaviorVersion, Region, SdkConfig};

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
        Self::with_lazy_clients(
            config,
            aws_sdk_dynamodb::Client::new(aws),
            LazyClient::from_config(aws, aws_sdk_sesv2::Client::new),
            LazyClient::from_config(aws, aws_sdk_sqs::Client::new),
            #[cfg(feature = "import")]
            LazyClient::from_config(aws, aws_sdk_s3::Client::new),
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
        Self::with_lazy_clients(
            config,
            dynamodb,
            LazyClient::ready(ses),
            LazyClient::ready(sqs),
            #[cfg(feature = "import")]
            LazyClient::ready(s3),
        )
    }

    /// Every request reads DynamoDB, so its client is built at start-up;
    /// mail, the queue and S3 wait for a request that uses them.
    fn with_lazy_clients(
        config: Config,
        dynamodb: aws_sdk_dynamodb::Client,
        ses: LazyClient<aws_sdk_sesv2::Client>,
        sqs: LazyClient<aws_sdk_sqs::Client>,
        #[cfg(feature = "import")] s3: LazyClient<aws_sdk_s3::Client>,
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
        let roots = TrustedRoots::from_vars(std::env::vars());
        let mut loader =
            aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts).http_client(https_client(roots));
        // Lambda always sets both. Naming them spares start-up building the
        // default chains (profiles, SSO, IMDS...), most of the loading.
        if let Some(region) = std::env::var("AWS_REGION").ok().filter(|region| !region.trim().is_empty()) {
            loader = loader.region(Region::new(region));
        }
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
            loader =
                loader.credentials_provider(aws_config::environment::EnvironmentVariableCredentialsProvider::new());
        }
        Ok(Self::new(config, &loader.load().await))
    }
}

/// An AWS client built at its first use: a function whose request sends no
/// mail never builds the SES client (a few hundred microseconds of every cold
/// start otherwise).
pub struct LazyClient<C>(Arc<LazyLock<C, Box<dyn FnOnce() -> C + Send>>>);

impl<C: Send + 'static> LazyClient<C> {
    pub fn ready(client: C) -> Self {
        Self(Arc::new(LazyLock::new(Box::new(move || client))))
    }

    pub fn from_config(aws: &SdkConfig, build: fn(&SdkConfig) -> C) -> Self {
        let aws = aws.clone();
        Self(Arc::new(LazyLock::new(Box::new(move || build(&aws)))))
    }
}

impl<C> Clone for LazyClient<C> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<C> std::ops::Deref for LazyClient<C> {
    type Target = C;

    fn deref(&self) -> &C {
        &self.0
    }
}

/// The roots of Amazon Trust Services, which issue every AWS endpoint's
/// certificate. Trusting these alone, compiled in, spares each cold start
/// reading and parsing the whole system store (hundreds of files, most of a
/// function's init time), and nobody else's CA can stand in for DynamoDB.
const AMAZON_TRUST_SERVICES: &[u8] = include_bytes!("../certs/amazon-trust-services.pem");

/// Which root certificates the AWS clients trust.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustedRoots {
    /// AWS's own endpoints: Amazon Trust Services only.
    AmazonTrustServices,
    /// The system's store.
    System,
}

impl TrustedRoots {
    /// The system's store for an endpoint of our choosing (`AWS_ENDPOINT_URL`
    /// or a service's `AWS_ENDPOINT_URL_*`: a local stack, another cloud),
    /// whose certificate may come from any CA, and when ops ask for it with
    /// `CABINET_TLS_ROOTS=system` (an inspecting proxy, or should AWS ever
    /// issue an endpoint's certificate elsewhere) without a rebuild.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let chosen = vars.into_iter().any(|(name, value)| {
            (name.starts_with("AWS_ENDPOINT_URL") && !value.trim().is_empty())
                || (name == "CABINET_TLS_ROOTS" && value.trim().eq_ignore_ascii_case("system"))
        });
        if chosen { Self::System } else { Self::AmazonTrustServices }
    }
}

/// The SDK's default HTTPS client (hyper 1, rustls with aws-lc, proxies
/// from the environment) with `roots` as its trust store.
fn https_client(roots: TrustedRoots) -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
    use aws_smithy_http_client::{Builder, ConnectorBuilder, proxy::ProxyConfig};

    let trust_store = match roots {
        TrustedRoots::AmazonTrustServices => TrustStore::empty().with_pem_certificate(AMAZON_TRUST_SERVICES),
        TrustedRoots::System => TrustStore::default(),
    };
    let context = TlsContext::builder().with_trust_store(trust_store).build().unwrap_or_default();
    Builder::new().build_with_connector_fn(move |settings, components| {
        let mut connector = ConnectorBuilder::default()
            .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
            .tls_context(context.clone());
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    /// SHA-256 of each root, as published at https://www.amazontrust.com/repository/.
    const PUBLISHED: [&str; 5] = [
        "8ecde6884f3d87b1125ba31ac3fcb13d7016de7f57cc904fe1cb97c6ae98196e", // Amazon Root CA 1
        "1ba5b2aa8c65401a82960118f80bec4f62304d83cec4713a19c39c011ea46db4", // Amazon Root CA 2
        "18ce6cfe7bf14e60b2e347b8dfe868cb31d02ebb3ada271569f50343b46db3a4", // Amazon Root CA 3
        "e35d28419ed02025cfa69038cd623962458da5c695fbdea3c22b0bfb25897092", // Amazon Root CA 4
        "568d6905a2c88708a4b3025190edcfedb1974a606a13c6e5290fcb2ae63edab5", // Starfield Services Root CA - G2
    ];

    #[test]
    fn the_compiled_in_roots_are_exactly_amazon_trust_services_and_parse_as_the_client_parses_them() {
        use rustls_pki_types::{CertificateDer, pem::PemObject};
        // The same parse the HTTP client makes when it builds its connector;
        // there a failure would panic at the first request.
        let certificates =
            CertificateDer::pem_slice_iter(AMAZON_TRUST_SERVICES).collect::<Result<Vec<_>, _>>().unwrap();
        let fingerprints: Vec<String> = certificates
            .iter()
            .map(|der| Sha256::digest(der.as_ref()).iter().map(|byte| format!("{byte:02x}")).collect())
            .collect();
        assert_eq!(fingerprints, PUBLISHED);
    }

    #[test]
    fn a_lazy_client_is_built_once_at_its_first_use_and_shared_by_its_clones() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static BUILT: AtomicUsize = AtomicUsize::new(0);
        let aws = SdkConfig::builder().behavior_version(BehaviorVersion::latest()).build();
        let lazy = LazyClient::from_config(&aws, |_| BUILT.fetch_add(1, Ordering::SeqCst) + 1);
        let clone = lazy.clone();
        assert_eq!(BUILT.load(Ordering::SeqCst), 0, "nothing is built before a use");
        assert_eq!((*clone, *lazy), (1, 1));
        assert_eq!(BUILT.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_configured_endpoint_or_the_ops_switch_is_trusted_through_the_system_store_and_aws_through_amazons_roots() {
        let roots = |vars: &[(&str, &str)]| {
            TrustedRoots::from_vars(vars.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())))
        };
        let lambda = [("AWS_REGION", "eu-central-1"), ("AWS_LAMBDA_FUNCTION_NAME", "login")];
        assert_eq!(roots(&lambda), TrustedRoots::AmazonTrustServices);
        assert_eq!(roots(&[("AWS_ENDPOINT_URL", " ")]), TrustedRoots::AmazonTrustServices);
        assert_eq!(roots(&[("CABINET_TLS_ROOTS", "amazon")]), TrustedRoots::AmazonTrustServices);
        for chosen in [
            ("AWS_ENDPOINT_URL", "https://localstack:4566"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:47001"),
            ("AWS_ENDPOINT_URL_DYNAMODB", "https://ydb.serverless.yandexcloud.net/ru-central1/b1g/etn"),
            ("AWS_ENDPOINT_URL_SESV2", "https://postbox.cloud.yandex.net"),
            ("CABINET_TLS_ROOTS", " System"),
        ] {
            assert_eq!(roots(&[lambda[0], chosen]), TrustedRoots::System, "{chosen:?}");
        }
    }
}
