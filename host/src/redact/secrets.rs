//! Keeps secrets out of logs, job output and errors.
//!
//! A plugin may log its own token by mistake (or on purpose). Every line it logs, and
//! every error message it returns, passes through the [`Redactor`] of its plugin: the
//! exact secret values and their common encodings (base64, URL-safe base64, hex,
//! percent-encoding) are replaced by `[REDACTED]`, and control characters are removed so
//! a line cannot forge other log lines or terminal escapes.

use std::borrow::Cow;

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine as _;

/// Longest message kept, in bytes; longer ones are cut on a character boundary.
pub const MAX_MESSAGE_BYTES: usize = 4096;

/// What replaces each secret.
const MASK: &str = "[REDACTED]";

/// Redacts one plugin's secrets.
///
/// Every secret and each of its encodings are compiled into one Aho-Corasick automaton
/// when the redactor is built, so a message is scanned once however many secrets the
/// plugin has. Matches are leftmost-longest: where one needle is a prefix of another (a
/// secret and a longer secret that starts with it, or base64 with and without padding),
/// the longer one is masked whole instead of leaving its tail behind.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// `None` when there is nothing to hide.
    matcher: Option<AhoCorasick>,
    /// Length of the longest needle, in bytes.
    longest: usize,
    /// The automaton could not be built (needles past its size limits): every message is
    /// withheld whole rather than risk a secret.
    withhold_all: bool,
}

impl Redactor {
    /// A redactor for these secret values. Values shorter than 4 bytes are only redacted
    /// verbatim: encoding them would redact unrelated text.
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Self {
        let mut needles = Vec::new();
        for s in secrets {
            if s.is_empty() {
                continue;
            }
            needles.push(s.to_owned());
            if s.len() >= 4 {
                let b = s.as_bytes();
                needles.push(base64::engine::general_purpose::STANDARD.encode(b));
                needles.push(base64::engine::general_purpose::STANDARD_NO_PAD.encode(b));
                needles.push(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b));
                needles.push(hex::encode(b));
                needles.push(hex::encode_upper(b));
                let pct: String = url::form_urlencoded::byte_serialize(b).collect();
                needles.push(pct);
            }
        }
        needles.sort_unstable();
        needles.dedup();
        let longest = needles.iter().map(String::len).max().unwrap_or(0);
        if needles.is_empty() {
            return Self::default();
        }
        match AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&needles)
        {
            Ok(matcher) => Self {
                matcher: Some(matcher),
                longest,
                withhold_all: false,
            },
            Err(e) => {
                tracing::error!("secret redaction unavailable ({e}); plugin messages are withheld");
                Self {
                    matcher: None,
                    longest,
                    withhold_all: true,
                }
            }
        }
    }

    /// Whether this redactor has anything to hide.
    pub fn is_empty(&self) -> bool {
        self.matcher.is_none() && !self.withhold_all
    }

    /// Whether `text` holds one of the secrets, verbatim or in one of the encodings
    /// [`clean`](Self::clean) masks.
    ///
    /// For what must not carry a secret at all rather than have it masked: a cursor the
    /// next run resumes from, or a follow-up job's name and input, which a mask would
    /// silently change. When redaction is unavailable, any non-empty text counts.
    pub fn contains_secret(&self, text: &str) -> bool {
        if self.withhold_all {
            return !text.is_empty();
        }
        self.matcher.as_ref().is_some_and(|m| m.is_match(text))
    }

    /// Returns `text` with each secret (and encoding) replaced by `[REDACTED]` and
    /// nothing else changed.
    ///
    /// For what the host writes itself and shows whole (failure messages that quote a
    /// plugin's output, job output): unlike [`clean`](Self::clean) it keeps line breaks
    /// and length, and costs no copy when there is nothing to mask.
    pub fn mask<'t>(&self, text: &'t str) -> Cow<'t, str> {
        if self.withhold_all {
            return if text.is_empty() {
                Cow::Borrowed(text)
            } else {
                Cow::Owned(MASK.to_owned())
            };
        }
        match &self.matcher {
            Some(m) if m.is_match(text) => {
                let mut out = String::with_capacity(text.len());
                m.replace_all_with(text, &mut out, |_, _, dst| {
                    dst.push_str(MASK);
                    true
                });
                Cow::Owned(out)
            }
            _ => Cow::Borrowed(text),
        }
    }

    /// Returns `text` with secrets replaced, control characters removed and the length
    /// capped.
    ///
    /// The work is bounded whatever the input's size: a plugin may pass tens of MiB as
    /// one log line or error message, and only the first [`MAX_MESSAGE_BYTES`] survive
    /// anyway. Past a generous prefix the text is cut *before* redaction; a secret that
    /// straddles that cut could then survive as a partial prefix at the very end, so the
    /// last `longest needle` bytes of a cut text are dropped as well.
    pub fn clean(&self, text: &str) -> String {
        if self.withhold_all {
            return MASK.to_owned();
        }
        let input_limit = 2 * MAX_MESSAGE_BYTES + self.longest;
        let (text, cut_input) = if text.len() > input_limit {
            (&text[..floor_char_boundary(text, input_limit)], true)
        } else {
            (text, false)
        };
        let mut out: String = text
            .chars()
            .map(|c| if c.is_control() && c != '\t' { ' ' } else { c })
            .collect();
        if let Some(matcher) = &self.matcher {
            let mut redacted = String::with_capacity(out.len());
            matcher.replace_all_with(&out, &mut redacted, |_, _, dst| {
                dst.push_str(MASK);
                true
            });
            out = redacted;
        }
        if cut_input {
            out.truncate(floor_char_boundary(
                &out,
                out.len().saturating_sub(self.longest),
            ));
        }
        if cut_input || out.len() > MAX_MESSAGE_BYTES {
            out.truncate(floor_char_boundary(&out, MAX_MESSAGE_BYTES));
            out.push_str("…[truncated]");
        }
        out
    }
}

