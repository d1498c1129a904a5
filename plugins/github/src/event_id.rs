//! GitHub event ids, compared as the numbers they are.

use std::cmp::Ordering;

/// A GitHub event id: a decimal string that grows over time (`"52917340118"`).
///
/// Ids are compared numerically so the high-water mark works however long they get:
/// comparing the strings would put `"9"` after `"10"`, and parsing into an integer
/// would one day overflow. Leading zeros are dropped so equal numbers are equal ids.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct EventId(String);

impl EventId {
    /// Accepts a non-empty string of ASCII digits.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let trimmed = s.trim_start_matches('0');
        Some(Self(
            if trimmed.is_empty() { "0" } else { trimmed }.to_owned(),
        ))
    }

    /// The id as GitHub writes it (without leading zeros).
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl Ord for EventId {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.cmp(&other.0))
    }
}

impl PartialOrd for EventId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl serde::Serialize for EventId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for EventId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("not an event id: {s:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> EventId {
        EventId::parse(s).unwrap_or_else(|| panic!("{s} is an id"))
    }

    #[test]
    fn compares_numerically() {
        assert!(id("10") > id("9"));
        assert!(id("52917340118") > id("52864003846"));
        assert!(id("100000000000000000000000") > id("99999999999999999999999"));
        assert_eq!(id("007"), id("7"));
        assert_eq!(id("000"), id("0"));
    }

    #[test]
    fn rejects_non_numeric() {
        for bad in ["", "-1", "12a", " 1", "1.0", "１２"] {
            assert!(EventId::parse(bad).is_none(), "{bad:?}");
        }
    }
}
