//! Times as residents read them: Moscow time (UTC+3 all year since 2014).

use time::{OffsetDateTime, UtcOffset, format_description::well_known::Rfc3339, macros::format_description};

const MOSCOW: UtcOffset = match UtcOffset::from_hms(3, 0, 0) {
    Ok(offset) => offset,
    Err(_) => UtcOffset::UTC,
};

pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// A moment rounded up to the whole second, so that a "ready at" time is
/// never earlier than the truth.
pub fn ceil_to_second(at: OffsetDateTime) -> OffsetDateTime {
    let whole = at.replace_nanosecond(0).unwrap_or(at);
    if whole < at { whole + time::Duration::SECOND } else { whole }
}

/// `25.11.2026 в 14:05 (МСК)`; seconds round up to the next minute, so the
/// time shown is never earlier than the moment meant.
pub fn moscow(at: OffsetDateTime) -> String {
    let at = ceil_to_second(at);
    let at = if at.second() > 0 { at + time::Duration::seconds(60 - i64::from(at.second())) } else { at };
    let local = at.to_offset(MOSCOW);
    let format = format_description!("[day].[month].[year] в [hour]:[minute]");
    local.format(&format).map(|s| format!("{s} (МСК)")).unwrap_or_default()
}

/// RFC 3339 in Moscow time, as the JSON face gives `ready_at`.
pub fn rfc3339(at: OffsetDateTime) -> String {
    at.to_offset(MOSCOW).format(&Rfc3339).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn shows_moscow_time() {
        assert_eq!(moscow(datetime!(2026-11-25 11:05 UTC)), "25.11.2026 в 14:05 (МСК)");
        assert_eq!(rfc3339(datetime!(2026-11-25 11:05 UTC)), "2026-11-25T14:05:00+03:00");
    }
}