/// The largest char boundary of `s` at or below `at`.
fn floor_char_boundary(s: &str, at: usize) -> usize {
    let mut cut = at.min(s.len());
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_their_encodings_are_redacted() {
        let r = Redactor::new(["ghp_s3cretT0ken"]);
        let b64 = base64::engine::general_purpose::STANDARD.encode("ghp_s3cretT0ken");
        let hexed = hex::encode("ghp_s3cretT0ken");
        for line in [
            "token=ghp_s3cretT0ken".to_owned(),
            format!("Authorization: Basic {b64}"),
            format!("hex {hexed}"),
        ] {
            let cleaned = r.clean(&line);
            assert!(cleaned.contains("[REDACTED]"), "{cleaned}");
            assert!(!cleaned.contains("s3cret"), "{cleaned}");
            assert!(
                !cleaned.contains(&b64) && !cleaned.contains(&hexed),
                "{cleaned}"
            );
        }
    }

    #[test]
    fn a_secret_that_extends_another_is_masked_whole() {
        // Leftmost-longest: at the same start the longer secret wins, so no tail of it is
        // left after the shorter one's mask, in either order of the secrets.
        for secrets in [["abcd1234", "abcd1234efgh"], ["abcd1234efgh", "abcd1234"]] {
            let r = Redactor::new(secrets);
            assert_eq!(
                r.clean("a=abcd1234efgh b=abcd1234 c=abcd1234ef"),
                "a=[REDACTED] b=[REDACTED] c=[REDACTED]ef"
            );
        }
    }

    #[test]
    fn secrets_are_found_and_masked_in_place() {
        let r = Redactor::new(["ghp_s3cretT0ken"]);
        let b64 = base64::engine::general_purpose::STANDARD.encode("ghp_s3cretT0ken");
        assert!(r.contains_secret("page=2&t=ghp_s3cretT0ken"));
        assert!(r.contains_secret(&format!("c:{b64}")));
        assert!(r.contains_secret(&hex::encode("ghp_s3cretT0ken")));
        assert!(!r.contains_secret("page=2"));
        assert_eq!(
            r.mask("a\nghp_s3cretT0ken\tb"),
            "a\n[REDACTED]\tb",
            "only the secret changes"
        );
        assert!(matches!(r.mask("nothing here"), Cow::Borrowed(_)));
        assert!(!Redactor::default().contains_secret("ghp_s3cretT0ken"));
    }

    #[test]
    fn no_secrets_means_nothing_to_hide() {
        assert!(Redactor::default().is_empty());
        assert!(Redactor::new(["", ""]).is_empty());
        assert!(!Redactor::new(["abc"]).is_empty());
        assert_eq!(Redactor::new([""]).clean("a b"), "a b");
    }

    #[test]
    fn control_characters_cannot_forge_lines() {
        let r = Redactor::default();
        assert_eq!(r.clean("a\nERROR fake\x1b[31m"), "a ERROR fake [31m");
    }

    #[test]
    fn huge_messages_are_cut_first_without_leaking_a_split_secret() {
        // A secret much longer than `[REDACTED]`, so a cut text shrinks below the output
        // cap when redacted and its tail would otherwise survive.
        let secret = "ghp_0123456789abcdefghijklmnopqrstuvwxyz";
        let r = Redactor::new([secret]);
        // Text of only secrets, with the input cut falling inside one of them at every
        // possible offset.
        for pad in 0..secret.len() {
            let text = format!(
                "{}{}",
                "x".repeat(pad),
                secret.repeat(2_000_000 / secret.len())
            );
            let out = r.clean(&text);
            assert!(out.len() <= MAX_MESSAGE_BYTES + "…[truncated]".len());
            assert!(out.ends_with("[truncated]"), "{pad}");
            let body = out.trim_end_matches("…[truncated]");
            for n in 4..=secret.len() {
                assert!(!body.contains(&secret[..n]), "pad {pad}: {body}");
            }
        }
        // Unicode at the cut.
        let out = Redactor::default().clean(&"é".repeat(10 * MAX_MESSAGE_BYTES));
        assert!(out.ends_with("[truncated]"));
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let r = Redactor::default();
        let s = "é".repeat(MAX_MESSAGE_BYTES);
        let out = r.clean(&s);
        assert!(out.len() <= MAX_MESSAGE_BYTES + "…[truncated]".len());
        assert!(out.ends_with("[truncated]"));
    }
}
