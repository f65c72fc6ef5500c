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
use cabinet::web::routes::Routes;

type Boxed<T> = Pin<Box<dyn Future<Output = T> + Send>>;
/// A queue consumer's handler: a batch in, the failed messages out.
pub type Batch = fn(Arc<Services>, SqsEvent) -> Boxed<SqsBatchResponse>;
/// A bucket consumer's handler: one invocation; an error makes Lambda run it again.
pub type Upload = fn(Arc<Services>, S3Event) -> Boxed<Result<(), Unexpected>>;

/// An HTTP function: its binary (`Metadata.BuildProperties.Binary`) and its
/// routes.
pub struct HttpFunction {
    pub binary: &'static str,
    pub routes: fn() -> Routes,
}

pub const HTTP_FUNCTIONS: &[HttpFunction] = &[
    HttpFunction { binary: "register", routes: register::routes },
    HttpFunction { binary: "confirm-email", routes: confirm_email::routes },
    HttpFunction { binary: "login", routes: login::routes },
    HttpFunction { binary: "password", routes: password::routes },
    HttpFunction { binary: "account", routes: account::routes },
    HttpFunction { binary: "pages", routes: pages::routes },
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
    HTTP_FUNCTIONS
        .iter()
        .fold(axum::Router::new(), |router, f| router.merge((f.routes)().into_router(adapters(f.binary))))
}
