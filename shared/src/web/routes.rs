//! One router per HTTP function. A function crate lists its routes once, in
//! a [`Routes`]: its Lambda runs them as an `axum::Router` (lambda_http runs
//! a router as it is), the local stack merges every function's router
//! behind one listener, and a test compares their tables with the routes of
//! template.yaml. A known path asked with another method gets 405 with
//! `Allow` from the router.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::extract::FromRequest;
use axum::handler::Handler;
use axum::routing::MethodRouter;
use lambda_http::{Body, Request, Response};

use super::{Face, admit, body_error, json, method_not_allowed, not_found};
use crate::errors::ErrorCode;
use crate::{Config, Services};

/// What every handler of a function shares: its adapters.
pub type Shared = Arc<Services>;

/// What a function's handlers share: the configuration at least (every
/// request is admitted against it), and for most, the AWS adapters.
pub trait State: Clone + Send + Sync + 'static {
    fn config(&self) -> &Config;
}

impl State for Shared {
    fn config(&self) -> &Config {
        &self.config
    }
}

/// The state of a function that calls no AWS service (the pages): its
/// configuration alone, so it loads no AWS configuration and builds no
/// client.
impl State for Arc<Config> {
    fn config(&self) -> &Config {
        self
    }
}

/// A route a function serves: what API Gateway's route key says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
}

/// A function's routes: the router that serves them and their table.
pub struct Routes<S = Shared> {
    router: Router<S>,
    table: Vec<Route>,
    /// Whether the function serves API Gateway's `$default` route: every
    /// request that no route of any function matches.
    default: bool,
}

impl<S: State> Default for Routes<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: State> Routes<S> {
    pub fn new() -> Self {
        Self { router: Router::new(), table: Vec::new(), default: false }
    }

    pub fn get<H, T>(self, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.add("GET", path, axum::routing::get(handler))
    }

    pub fn post<H, T>(self, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.add("POST", path, axum::routing::post(handler))
    }

    fn add(mut self, method: &'static str, path: &'static str, route: MethodRouter<S>) -> Self {
        self.router = self.router.route(path, route);
        self.table.push(Route { method, path });
        self
    }

    /// Serves API Gateway's `$default` route with `handler`.
    pub fn default_route<H, T>(mut self, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.router = self.router.fallback(handler);
        self.default = true;
        self
    }

    /// The routes, in the order they were added.
    pub fn table(&self) -> &[Route] {
        &self.table
    }

    pub fn serves_default(&self) -> bool {
        self.default
    }

    /// The router with its state, as the local stack merges it: a path
    /// served with other methods answers 405 with `Allow`, and only the
    /// function serving `$default` has a fallback.
    pub fn into_router(self, state: S) -> Router {
        self.router.method_not_allowed_fallback(not_allowed::<S>).with_state(state)
    }

    /// The router as a Lambda runs it alone: any other path is 404.
    pub fn into_function_router(self, state: S) -> Router {
        let router = if self.default { self.router } else { self.router.fallback(unknown_path::<S>) };
        router.method_not_allowed_fallback(not_allowed::<S>).with_state(state)
    }
}

async fn not_allowed<S: State>(incoming: Incoming<S>) -> Response<Body> {
    method_not_allowed(incoming.face)
}

async fn unknown_path<S: State>(incoming: Incoming<S>) -> Response<Body> {
    not_found(incoming.face)
}

/// Largest body read off the wire; [`super::read_form`] refuses anything
/// over [`super::MAX_BODY_BYTES`] with its own message.
const MAX_READ_BYTES: usize = 1024 * 1024;

/// An admitted request, as every handler takes it: the function's state
/// (its adapters), the request with its body read (as API Gateway hands it
/// to lambda_http), and the face it is answered in. A post from another
/// site is refused here (see [`admit`]).
pub struct Incoming<S = Shared> {
    pub state: S,
    pub request: Request,
    pub face: Face,
}

impl Incoming {
    /// What a handler works with: adapters, request, face.
    pub fn parts(&self) -> (&Services, &Request, Face) {
        (&self.state, &self.request, self.face)
    }
}

impl<S: State> FromRequest<S> for Incoming<S> {
    type Rejection = Response<Body>;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.into_parts();
        let bytes = axum::body::to_bytes(body, MAX_READ_BYTES)
            .await
            .map_err(|_| json(413, &body_error(ErrorCode::PayloadTooLarge, "Слишком большой запрос.")))?;
        let body = if bytes.is_empty() { Body::Empty } else { Body::Binary(bytes.to_vec()) };
        let request = Request::from_parts(parts, body);
        let face = admit(state.config(), &request)?;
        Ok(Self { state: state.clone(), request, face })
    }
}

/// Sends `request` through `router` and reads the answer back as
/// lambda_http's response: text stays text, anything else is binary.
pub async fn dispatch(router: &Router, request: Request) -> Response<Body> {
    use tower_service::Service;
    let mut router = router.clone();
    let ready: Result<(), Infallible> =
        std::future::poll_fn(|cx| Service::<Request>::poll_ready(&mut router, cx)).await;
    let response = match ready {
        Ok(()) => match router.call(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        },
        Err(never) => match never {},
    };
    let (parts, body) = response.into_parts();
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) if bytes.is_empty() => Body::Empty,
        Ok(bytes) => match String::from_utf8(bytes.to_vec()) {
            Ok(text) => Body::Text(text),
            Err(binary) => Body::Binary(binary.into_bytes()),
        },
        // Our bodies are in memory: reading them cannot fail.
        Err(_) => Body::Empty,
    };
    Response::from_parts(parts, body)
}
