//! Keeps secrets out of logs, job output and errors.
//!
//! A plugin may log its own token by mistake (or on purpose). Every line it logs, and
//! every error message it returns, passes through the [`Redactor`] of its plugin: the
//! exact secret values and their common encodings (base64, URL-safe base64, hex,
//! percent-encoding) are replaced by `[REDACTED]`, and control characters are removed so
//! a line cannot forge other log lines or terminal escapes.

use base64::Engine as _;

/// Longest message kept, in bytes; longer ones are cut on a character boundary.
pub const MAX_MESSAGE_BYTES: usize = 4096;

/// Redacts one plugin's secrets.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    needles: Vec<String>,
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
        // Longest first, so a value is redacted before a shorter encoding inside it.
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        needles.dedup();
        Self { needles }
    }

    /// Whether this redactor has anything to hide.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// Returns `text` with secrets replaced, control characters removed and the length
    /// capped.
    pub fn clean(&self, text: &str) -> String {
        let mut out: String = text
            .chars()
            .map(|c| if c.is_control() && c != '\t' { ' ' } else { c })
            .collect();
        for n in &self.needles {
            if out.contains(n.as_str()) {
                out = out.replace(n.as_str(), "[REDACTED]");
            }
        }
        if out.len() > MAX_MESSAGE_BYTES {
            let mut cut = MAX_MESSAGE_BYTES;
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
            out.push_str("…[truncated]");
        }
        out
    }
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
    fn control_characters_cannot_forge_lines() {
        let r = Redactor::default();
        assert_eq!(r.clean("a\nERROR fake\x1b[31m"), "a ERROR fake [31m");
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
