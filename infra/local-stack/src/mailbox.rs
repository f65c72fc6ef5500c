//! The letters the local endpoint has accepted through SES v2, read back
//! from moto's model dump and parsed as MIME.

use mail_parser::MessageParser;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct SentLetter {
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
}

async fn model_dump(http: &reqwest::Client, endpoint: &str) -> Result<serde_json::Value, reqwest::Error> {
    http.get(format!("{endpoint}/moto-api/data.json")).send().await?.error_for_status()?.json().await
}

/// Every letter sent through the endpoint, oldest first.
pub async fn sent_letters(http: &reqwest::Client, endpoint: &str) -> Result<Vec<SentLetter>, reqwest::Error> {
    // moto builds the dump while other requests change its models, and now
    // and then fails doing so: a few tries.
    let mut attempt = 0;
    let dump = loop {
        match model_dump(http, endpoint).await {
            Ok(dump) => break dump,
            Err(error) if attempt >= 5 => return Err(error),
            Err(_) => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
    };
    let raw = dump.pointer("/ses/RawMessage").and_then(|v| v.as_array()).cloned().unwrap_or_default();
    Ok(raw
        .iter()
        .filter_map(|message| {
            let data = message.get("raw_data")?.as_str()?;
            let parsed = MessageParser::default().parse(data.as_bytes())?;
            let mut to: Vec<String> = message
                .get("destinations")
                .and_then(|d| d.as_array())
                .map(|d| d.iter().filter_map(|a| a.as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            to.dedup();
            Some(SentLetter {
                to,
                subject: parsed.subject().unwrap_or_default().to_owned(),
                text: parsed.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
                html: parsed.body_html(0).map(|t| t.into_owned()).unwrap_or_default(),
            })
        })
        .collect())
}
