//! The letters the local endpoint has accepted through SES v2, read back
//! from the local endpoint and parsed as MIME.

use mail_parser::MessageParser;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct SentLetter {
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The raw letters SES accepted, for one address or all, from the route the
/// local endpoint adds for this (`infra/moto_server.py`): moto's own dump of
/// every model grows through a test run until reading it takes seconds.
async fn raw_letters(
    http: &reqwest::Client,
    endpoint: &str,
    to: Option<&str>,
) -> Result<Vec<serde_json::Value>, reqwest::Error> {
    let request = http.get(format!("{endpoint}/_letters"));
    let request = match to {
        Some(to) => request.query(&[("to", to)]),
        None => request,
    };
    request.send().await?.error_for_status()?.json().await
}

/// The letters sent through the endpoint to `to` (every letter with `None`),
/// oldest first.
pub async fn sent_letters(
    http: &reqwest::Client,
    endpoint: &str,
    to: Option<&str>,
) -> Result<Vec<SentLetter>, reqwest::Error> {
    let raw = raw_letters(http, endpoint, to).await?;
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
