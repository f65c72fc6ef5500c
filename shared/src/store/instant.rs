//! The one stored form of an instant a record keeps: RFC 3339 in UTC,
//! fixed width, milliseconds and `Z` always (`2026-11-25T23:35:00.123Z`),
//! so that DynamoDB, comparing strings, orders them as the instants are
//! ordered (the compare-and-swaps of the lock and of the outcome letter
//! rely on it). The TTL attribute ([`super::TTL_ATTRIBUTE`]) is no such
//! instant: it stays a number of seconds, as DynamoDB's TTL requires.
//!
//! The code keeps its arithmetic (Unix milliseconds or seconds in `i64`);
//! [`millis`] and [`seconds`] convert at the storage boundary
//! (`#[serde(with = ...)]`). Items written before this form kept numbers
//! (milliseconds or seconds): both adapters still read them, and every
//! condition that compares an instant also compares the old number
//! (guarded by `attribute_type`, since DynamoDB finds a string and a number
//! never less than each other).

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Deserializer, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z, the span four
/// digits of year can write; instants outside are written as these bounds
/// (order kept, never an error).
const FIRST_MS: i64 = -62_167_219_200_000;
const LAST_MS: i64 = 253_402_300_799_999;

/// The stored form of the instant `ms` (Unix milliseconds).
pub fn from_millis(ms: i64) -> String {
    let ms = ms.clamp(FIRST_MS, LAST_MS);
    let at =
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

/// The stored form of the instant `seconds` (Unix seconds).
pub fn from_seconds(seconds: i64) -> String {
    from_millis(seconds.saturating_mul(1000))
}

/// The stored form of `at` (to the millisecond, earlier digits dropped).
pub fn from_date_time(at: OffsetDateTime) -> String {
    from_millis(millis_of(at))
}

fn millis_of(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos().div_euclid(1_000_000)).unwrap_or(i64::MAX)
}

/// Unix milliseconds of a stored RFC 3339 string (any offset, any number of
/// fractional digits).
fn parse_millis(text: &str) -> Option<i64> {
    OffsetDateTime::parse(text, &Rfc3339).ok().map(millis_of)
}

/// An instant as an attribute value for an expression.
pub fn value_millis(ms: i64) -> AttributeValue {
    AttributeValue::S(from_millis(ms))
}

pub fn value_seconds(seconds: i64) -> AttributeValue {
    AttributeValue::S(from_seconds(seconds))
}

/// An instant as stored now, or as stored before (a number).
#[derive(Deserialize)]
#[serde(untagged)]
enum Stored {
    Text(String),
    Number(i64),
}

/// Unix milliseconds in the code, the stored form in the table; reads the
/// old form, a number of milliseconds, too.
pub mod millis {
    use super::*;

    pub fn serialize<S: Serializer>(ms: &i64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&from_millis(*ms))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
        match Stored::deserialize(deserializer)? {
            Stored::Number(ms) => Ok(ms),
            Stored::Text(text) => {
                parse_millis(&text).ok_or_else(|| serde::de::Error::custom("an instant that is not RFC 3339"))
            }
        }
    }
}

/// Unix seconds in the code, the stored form in the table; reads the old
/// form, a number of seconds, too.
pub mod seconds {
    use super::*;

