//! Every function of the workspace, as the local stack runs it: an HTTP
//! function by its routes, a consumer by its event source. This is the one
//! table to extend when a function is added; `tests/template.rs` checks it
//! against template.yaml both ways, route by route.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use aws_lambda_events::event::s3::S3Event;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use cabinet::Services;
use cabinet::errors::Unexpected;
use cabinet::web::routes::Route;

type Boxed<T> = Pin<Box<dyn Future<Output = T> + Send>>;
/// A queue consumer's handler: a batch in, the failed messages out.
pub type Batch = fn(Arc<Services>, SqsEvent) -> Boxed<SqsBatchResponse>;
/// A bucket consumer's handler: one invocation; an error makes Lambda run it again.
pub type Upload = fn(Arc<Services>, S3Event) -> Boxed<Result<(), Unexpected>>;

/// An HTTP function: its binary (`Metadata.BuildProperties.Binary`), its
/// route table, and its router given its adapters.
pub struct HttpFunction {
    pub binary: &'static str,
    /// The routes it serves, and whether it serves `$default`.
    pub table: fn() -> (Vec<Route>, bool),
    pub router: fn(Arc<Services>) -> axum::Router,
    /// The router as its Lambda runs it alone (any other path is 404).
    pub alone: fn(Arc<Services>) -> axum::Router,
}

/// The table and router of a function whose state is its adapters.
macro_rules! http_function {
    ($binary:literal, $routes:path) => {
        HttpFunction {
            binary: $binary,
            table: || {
                let routes = $routes();
                (routes.table().to_vec(), routes.serves_default())
            },
            router: |services| $routes().into_router(services),
            alone: |services| $routes().into_function_router(services),
        }
    };
}

pub const HTTP_FUNCTIONS: &[HttpFunction] = &[
    http_function!("register", register::routes),
    http_function!("confirm-email", confirm_email::routes),
    http_function!("login", login::routes),
    http_function!("password", password::routes),
    http_function!("account", account::routes),
    // The pages call no AWS service: their state is the configuration.
    HttpFunction {
        binary: "pages",
        table: || {
            let routes = pages::routes();
            (routes.table().to_vec(), routes.serves_default())
        },
        router: |services| pages::routes().into_router(Arc::new(services.config.clone())),
        alone: |services| pages::routes().into_function_router(Arc::new(services.config.clone())),
    },
];

/// What a consumer is fed by, and its handler.
#[derive(Clone, Copy)]
pub enum Source {
    /// An SQS queue's batches, as the event source mapping delivers them.
    Queue(Batch),
    /// A bucket's notifications, one asynchronous invocation each.
    Bucket(Upload),
}

pub struct Consumer {
    pub binary: &'static str,
    pub source: Source,
}

pub const CONSUMERS: &[Consumer] = &[
    Consumer {
        binary: "identify",
        source: Source::Queue(|services, event| Box::pin(async move { identify::handle(&services, event).await })),
    },
    Consumer {
        binary: "mail-events",
        source: Source::Queue(|services, event| Box::pin(async move { mail_events::handle(&services, event).await })),
    },
    Consumer {
        binary: "import-failures",
        source: Source::Queue(|services, event| {
            Box::pin(async move { import_failures::handle(&services, event).await })
        }),
    },
    Consumer {
        binary: "import-accounts",
        source: Source::Bucket(|services, event| {
            Box::pin(async move { import_accounts::handle(&services, event).await.map(|_| ()) })
        }),
    },
];

/// The consumer deployed as `binary`.
pub fn consumer(binary: &str) -> Option<&'static Consumer> {
    CONSUMERS.iter().find(|c| c.binary == binary)
}

/// Every function's binary name.
pub fn binaries() -> impl Iterator<Item = &'static str> {
    HTTP_FUNCTIONS.iter().map(|f| f.binary).chain(CONSUMERS.iter().map(|c| c.binary))
}

/// Every HTTP function's router, each with its own adapters, merged behind
/// one listener as API Gateway puts them behind one domain. Two functions
/// serving one method and path would panic here, at start-up.
pub fn merged_router(adapters: impl Fn(&str) -> Arc<Services>) -> axum::Router {
    HTTP_FUNCTIONS.iter().fold(axum::Router::new(), |router, f| router.merge((f.router)(adapters(f.binary))))
}
