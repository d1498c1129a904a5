//! Plain text out of the HTML that feeds carry in titles, summaries and content, for
//! keyword extraction: tags go, entities are decoded, `<script>`/`<style>` bodies are
//! dropped and block elements become line breaks so words of two paragraphs do not run
//! together. Text that holds no markup is only entity-decoded and trimmed.
//!
//! This is no HTML parser and need not be: its output is only matched against keywords,
//! never rendered, and the raw markup stays in the event's payload.

/// Elements after which a line break keeps words apart.
const BLOCKS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "br",
    "dd",
    "div",
    "dl",
    "dt",
    "figcaption",
    "figure",
    "footer",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "td",
    "th",
    "tr",
    "ul",
];

/// Whether `s` looks like markup: a `<` that opens a tag, comment or closing tag.
fn has_markup(s: &str) -> bool {
    s.as_bytes()
        .windows(2)
        .any(|w| w[0] == b'<' && (w[1].is_ascii_alphabetic() || w[1] == b'/' || w[1] == b'!'))
}

/// The readable text of `s`, or `None` when nothing readable is left.
pub(crate) fn plain(s: &str) -> Option<String> {
    let text = if has_markup(s) {
        strip_tags(s)
    } else {
        s.to_owned()
    };
    let decoded = decode_entities(&text);
    let lines: Vec<String> = decoded
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        None
    } else {
        Some(lines.join("\n"))
    }
}

fn strip_tags(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        let tag = &rest[lt..];
        let Some(gt) = tag.find('>') else {
            // A `<` that opens nothing: keep the rest as text.
            out.push_str(tag);
            return out;
        };
        let inner = &tag[1..gt];
        rest = &tag[gt + 1..];
        if let Some(comment) = inner.strip_prefix("!--") {
            // `-->` may come after a `>` inside the comment.
            if !comment.ends_with("--") {
                match rest.find("-->") {
                    Some(end) => rest = &rest[end + 3..],
                    None => rest = "",
                }
            }
            continue;
        }
        let name: String = inner
            .trim_start_matches('/')
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase();
        if (name == "script" || name == "style") && !inner.starts_with('/') {
            let close = format!("</{name}");
            match rest.to_ascii_lowercase().find(&close) {
                Some(end) => rest = &rest[end..],
                None => rest = "",
            }
            continue;
        }
        if BLOCKS.contains(&name.as_str()) {
            out.push('\n');
        }
    }
    out.push_str(rest);
    out
}

/// Decodes `&name;`, `&#NNN;` and `&#xHH;`; anything unknown stays as written.
fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let decoded = after
            .find(';')
            .filter(|semi| *semi <= 10)
            .and_then(|semi| entity(&after[..semi]).map(|c| (c, semi)));
        match decoded {
            Some((c, semi)) => {
                out.push(c);
                rest = &after[semi + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn entity(name: &str) -> Option<char> {
    if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse().ok()?,
        };
        return char::from_u32(code).filter(|c| *c != '\0');
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "hellip" => '…',
        "mdash" => '—',
        "ndash" => '–',
        "lsquo" => '‘',
        "rsquo" => '’',
        "ldquo" => '“',
        "rdquo" => '”',
        "laquo" => '«',
        "raquo" => '»',
        "middot" => '·',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_markup_keeping_words_apart() {
        let html = "<p>Rustで<strong>WebAssembly</strong>を書く</p><p>2段落目 &amp; more&nbsp;text</p>\
                    <script>var x = '<p>';</script><!-- a > b --><pre>fn main() {}</pre>";
        assert_eq!(
            plain(html).as_deref(),
            Some("RustでWebAssemblyを書く\n2段落目 & more text\nfn main() {}")
        );
    }

    #[test]
    fn plain_text_is_only_decoded_and_trimmed() {
        assert_eq!(
            plain("  a < b &#x3042;&#12354; &bogus; &  ").as_deref(),
            Some("a < b ああ &bogus; &")
        );
        assert_eq!(plain(" <br/> "), None);
        assert_eq!(plain(""), None);
    }
}
