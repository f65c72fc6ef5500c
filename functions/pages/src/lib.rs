//! Static pages and assets: help, the personal data policy, the script that
//! enhances the pages, the icon, and the 404 page for any other address.

use std::sync::Arc;

use cabinet::Config;
use cabinet::web::pages::{HelpPage, PRIVACY_POLICY_VERSION, PrivacyPage};
use cabinet::web::routes::{Incoming, Routes};
use cabinet::web::{self};
use lambda_http::http::Method;
use lambda_http::{Body, Response};

const APP_JS: &str = include_str!("../../../shared/static/app.js");
const FAVICON: &str = include_str!("../../../shared/static/favicon.svg");

/// The pages' state: the configuration alone (no AWS client).
pub type Pages = Arc<Config>;

pub fn routes() -> Routes<Pages> {
    Routes::new()
        .get("/help", |_: Incoming<Pages>| async { web::html(200, &HelpPage) })
        .get("/privacy", |incoming: Incoming<Pages>| async move {
            web::html(200, &PrivacyPage { version: PRIVACY_POLICY_VERSION, region: incoming.state.region.clone() })
        })
        .get("/static/app.js", |_: Incoming<Pages>| async { web::asset("text/javascript; charset=utf-8", APP_JS) })
        .get("/favicon.svg", |_: Incoming<Pages>| async { icon() })
        .default_route(anything_else)
}

fn icon() -> Response<Body> {
    web::asset("image/svg+xml", FAVICON)
}

/// API Gateway's `$default` route: the icon browsers ask for by their own
/// name, and the 404 page for every other address.
async fn anything_else(incoming: Incoming<Pages>) -> Response<Body> {
    let (request, face) = (&incoming.request, incoming.face);
    if request.method() == Method::GET && request.uri().path() == "/favicon.ico" {
        return icon();
    }
    web::not_found(face)
}
