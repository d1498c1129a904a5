//! Connection URLs in messages and logs, with their passwords masked.

/// `url` with its password replaced by `***`, for messages and logs. A URL that does not
/// parse is replaced whole by `unparseable` (it may hold a secret where the parser did not
/// recognise one).
pub fn redact_url(url: &str, unparseable: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                // Cannot fail for URLs that have a password (they have a host).
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => unparseable.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_masked_and_unparseable_urls_replaced_whole() {
        assert_eq!(
            redact_url("postgres://u:secret@db:5432/drowl", "?"),
            "postgres://u:***@db:5432/drowl"
        );
        assert_eq!(
            redact_url("redis://:s3cret@cache:6380/2", "?"),
            "redis://:***@cache:6380/2"
        );
        assert_eq!(
            redact_url("postgres://u@db/drowl", "?"),
            "postgres://u@db/drowl"
        );
        assert_eq!(redact_url("db//u:secret@x", "<bad>"), "<bad>");
    }
}
