//! Static pages and assets: help, the personal data policy, the script that
//! enhances the pages, the icon, and the 404 page for any other address.

use cabinet::Services;
use cabinet::web::pages::{HelpPage, PRIVACY_POLICY_VERSION, PrivacyPage};
use cabinet::web::{self, Face};
use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};

const APP_JS: &str = include_str!("../../../shared/static/app.js");
const FAVICON: &str = include_str!("../../../shared/static/favicon.svg");

pub async fn handle(services: &Services, request: Request) -> Response<Body> {
    let face = Face::of(&request);
    if request.method() != Method::GET {
        return web::not_found(face);
    }
    match request.uri().path() {
        "/help" => web::html(200, &HelpPage),
        "/privacy" => web::html(200, &PrivacyPage { version: PRIVACY_POLICY_VERSION, region: services.files.region() }),
        "/static/app.js" => web::asset("text/javascript; charset=utf-8", APP_JS),
        "/favicon.svg" | "/favicon.ico" => web::asset("image/svg+xml", FAVICON),
        _ => web::not_found(face),
    }
}
