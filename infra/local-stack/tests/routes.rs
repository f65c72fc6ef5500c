#![allow(clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

//! The functions' routers as the local stack merges them and as each Lambda
//! runs its own: a known path asked with another method is 405 with
//! `Allow`, an unknown path 404, both in Russian. None of these requests
//! reaches AWS, so the adapters point nowhere.

use std::collections::BTreeMap;
use std::sync::Arc;

use cabinet::web::routes::dispatch;
use cabinet::{Config, Services};
use lambda_http::{Body, Request, Response};
use local_stack::HTTP_FUNCTIONS;
use local_stack::functions::merged_router;

async fn services() -> Arc<Services> {
    let config = Config::from_lookup(|name| {
        Some(match name {
            "IDENTIFY_QUEUE_URL" => "http://127.0.0.1:9/queue".to_owned(),
            "MAIL_FROM" => "noreply@example.ru".to_owned(),
            _ if name.ends_with("_TABLE") => "nowhere".to_owned(),
            _ => return None,
        })
    })
    .expect("config");
    Arc::new(Services::new(config, &local_stack::local_aws("http://127.0.0.1:9").await))
}

fn request(method: &str, path: &str) -> Request {
    lambda_http::http::Request::builder()
        .method(method)
        .uri(path)
        .header("accept", "application/json")
        .header("content-type", "application/json")
        .body(Body::from("{}"))
        .expect("a request")
}

fn code(response: &Response<Body>) -> String {
    let body: serde_json::Value = serde_json::from_slice(response.body().as_ref()).expect("a JSON body");
    body["errors"][0]["code"].as_str().unwrap_or_default().to_owned()
}

/// Methods each path is served with, over every function.
fn methods_by_path() -> BTreeMap<&'static str, Vec<&'static str>> {
    let mut paths: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for function in HTTP_FUNCTIONS {
        for route in (function.table)().0 {
            paths.entry(route.path).or_default().push(route.method);
        }
    }
    paths
}

#[tokio::test]
async fn a_known_path_asked_with_another_method_is_405_with_allow() {
    let services = services().await;
    let router = merged_router(|_| services.clone());
    let paths = methods_by_path();
    assert!(paths.len() >= 18, "{paths:?}");
    for (path, methods) in &paths {
        for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
            if methods.contains(&method) {
                continue;
            }
            let response = dispatch(&router, request(method, path)).await;
            assert_eq!(response.status(), 405, "{method} {path}");
            assert_eq!(code(&response), "method_not_allowed", "{method} {path}");
            let allow = response.headers().get("allow").and_then(|v| v.to_str().ok()).unwrap_or_default();
            let mut allowed: Vec<&str> = allow.split(',').map(str::trim).filter(|m| *m != "HEAD").collect();
            allowed.sort_unstable();
            let mut expected = methods.clone();
            expected.sort_unstable();
            assert_eq!(allowed, expected, "Allow of {method} {path}");
        }
    }
}

#[tokio::test]
async fn an_unknown_path_is_404_from_the_default_route_and_from_each_function_alone() {
    let services = services().await;
    let merged = merged_router(|_| services.clone());
    let response = dispatch(&merged, request("GET", "/no-such-page")).await;
    assert_eq!((response.status().as_u16(), code(&response)), (404, "not_found".to_owned()));
    for function in HTTP_FUNCTIONS {
        let alone = (function.alone)(services.clone());
        let response = dispatch(&alone, request("GET", "/no-such-page")).await;
        assert_eq!((response.status().as_u16(), code(&response)), (404, "not_found".to_owned()), "{}", function.binary);
    }
}
