//! Lenient field decoding shared by the JSON and the form face: a field may
//! come as a string, a number or null (JSON), or as text (form posts).

use std::fmt;

use serde::Deserializer;
use serde::de::{self, Visitor};

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(TextVisitor)
    }
}

/// A text field: string, number or null.
pub fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    d.deserialize_any(TextVisitor)
}

struct FlagVisitor;

impl<'de> Visitor<'de> for FlagVisitor {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("true, false or a checkbox value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(matches!(v.trim().to_lowercase().as_str(), "on" | "true" | "1" | "yes" | "да"))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v == 1)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(false)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(false)
    }
}

/// A checkbox: JSON `true`, or a form post's `on` (absent means unchecked).
pub fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    d.deserialize_any(FlagVisitor)
}

/// «Адрес верный» on the registration form: the resident says the address
/// is meant as typed, though it looks like a typo of a popular mailbox.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub enum AsTyped {
    #[default]
    No,
    /// Said of whatever address the form holds: the button's `true`, or
    /// JSON's.
    Yes,
    /// Said of this address: the form shown again (another field was still
    /// wrong) carries it in a hidden field, so the resident is not asked
    /// again, while an address changed since is checked anew.
    Of(String),
}

struct AsTypedVisitor;

impl<'de> Visitor<'de> for AsTypedVisitor {
    type Value = AsTyped;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("true, false or an e-mail address")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(if v { AsTyped::Yes } else { AsTyped::No })
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        if FlagVisitor.visit_str::<E>(v)? {
            Ok(AsTyped::Yes)
        } else if v.contains('@') {
            Ok(AsTyped::Of(v.to_owned()))
        } else {
            Ok(AsTyped::No)
        }
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        self.visit_bool(v == 1)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(AsTyped::No)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(AsTyped::No)
    }
}

/// `email_as_typed`: a flag (`true`, a form's `true`), or the address the
/// flag was given for.
pub fn as_typed<'de, D: Deserializer<'de>>(d: D) -> Result<AsTyped, D::Error> {
    d.deserialize_any(AsTypedVisitor)
}
