//! Turns a response body into a feed, or into an error that says where it went wrong.
//!
//! feed-rs is deliberately lenient (real feeds are messy) and its XML errors carry no
//! position, so an XML body is first checked for well-formedness with quick-xml (the
//! reader feed-rs itself uses): a truncated document or a mismatched tag then fails with
//! its line and column instead of yielding half a feed or a bare "no root element".
//! JSON errors from serde_json already name their line and column.

use feed_rs::model::Feed;
use feed_rs::parser::{self, ParseFeedError};
use quick_xml::events::Event as XmlEvent;

/// Why a body is not a feed, as one line for the job's error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError(pub(crate) String);

/// Parses `body`, fetched from `url` (the base for relative links), as RSS, Atom or
/// JSON Feed.
pub(crate) fn parse(body: &[u8], url: &str) -> Result<Feed, ParseError> {
    let text = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let first = text.iter().copied().find(|b| !b.is_ascii_whitespace());
    match first {
        None => {
            return Err(ParseError(format!(
                "{url} answered with an empty body, not a feed"
            )));
        }
        Some(b'<') => {
            // UTF-16 documents cannot be scanned byte-wise; feed-rs decodes them itself.
            if !(body.starts_with(b"\xFF\xFE") || body.starts_with(b"\xFE\xFF")) {
                check_xml(body).map_err(|(offset, problem)| {
                    let (line, column) = line_column(body, offset);
                    ParseError(format!(
                        "{url} is not well-formed XML: line {line}, column {column}: {problem}"
                    ))
                })?;
            }
        }
        Some(b'{') => {}
        Some(_) => {
            let head: String = String::from_utf8_lossy(&text[..text.len().min(40)])
                .trim()
                .to_owned();
            return Err(ParseError(format!(
                "{url} answered with neither XML nor JSON (it starts with {head:?}), not a feed"
            )));
        }
    }
    parser::Builder::new()
        .base_uri(Some(url))
        // An entry without an id is known by its link alone: feed-rs' default hashes the
        // link with the title, so fixing a typo in a title would store the entry twice.
        .id_generator(|links, title, uri| match links.first() {
            Some(link) => link.href.clone(),
            None => parser::generate_id(links, title, uri),
        })
        .build()
        .parse(body)
        .map_err(|e| ParseError(describe(&e, url)))
}

fn describe(e: &ParseFeedError, url: &str) -> String {
    match e {
        ParseFeedError::ParseError(feed_rs::parser::ParseErrorKind::NoFeedRoot) => format!(
            "{url} is not an RSS, Atom or JSON Feed document: its root is not <rss>, <feed>, <rdf:RDF> or a JSON Feed object"
        ),
        ParseFeedError::JsonSerde(j) => format!(
            "{url} is not a valid JSON Feed: line {}, column {}: {j}",
            j.line(),
            j.column()
        ),
        other => format!("{url} is not a valid feed: {other}"),
    }
}

/// Reads every XML event; the first error, or a document that ends with elements still
/// open, comes back with its byte offset.
fn check_xml(body: &[u8]) -> Result<(), (usize, String)> {
    let mut reader = quick_xml::Reader::from_reader(body);
    reader.config_mut().check_end_names = true;
    let mut open: Vec<String> = Vec::new();
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(XmlEvent::Start(e)) => {
                open.push(e.name().into_inner().to_owned());
            }
            Ok(XmlEvent::End(_)) => {
                open.pop();
            }
            Ok(XmlEvent::Eof) => break,
            Ok(_) => {}
            Err(e) => {
                let at = usize::try_from(reader.error_position()).unwrap_or(body.len());
                return Err((at.min(body.len()), e.to_string()));
            }
        }
        buf.clear();
    }
    match open.last() {
        None => Ok(()),
        Some(name) => Err((
            body.len(),
            format!(
                "the document ends with <{name}> and {} other element(s) still open (truncated?)",
                open.len() - 1
            ),
        )),
    }
}

/// 1-based line and column (in characters) of byte `offset`.
fn line_column(body: &[u8], offset: usize) -> (usize, usize) {
    let before = &body[..offset.min(body.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_characters() {
        let body = "<a>\n  日本語<b>\n".as_bytes();
        let at = body.len() - 1;
        assert_eq!(line_column(body, at), (2, 9));
        assert_eq!(line_column(body, 0), (1, 1));
    }

    #[test]
    fn mismatched_and_truncated_documents_say_where() {
        let e = parse(
            b"<rss version=\"2.0\">\n<channel>\n<item><title>x</item>\n</channel></rss>",
            "http://x/feed",
        )
        .unwrap_err();
        assert!(
            e.0.contains("http://x/feed is not well-formed XML: line 3"),
            "{}",
            e.0
        );
        let e = parse(b"<rss version=\"2.0\"><channel><item>", "http://x/feed").unwrap_err();
        assert!(
            e.0.contains("line 1, column 35") && e.0.contains("<item>"),
            "{}",
            e.0
        );
    }

    #[test]
    fn other_bodies() {
        let e = parse(b"  \n", "http://x/feed").unwrap_err();
        assert!(e.0.contains("empty body"), "{}", e.0);
        let e = parse(b"Not found", "http://x/feed").unwrap_err();
        assert!(e.0.contains("neither XML nor JSON"), "{}", e.0);
        let e = parse(b"<html><body>hi</body></html>", "http://x/feed").unwrap_err();
        assert!(
            e.0.contains("not an RSS, Atom or JSON Feed document"),
            "{}",
            e.0
        );
        let e = parse(
            b"{\"version\": \"https://jsonfeed.org/version/1.1\",\n \"items\": [}",
            "http://x/feed",
        )
        .unwrap_err();
        assert!(e.0.contains("line 2, column"), "{}", e.0);
    }
}