    pub fn serialize<S: Serializer>(seconds: &i64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&from_seconds(*seconds))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
        match Stored::deserialize(deserializer)? {
            Stored::Number(seconds) => Ok(seconds),
            Stored::Text(text) => parse_millis(&text)
                .map(|ms| ms.div_euclid(1000))
                .ok_or_else(|| serde::de::Error::custom("an instant that is not RFC 3339")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use time::macros::datetime;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Record {
        #[serde(with = "millis")]
        ms: i64,
        #[serde(with = "seconds")]
        s: i64,
    }

    #[test]
    fn instants_are_written_in_utc_with_three_fractional_digits_and_z() {
        let at = datetime!(2026-11-25 23:35:00.123 UTC);
        assert_eq!(from_date_time(at), "2026-11-25T23:35:00.123Z");
        assert_eq!(from_millis(millis_of(at)), "2026-11-25T23:35:00.123Z");
        assert_eq!(from_seconds(at.unix_timestamp()), "2026-11-25T23:35:00.000Z");
        assert_eq!(from_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(from_date_time(datetime!(2026-11-26 02:35:00.123456 +3)), "2026-11-25T23:35:00.123Z");
        assert_eq!(from_millis(i64::MAX), "9999-12-31T23:59:59.999Z");
        assert_eq!(from_millis(i64::MIN), "0000-01-01T00:00:00.000Z");
    }

    #[test]
    fn the_stored_strings_sort_as_the_instants_do_and_have_one_width() {
        let mut instants =
            vec![i64::MIN, -1, 0, 1, 999, 1000, 59_999, 60_000, 1_795_604_700_000, 1_795_604_700_001, i64::MAX];
        for step in [1, 7, 999, 1_001, 86_399_999, 31_536_000_123] {
            instants.extend((0..50).map(|i| 1_700_000_000_000 + i * step));
        }
        instants.sort_unstable();
        let written: Vec<String> = instants.iter().map(|&ms| from_millis(ms)).collect();
        assert!(written.iter().all(|w| w.len() == "2026-11-25T23:35:00.123Z".len()), "{written:?}");
        for (pair, text) in instants.windows(2).zip(written.windows(2)) {
            assert_eq!(pair[0].cmp(&pair[1]), text[0].cmp(&text[1]), "{text:?}");
        }
    }

    #[test]
    fn what_is_written_reads_back_as_it_was() {
        let record = Record { ms: 1_795_604_700_123, s: 1_795_604_700 };
        let item: std::collections::HashMap<String, AttributeValue> = serde_dynamo::to_item(&record).unwrap();
        assert_eq!(item["ms"], AttributeValue::S("2026-11-25T11:05:00.123Z".into()));
        assert_eq!(item["s"], AttributeValue::S("2026-11-25T11:05:00.000Z".into()));
        assert_eq!(serde_dynamo::from_item::<_, Record>(item).unwrap(), record);
        for ms in [-1_500, -1, 0, 1, 1_795_604_700_999] {
            assert_eq!(parse_millis(&from_millis(ms)), Some(ms));
        }
    }

    #[test]
    fn the_old_numeric_forms_and_other_rfc_3339_strings_are_read() {
        let old: std::collections::HashMap<String, AttributeValue> = [
            ("ms".to_owned(), AttributeValue::N("1795604700123".into())),
            ("s".to_owned(), AttributeValue::N("1795604700".into())),
        ]
        .into();
        assert_eq!(
            serde_dynamo::from_item::<_, Record>(old).unwrap(),
            Record { ms: 1_795_604_700_123, s: 1_795_604_700 }
        );
        // As `time::serde::rfc3339` wrote them: any fraction, any offset.
        let other: std::collections::HashMap<String, AttributeValue> = [
            ("ms".to_owned(), AttributeValue::S("2026-11-25T14:05:00.1234567+03:00".into())),
            ("s".to_owned(), AttributeValue::S("2026-11-25T11:05:00.999Z".into())),
        ]
        .into();
        assert_eq!(
            serde_dynamo::from_item::<_, Record>(other).unwrap(),
            Record { ms: 1_795_604_700_123, s: 1_795_604_700 }
        );
        let json: Record = serde_json::from_str(r#"{"ms": 5, "s": "1970-01-01T00:00:01Z"}"#).unwrap();
        assert_eq!(json, Record { ms: 5, s: 1 });
        let bad: std::collections::HashMap<String, AttributeValue> =
            [("ms".to_owned(), AttributeValue::S("yesterday".into())), ("s".to_owned(), AttributeValue::N("1".into()))]
                .into();
        assert!(serde_dynamo::from_item::<_, Record>(bad).is_err());
    }
}
