//! The pure matching engine of the `keywords` plugin: which tracked keywords occur in a
//! piece of developer activity text, where first, and how often.
//!
//! # Overview
//!
//! A job compiles its keywords once with [`Matcher::new`] and then calls [`Matcher::find`] for
//! every event. Nothing here does I/O or spawns threads, so the same code runs natively (unit
//! tests, host-side tools) and inside the `wasm32-wasip2` component.
//!
//! Matching is always case-insensitive and Unicode-aware, using the `regex` crate's *simple*
//! Unicode case folding for every strategy (so `ÉCOLE` matches `école` and `STRAẞE` matches
//! `straße`, but `STRASSE` does not match `straße`, because `ß` → `ss` is a *full* folding).
//! No Unicode normalisation is applied: fullwidth `ＴｙｐｅＳｃｒｉｐｔ` is not `TypeScript`,
//! and a precomposed `é` is not `e` + U+0301. Add such spellings as synonyms when they matter.
//!
//! # Strategies
//!
//! - [`Strategy::Exact`]: the whole text, trimmed of surrounding whitespace, is the term or a
//!   synonym.
//! - [`Strategy::Substring`]: the term or a synonym occurs anywhere.
//! - [`Strategy::WordBoundary`] (the default): like substring, but an occurrence must not be
//!   glued to a neighbouring word character, with the script-aware rule described on
//!   [`Strategy::WordBoundary`] so that Japanese, Chinese, Korean and Thai text works.
//! - [`Strategy::Regex`]: the keyword's `regex_pattern`, compiled case-insensitively and
//!   size-limited; its synonyms are literal word-boundary alternatives.
//!
//! In every strategy a run of whitespace inside a term or synonym matches any run of Unicode
//! whitespace in the text, so `Visual Studio Code` also matches across a line break.
//!
//! # Example
//!
//! ```
//! use keywords_plugin::matcher::{KeywordSpec, Matcher, Strategy};
//!
//! let specs = [KeywordSpec {
//!     id: "kw-rust".into(),
//!     term: "Rust".into(),
//!     strategy: Strategy::WordBoundary,
//!     regex_pattern: None,
//!     synonyms: vec!["rustlang".into()],
//! }];
//! let matcher = Matcher::new(&specs)?;
//! let found = matcher.find("Rustで書いたCLIツール、rustlang 最高");
//! assert_eq!(found.len(), 1);
//! assert_eq!(found[0].matched_text, "Rust");
//! assert_eq!(found[0].position, 0);
//! assert_eq!(found[0].occurrences, 2);
//! assert!(matcher.find("Rustacean").is_empty());
//! # Ok::<(), keywords_plugin::matcher::MatcherError>(())
//! ```

use std::collections::HashSet;
use std::fmt;
use std::sync::LazyLock;

use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};
use serde::{Deserialize, Serialize};

/// Largest compiled size, in bytes, of one keyword's pattern.
///
/// Keyword patterns are user input: without a cap a pattern such as `(\w{100}){100}` makes
/// the regex compiler allocate hundreds of megabytes, which inside a wasm instance means a
/// trap for the whole job. 1 MiB fits realistic keyword patterns (Unicode `\w+` is about
/// 50 KiB) while keeping 100 worst-case keywords within the plugin's memory budget. Counted
/// repetitions of Unicode classes are what hits it: each copy of `\w` costs about 50 KiB, so
/// `\w{1,15}` fits and `\w{1,30}` does not (`[a-z0-9_]{1,30}` or `\w+` do).
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Largest lazy-DFA cache, in bytes, of one keyword's pattern.
///
/// The cache only speeds matching up; when it fills the engine clears it or falls back to a
/// slower but linear-time engine, so a small cap bounds memory without changing results.
pub const REGEX_DFA_SIZE_LIMIT: usize = 1 << 20;

/// Deepest nesting of groups and repetitions accepted in a keyword pattern.
///
/// The parser recurses on nesting; a low limit stops a hostile `((((…))))` from exhausting the
/// small wasm stack before the size limit is even checked.
const REGEX_NEST_LIMIT: u32 = 64;

/// Compiled-size cap of the combined prefilter over all literal keywords.
///
/// If the prefilter would be bigger, matching still works, only without the prefilter.
const PREFILTER_SIZE_LIMIT: usize = 8 << 20;

/// How a keyword is recognised in text; mirrors drowl's `keywords.match_strategy` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// The whole text, trimmed of surrounding whitespace, equals the term or a synonym
    /// (case-insensitively). Meant for short fields such as tags or language names.
    Exact,
    /// The term or a synonym occurs as a word of its own. This is drowl's default, because it
    /// avoids `React` counting in `Reactive` or `preact`.
    ///
    /// An occurrence is rejected only when, on one side, *both* the occurrence's edge character
    /// and the neighbouring text character are word characters (Unicode `\w`: letters, marks,
    /// digits, connector punctuation such as `_`) of a script written with spaces between
    /// words. Consequences, all tested:
    ///
    /// - Scripts written without spaces (Han, Hiragana, Katakana, Hangul, Thai, Lao, Khmer,
    ///   Myanmar, Tibetan, Bopomofo, Yi and a few more) never need a boundary: `型安全`
    ///   matches in `TypeScriptの型安全な設計`. Hangul is included because Korean particles
    ///   attach directly to nouns (`리액트를`).
    /// - A change from such a script to Latin/digits is a boundary: `TypeScript` matches in
    ///   `TypeScriptを使ってみた`, `Go` in `Go言語`, `生成AI` in `生成AIの活用`.
    /// - Punctuation is never a word character, and an edge that is punctuation needs no
    ///   boundary: `C++` matches in `I love C++!`, `.NET` matches in `ASP.NET`, `Rust` in
    ///   `Rust's` and `#Rust`. Likewise `C` matches in `C++`, `C#` and `Objective-C`, since
    ///   `+`, `#` and `-` are not word characters; add the longer names as separate keywords
    ///   if that matters.
    /// - Digits and `_` are word characters: `Vue` does not match in `Vue3` or `vue_app`.
    #[default]
    WordBoundary,
    /// The term or a synonym occurs anywhere, even inside a longer word.
    Substring,
    /// The keyword's `regex_pattern` matches (case-insensitively; a pattern may still opt out
    /// with an inline `(?-i)`). The term is only the keyword's label and is not matched, so a
    /// pattern can deliberately exclude the bare term; synonyms are matched as literal
    /// word-boundary alternatives, because synonyms are spellings, not patterns. Empty matches
    /// (e.g. from `x*`) are ignored.
    Regex,
}

/// One tracked keyword, as the job hands it to the matcher.
///
/// Deserialises from drowl's keyword rows: `match_strategy` is accepted as an alias of
/// `strategy`, and a missing strategy, pattern or synonym list takes its default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeywordSpec {
    /// drowl's keyword id; copied into every [`Match`] so results can be stored against it.
    pub id: String,
    /// The canonical spelling. Surrounding whitespace is ignored; it must not be blank.
    pub term: String,
    /// How occurrences are recognised; defaults to [`Strategy::WordBoundary`].
    #[serde(default, alias = "match_strategy")]
    pub strategy: Strategy,
    /// The pattern used by [`Strategy::Regex`]; required there and ignored otherwise.
    #[serde(default)]
    pub regex_pattern: Option<String>,
    /// Alternative spellings that count as the same keyword (e.g. `k8s` for `Kubernetes`).
    /// Blank entries are skipped, since editors commonly leave them behind.
    #[serde(default)]
    pub synonyms: Vec<String>,
}

/// One keyword found in one text: what analytics stores per event and keyword.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Match {
    /// The [`KeywordSpec::id`] that matched.
    pub keyword_id: String,
    /// The first occurrence exactly as written in the text (original case), for display.
    pub matched_text: String,
    /// Offset of the first occurrence in Unicode scalar values (chars), not bytes, because
    /// consumers (JavaScript UIs, Postgres `substr`) do not index by UTF-8 bytes.
    pub position: u32,
    /// Number of non-overlapping occurrences of the term or any synonym (at least 1).
    pub occurrences: u32,
}

/// Why a keyword could not be compiled; always names the keyword so that the user can fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MatcherError {
    /// The term is empty or only whitespace, which would match everything or nothing.
    EmptyTerm {
        /// The offending keyword.
        keyword_id: String,
    },
    /// [`Strategy::Regex`] was chosen but `regex_pattern` is missing or blank.
    MissingRegexPattern {
        /// The offending keyword.
        keyword_id: String,
    },
    /// `regex_pattern` is not a valid pattern for the `regex` crate.
    InvalidRegex {
        /// The offending keyword.
        keyword_id: String,
        /// The regex parser's explanation, pointing at the bad part of the pattern.
        message: String,
    },
    /// The compiled pattern would exceed [`REGEX_SIZE_LIMIT`]; this protects the job's memory.
    RegexTooBig {
        /// The offending keyword.
        keyword_id: String,
        /// The size limit in bytes that was exceeded.
        limit: usize,
    },
    /// Two specs share an id, which would make results ambiguous.
    DuplicateId {
        /// The repeated id.
        keyword_id: String,
    },
}

impl MatcherError {
    /// The keyword this error is about, for reporting it next to the keyword in drowl's UI.
    pub fn keyword_id(&self) -> &str {
        match self {
            Self::EmptyTerm { keyword_id }
            | Self::MissingRegexPattern { keyword_id }
            | Self::InvalidRegex { keyword_id, .. }
            | Self::RegexTooBig { keyword_id, .. }
            | Self::DuplicateId { keyword_id } => keyword_id,
        }
    }
}

impl fmt::Display for MatcherError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyTerm { keyword_id } => write!(f, "keyword `{keyword_id}`: term is empty"),
            Self::MissingRegexPattern { keyword_id } => write!(
                f,
                "keyword `{keyword_id}`: match strategy is regex but regex_pattern is missing or empty"
            ),
            Self::InvalidRegex {
                keyword_id,
                message,
            } => write!(
                f,
                "keyword `{keyword_id}`: invalid regex_pattern: {message}"
            ),
            Self::RegexTooBig { keyword_id, limit } => write!(
                f,
                "keyword `{keyword_id}`: pattern is too big (compiled size exceeds {limit} bytes)"
            ),
            Self::DuplicateId { keyword_id } => {
                write!(f, "keyword `{keyword_id}`: id appears more than once")
            }
        }
    }
}

impl std::error::Error for MatcherError {}

/// All keywords of a job, compiled once and reused for every event.
///
/// Compiling costs far more than matching, so build one `Matcher` per job, not per event.
/// Literal keywords (word-boundary and substring) are additionally combined into one
/// prefilter that tells, in a single pass, which of them can occur in a text at all; only
/// those are then located precisely.
#[derive(Debug)]
pub struct Matcher {
    keywords: Vec<CompiledKeyword>,
    /// Patterns of the keywords with `prefilter_slot`, in slot order. `None` when there is
    /// nothing to prefilter or the combination would exceed [`PREFILTER_SIZE_LIMIT`].
    prefilter: Option<RegexSet>,
}

#[derive(Debug)]
struct CompiledKeyword {
    id: String,
    rule: Rule,
    /// Index of this keyword's pattern in [`Matcher::prefilter`], if it has one.
    prefilter_slot: Option<usize>,
}

#[derive(Debug)]
enum Rule {
    /// `\A(?:alternatives)\z`, applied to the trimmed text.
    Exact(Regex),
    /// Word-boundary or substring literals.
    Literal(LiteralRule),
    /// A user pattern plus literal word-boundary synonyms.
    Pattern {
        pattern: Regex,
        synonyms: Option<LiteralRule>,
    },
}

#[derive(Debug)]
struct LiteralRule {
    /// All alternatives, longest first, so that at one position the longest spelling wins.
    any: Regex,
    /// Each alternative anchored with `\A`, longest first; used to retry the other
    /// alternatives at a position where the preferred one failed the boundary check.
    /// Empty when there is a single alternative or no boundary check.
    each: Vec<Regex>,
    word_boundary: bool,
}

impl Matcher {
    /// Compiles `specs`, failing on the first keyword that cannot be compiled.
    ///
    /// Use this when a broken keyword should stop the job so the user notices; see
    /// [`Matcher::new_lenient`] to match with the remaining keywords instead.
    pub fn new(specs: &[KeywordSpec]) -> Result<Self, MatcherError> {
        let mut seen = HashSet::new();
        let mut keywords = Vec::with_capacity(specs.len());
        for spec in specs {
            if !seen.insert(spec.id.as_str()) {
                return Err(MatcherError::DuplicateId {
                    keyword_id: spec.id.clone(),
                });
            }
            keywords.push(CompiledKeyword::compile(spec)?);
        }
        Ok(Self::assemble(keywords))
    }

    /// Compiles every valid keyword of `specs` and returns the errors of the others.
    ///
    /// One mistyped pattern among a hundred keywords should not have to stop all matching;
    /// the caller can record the errors (each names its keyword) and carry on. Of specs
    /// sharing an id, the first is kept.
    pub fn new_lenient(specs: &[KeywordSpec]) -> (Self, Vec<MatcherError>) {
        let mut seen = HashSet::new();
        let mut keywords = Vec::with_capacity(specs.len());
        let mut errors = Vec::new();
        for spec in specs {
            if !seen.insert(spec.id.as_str()) {
                errors.push(MatcherError::DuplicateId {
                    keyword_id: spec.id.clone(),
                });
                continue;
            }
            match CompiledKeyword::compile(spec) {
                Ok(keyword) => keywords.push(keyword),
                Err(error) => errors.push(error),
            }
        }
        (Self::assemble(keywords), errors)
    }

    /// Builds the prefilter over the literal keywords and assigns their slots.
    fn assemble(mut keywords: Vec<CompiledKeyword>) -> Self {
        let patterns: Vec<&str> = keywords
            .iter()
            .filter_map(|keyword| match &keyword.rule {
                Rule::Literal(literal) => Some(literal.any.as_str()),
                Rule::Exact(_) | Rule::Pattern { .. } => None,
            })
            .collect();
        let prefilter = if patterns.is_empty() {
            None
        } else {
            RegexSetBuilder::new(&patterns)
                .case_insensitive(true)
                .size_limit(PREFILTER_SIZE_LIMIT)
                .dfa_size_limit(PREFILTER_SIZE_LIMIT)
                .build()
                .ok()
        };
        if prefilter.is_some() {
            let literal = keywords
                .iter_mut()
                .filter(|keyword| matches!(keyword.rule, Rule::Literal(_)));
            for (slot, keyword) in literal.enumerate() {
                keyword.prefilter_slot = Some(slot);
            }
        }
        Self {
            keywords,
            prefilter,
        }
    }

    /// Finds every keyword occurring in `text`, one [`Match`] per keyword, in the order the
    /// keywords were given (so results are deterministic for storage and tests).
    pub fn find(&self, text: &str) -> Vec<Match> {
        let candidates = self.prefilter.as_ref().map(|set| set.matches(text));
        let mut found = Vec::new();
        let mut spans = Vec::new();
        for keyword in &self.keywords {
            if let (Some(slot), Some(candidates)) = (keyword.prefilter_slot, &candidates)
                && !candidates.matched(slot)
            {
                continue;
            }
            spans.clear();
            keyword.rule.spans(text, &mut spans);
            if let Some(&(start, end)) = spans.first() {
                found.push(Match {
                    keyword_id: keyword.id.clone(),
                    matched_text: text[start..end].to_owned(),
                    position: saturating_u32(text[..start].chars().count()),
                    occurrences: saturating_u32(spans.len()),
                });
            }
        }
        found
    }

    /// How many keywords were compiled (after [`Matcher::new_lenient`] dropped broken ones).
    pub fn len(&self) -> usize {
        self.keywords.len()
    }

    /// Whether there are no keywords, in which case [`Matcher::find`] always returns nothing.
    pub fn is_empty(&self) -> bool {
        self.keywords.is_empty()
    }
}

impl CompiledKeyword {
    fn compile(spec: &KeywordSpec) -> Result<Self, MatcherError> {
        let id = spec.id.as_str();
        let term = spec.term.trim();
        if term.is_empty() {
            return Err(MatcherError::EmptyTerm {
                keyword_id: spec.id.clone(),
            });
        }
        let synonyms = spec
            .synonyms
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty());
        let rule = match spec.strategy {
            Strategy::Exact => {
                let alternatives = alternatives(std::iter::once(term).chain(synonyms));
                let pattern = format!(r"\A(?:{})\z", alternatives.join("|"));
                Rule::Exact(build_regex(id, &pattern)?)
            }
            Strategy::WordBoundary | Strategy::Substring => {
                let alternatives = alternatives(std::iter::once(term).chain(synonyms));
                Rule::Literal(LiteralRule::compile(
                    id,
                    &alternatives,
                    spec.strategy == Strategy::WordBoundary,
                )?)
            }
            Strategy::Regex => {
                let pattern = spec
                    .regex_pattern
                    .as_deref()
                    .filter(|p| !p.trim().is_empty())
                    .ok_or_else(|| MatcherError::MissingRegexPattern {
                        keyword_id: spec.id.clone(),
                    })?;
                let pattern = build_regex(id, pattern)?;
                let alternatives = alternatives(synonyms);
                let synonyms = if alternatives.is_empty() {
                    None
                } else {
                    Some(LiteralRule::compile(id, &alternatives, true)?)
                };
                Rule::Pattern { pattern, synonyms }
            }
        };
        Ok(Self {
            id: spec.id.clone(),
            rule,
            prefilter_slot: None,
        })
    }
}

impl Rule {
    /// Appends the byte spans of all non-overlapping occurrences, in text order.
    fn spans(&self, text: &str, out: &mut Vec<(usize, usize)>) {
        match self {
            Self::Exact(regex) => {
                let trimmed = text.trim();
                if regex.is_match(trimmed) {
                    let start = text.len() - text.trim_start().len();
                    out.push((start, start + trimmed.len()));
                }
            }
            Self::Literal(literal) => literal.spans(text, out),
            Self::Pattern { pattern, synonyms } => {
                out.extend(
                    pattern
                        .find_iter(text)
                        .filter(|m| !m.is_empty())
                        .map(|m| (m.start(), m.end())),
                );
                if let Some(synonyms) = synonyms {
                    let from_pattern = out.len();
                    synonyms.spans(text, out);
                    if from_pattern > 0 && out.len() > from_pattern {
                        merge_non_overlapping(out);
                    }
                }
            }
        }
    }
}

impl LiteralRule {
    /// `alternatives` are escaped patterns, longest first, at least one.
    fn compile(
        id: &str,
        alternatives: &[String],
        word_boundary: bool,
    ) -> Result<Self, MatcherError> {
        let any = build_regex(id, &alternatives.join("|"))?;
        let each = if word_boundary && alternatives.len() > 1 {
            alternatives
                .iter()
                .map(|alternative| build_regex(id, &format!(r"\A(?:{alternative})")))
                .collect::<Result<_, _>>()?
        } else {
            Vec::new()
        };
        Ok(Self {
            any,
            each,
            word_boundary,
        })
    }

    fn spans(&self, text: &str, out: &mut Vec<(usize, usize)>) {
        if !self.word_boundary {
            out.extend(self.any.find_iter(text).map(|m| (m.start(), m.end())));
            return;
        }
        // The regex crate has no look-behind, so boundaries are checked by hand around each
        // candidate. A rejected candidate only moves the search on by one character, so that
        // a valid occurrence starting inside it is still found.
        let mut at = 0;
        while let Some(candidate) = self.any.find_at(text, at) {
            let start = candidate.start();
            let end = if is_word_bounded(text, start, candidate.end()) {
                Some(candidate.end())
            } else {
                self.other_alternative_at(text, start)
            };
            match end {
                Some(end) if end > start => {
                    out.push((start, end));
                    at = end;
                }
                _ => at = start + text[start..].chars().next().map_or(1, char::len_utf8),
            }
            if at > text.len() {
                break;
            }
        }
    }

    /// At a position where the preferred alternative failed the boundary check, the end of
    /// the longest alternative that matches there and passes it (e.g. `Rust` where the
    /// synonym `Rust lang` was rejected in `Rust langX`).
    fn other_alternative_at(&self, text: &str, start: usize) -> Option<usize> {
        let rest = &text[start..];
        self.each.iter().find_map(|alternative| {
            let end = start + alternative.find(rest)?.end();
            is_word_bounded(text, start, end).then_some(end)
        })
    }
}

/// Escapes each spelling into a literal pattern (whitespace runs become `\s+`), drops
/// spellings that differ only in case, and orders them longest first.
fn alternatives<'a>(spellings: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut unique: Vec<&str> = spellings
        .filter(|spelling| seen.insert(spelling.to_lowercase()))
        .collect();
    unique.sort_by_key(|spelling| std::cmp::Reverse(spelling.chars().count()));
    unique
        .into_iter()
        .map(|spelling| {
            spelling
                .split_whitespace()
                .map(regex::escape)
                .collect::<Vec<_>>()
                .join(r"\s+")
        })
        .collect()
}

fn build_regex(keyword_id: &str, pattern: &str) -> Result<Regex, MatcherError> {
    RegexBuilder::new(pattern)
        .case_insensitive(true)
        .unicode(true)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_DFA_SIZE_LIMIT)
        .nest_limit(REGEX_NEST_LIMIT)
        .build()
        .map_err(|error| match error {
            regex::Error::CompiledTooBig(limit) => MatcherError::RegexTooBig {
                keyword_id: keyword_id.to_owned(),
                limit,
            },
            other => MatcherError::InvalidRegex {
                keyword_id: keyword_id.to_owned(),
                message: other.to_string(),
            },
        })
}

/// Sorts spans from two sources and keeps, greedily from the left, the longest span at each
/// start that does not overlap an earlier kept one.
fn merge_non_overlapping(spans: &mut Vec<(usize, usize)>) {
    spans.sort_unstable_by_key(|&(start, end)| (start, std::cmp::Reverse(end)));
    let mut kept_end = 0;
    let mut first = true;
    spans.retain(|&(start, end)| {
        let keep = first || start >= kept_end;
        if keep {
            kept_end = end;
            first = false;
        }
        keep
    });
}

/// Whether the occurrence `text[start..end]` passes the word-boundary rule on both sides
/// (see [`Strategy::WordBoundary`]).
///
/// Combining marks (and zero-width joiners) belong to the character before them: a mark
/// right after the occurrence glues onto it (`cafe` + U+0301 is not `cafe`), and a mark right
/// before it is judged by its base, so the emoji `❤️` (with its variation selector) in
/// `❤️Rust` is no word character.
fn is_word_bounded(text: &str, start: usize, end: usize) -> bool {
    let occurrence = &text[start..end];
    let left = (
        leading_class(occurrence),
        trailing_base_class(&text[..start]),
    );
    let right = (trailing_base_class(occurrence), leading_class(&text[end..]));
    !is_glued(left) && !is_glued(right)
}

/// An edge is glued to its neighbour when both are word characters of spaced scripts.
fn is_glued((edge, neighbour): (CharClass, CharClass)) -> bool {
    edge == CharClass::SpacedWord && neighbour == CharClass::SpacedWord
}

/// Class of the first character; a leading mark continues the word before it.
fn leading_class(s: &str) -> CharClass {
    match s.chars().next().map(classify) {
        None => CharClass::Other,
        Some(CharClass::Mark) => CharClass::SpacedWord,
        Some(class) => class,
    }
}

/// Class of the last character that is not a mark.
fn trailing_base_class(s: &str) -> CharClass {
    s.chars()
        .rev()
        .map(classify)
        .find(|&class| class != CharClass::Mark)
        .unwrap_or(CharClass::Other)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CharClass {
    /// Not a word character: punctuation, symbols, whitespace.
    Other,
    /// A word character of a script that separates words with spaces (Latin, Cyrillic,
    /// Greek, Devanagari, digits, `_`, …).
    SpacedWord,
    /// A word character of a script written without spaces between words.
    UnspacedWord,
    /// Any other combining mark or zero-width joiner, which takes the class of its base.
    Mark,
}

/// Character classes for [`classify`], compiled once per instance rather than per matcher.
struct Classes {
    word: Regex,
    unspaced: Regex,
    mark: Regex,
}

static CLASSES: LazyLock<Classes> = LazyLock::new(|| Classes {
    word: Regex::new(r"\A\w").expect("constant pattern"),
    // Script_Extensions rather than Script, so that e.g. the prolonged sound mark `ー`
    // (Script=Common, scx={Hiragana, Katakana}) counts as Japanese.
    unspaced: Regex::new(concat!(
        r"\A[\p{scx=Han}\p{scx=Hiragana}\p{scx=Katakana}\p{scx=Bopomofo}\p{scx=Hangul}",
        r"\p{scx=Yi}\p{scx=Thai}\p{scx=Lao}\p{scx=Khmer}\p{scx=Myanmar}\p{scx=Tibetan}",
        r"\p{scx=Tai_Le}\p{scx=New_Tai_Lue}\p{scx=Tai_Tham}\p{scx=Tai_Viet}",
        r"\p{scx=Javanese}\p{scx=Balinese}\p{scx=Sundanese}]",
    ))
    .expect("constant pattern"),
    mark: Regex::new(r"\A[\p{M}\x{200C}\x{200D}]").expect("constant pattern"),
});

fn classify(c: char) -> CharClass {
    if c.is_ascii() {
        return if c.is_ascii_alphanumeric() || c == '_' {
            CharClass::SpacedWord
        } else {
            CharClass::Other
        };
    }
    let mut buffer = [0; 4];
    let c = &*c.encode_utf8(&mut buffer);
    let classes = &*CLASSES;
    // Marks first: many combining marks have Script_Extensions listing unspaced scripts too
    // (U+0301 lists Tai Le), but what counts is the script of their base character.
    if !classes.word.is_match(c) {
        CharClass::Other
    } else if classes.mark.is_match(c) {
        CharClass::Mark
    } else if classes.unspaced.is_match(c) {
        CharClass::UnspacedWord
    } else {
        CharClass::SpacedWord
    }
}

fn saturating_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(id: &str, term: &str, strategy: Strategy, synonyms: &[&str]) -> KeywordSpec {
        KeywordSpec {
            id: id.to_owned(),
            term: term.to_owned(),
            strategy,
            regex_pattern: None,
            synonyms: synonyms.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn regex_spec(id: &str, pattern: &str, synonyms: &[&str]) -> KeywordSpec {
        KeywordSpec {
            regex_pattern: Some(pattern.to_owned()),
            ..spec(id, id, Strategy::Regex, synonyms)
        }
    }

    fn one(spec: KeywordSpec) -> Matcher {
        Matcher::new(&[spec]).expect("compiles")
    }

    /// The single match of a one-keyword matcher, if any.
    fn find_one(matcher: &Matcher, text: &str) -> Option<Match> {
        let mut found = matcher.find(text);
        assert!(found.len() <= 1, "{found:?}");
        found.pop()
    }

    fn wb(term: &str) -> Matcher {
        one(spec("k", term, Strategy::WordBoundary, &[]))
    }

    fn assert_wb(term: &str, text: &str, expected: bool) {
        assert_eq!(
            find_one(&wb(term), text).is_some(),
            expected,
            "word-boundary `{term}` in `{text}`"
        );
    }

    // --- exact ---

    #[test]
    fn exact_matches_whole_trimmed_text_case_insensitively() {
        let m = one(spec("ts", "TypeScript", Strategy::Exact, &["TS"]));
        let found = find_one(&m, "  typescript \n").expect("match");
        assert_eq!(found.matched_text, "typescript");
        assert_eq!(found.position, 2);
        assert_eq!(found.occurrences, 1);
        assert!(find_one(&m, "ts").is_some());
        assert!(find_one(&m, "I use TypeScript").is_none());
        assert!(find_one(&m, "TypeScripts").is_none());
        assert!(find_one(&m, "").is_none());
    }

    #[test]
    fn exact_folds_non_ascii_case_but_does_not_normalise() {
        let m = one(spec("e", "école", Strategy::Exact, &[]));
        assert!(find_one(&m, "ÉCOLE").is_some());
        // No NFKC: fullwidth letters are different characters.
        let ts = one(spec("ts", "TypeScript", Strategy::Exact, &[]));
        assert!(find_one(&ts, "ＴｙｐｅＳｃｒｉｐｔ").is_none());
        // Leading whitespace is counted in chars, including the ideographic space.
        let found = find_one(&ts, "\u{3000} TypeScript").expect("match");
        assert_eq!(found.position, 2);
    }

    // --- substring ---

    #[test]
    fn substring_matches_inside_words_and_counts_non_overlapping() {
        let m = one(spec("r", "react", Strategy::Substring, &[]));
        let found = find_one(&m, "preact, Reactive and REACT").expect("match");
        assert_eq!(found.matched_text, "react");
        assert_eq!(found.position, 1);
        assert_eq!(found.occurrences, 3);

        let aa = one(spec("a", "aa", Strategy::Substring, &[]));
        assert_eq!(find_one(&aa, "aaaaa").expect("match").occurrences, 2);
    }

    // --- word boundary: Latin ---

    #[test]
    fn word_boundary_rejects_words_that_merely_contain_the_term() {
        for text in ["Reactive", "preact", "Reacts", "react_native", "React2"] {
            assert_wb("React", text, false);
        }
        for text in ["Google", "golang", "ago", "Go2"] {
            assert_wb("Go", text, false);
        }
        for text in ["Rustacean", "trust", "rustlang"] {
            assert_wb("Rust", text, false);
        }
        assert_wb("Vue", "Vue3", false);
        assert_wb("Vue", "vue_app", false);
    }

    #[test]
    fn word_boundary_accepts_punctuation_neighbours() {
        for text in [
            "Rust",
            "Rust,",
            "(Rust)",
            "Rust.",
            "\"Rust\"",
            "Rust's",
            "Rust’s",
            "#Rust",
            "rust-lang",
            "@rust:",
            "「Rust」",
            "I ❤️Rust",
            "👨‍💻Rust",
        ] {
            assert_wb("Rust", text, true);
        }
        for text in ["Go,", "(Go)", "Go.", "\"Go\"", "Go言語", "Go/Rust", "go!"] {
            assert_wb("Go", text, true);
        }
    }

    #[test]
    fn word_boundary_handles_terms_with_punctuation_edges() {
        assert_wb("C++", "I love C++!", true);
        assert_wb("C++", "c++で書いた", true);
        assert_wb("C++", "ObjC++", false);
        assert_wb("C#", "Unity (C#) scripts", true);
        assert_wb(".NET", "I use .NET 8", true);
        assert_wb(".NET", "ASP.NET Core", true);
        assert_wb(".NET", ".NETX", false);
        assert_wb("Node.js", "Node.jsで動く", true);
        assert_wb("Node.js", "node.jsx", false);
        // Chosen behaviour: `+`, `#` and `-` are not word characters, so `C` matches there.
        assert_wb("C", "C++", true);
        assert_wb("C", "C#", true);
        assert_wb("C", "Objective-C", true);
        assert_wb("C", "CSS", false);
        assert_wb("C", "ABC", false);

        let m = wb("C++");
        let found = find_one(&m, "C++ and c++ and C+++").expect("match");
        assert_eq!(found.occurrences, 3);
    }

    #[test]
    fn word_boundary_counts_occurrences_and_reports_first() {
        let m = wb("Rust");
        let found = find_one(&m, "trust Rustacean RUST rust, (Rust)").expect("match");
        assert_eq!(found.matched_text, "RUST");
        assert_eq!(found.position, 16);
        assert_eq!(found.occurrences, 3);
    }

    #[test]
    fn word_boundary_retries_after_rejected_candidate() {
        // `Reactive React`: the first candidate is rejected and the scan moves on.
        let found = find_one(&wb("React"), "Reactive React").expect("match");
        assert_eq!(found.position, 9);
        assert_eq!(found.occurrences, 1);
        // A valid occurrence overlapping a rejected candidate is not skipped.
        let found = find_one(&wb("a-a"), "xa-a-a").expect("match");
        assert_eq!((found.position, found.occurrences), (3, 1));
    }

    // --- word boundary: scripts without spaces ---

    #[test]
    fn word_boundary_in_japanese_text() {
        let rust = wb("Rust");
        let found = find_one(&rust, "Rustで書いたCLIツール").expect("match");
        assert_eq!((found.position, found.matched_text.as_str()), (0, "Rust"));
        assert_wb("CLI", "Rustで書いたCLIツール", true);
        assert_wb("TypeScript", "TypeScriptを使ってみた", true);
        assert_wb("TypeScript", "【TypeScript】入門", true);
        assert_wb("Rust", "Rust製のツール", true);
        assert_wb("Rust", "これはRustです", true);
        // `ー` is Script=Common but Japanese by Script_Extensions.
        assert_wb("Go", "Goーー", true);

        let found = find_one(&wb("型安全"), "TypeScriptの型安全な設計").expect("match");
        assert_eq!(found.position, 11);
        assert_eq!(found.matched_text, "型安全");

        assert_wb("生成AI", "生成AIの活用", true);
        assert_wb("生成AI", "最新の生成AI", true);
        assert_wb("生成AI", "生成AIX", false);
        // A Han edge needs no boundary even next to Latin.
        assert_wb("生成AI", "xx生成AI", true);
        assert_wb("ツール", "CLIツール", true);
    }

    #[test]
    fn word_boundary_in_chinese_korean_and_thai_text() {
        assert_wb("Rust", "我喜欢Rust语言", true);
        assert_wb("리액트", "리액트를 사용합니다", true);
        assert_wb("React", "React를 사용합니다", true);
        assert_wb("ภาษา", "เขียนภาษาRust", true);
        assert_wb("Rust", "เขียนภาษาRust", true);
    }

    #[test]
    fn word_boundary_between_spaced_scripts_is_not_a_boundary() {
        // Cyrillic and Greek letters are word characters of spaced scripts.
        assert_wb("Rust", "Rustа", false);
        assert_wb("Rust", "λRust", false);
        // A combining mark continues the word (no normalisation, so `cafe` + U+0301).
        assert_wb("cafe", "cafe\u{301}", false);
        assert_wb("café", "Le CAFÉ.", true);
        // Fullwidth Latin is Latin, not Japanese, so it is no boundary either.
        assert_wb("Rust", "Rustｘ", false);
        // A mark before the occurrence is judged by its base character.
        assert_wb("Rust", "I \u{2764}\u{FE0F}Rust", true);
        assert_wb("Rust", "#\u{FE0F}\u{20E3}Rust", true);
        assert_wb("Rust", "e\u{301}Rust", false);
        assert_wb("cafe\u{301}", "CAFE\u{301}.", true);
        assert_wb("cafe\u{301}", "cafe\u{301}s", false);
        // Devanagari is written with spaces; its vowel signs are marks of a spaced script.
        assert_wb("हिंदी", "हिंदीभाषा", false);
        assert_wb("हिंदी", "हिंदी भाषा", true);
    }

    #[test]
    fn character_classes() {
        use CharClass::{Mark, Other, SpacedWord, UnspacedWord};
        for (c, class) in [
            ('a', SpacedWord),
            ('7', SpacedWord),
            ('_', SpacedWord),
            ('é', SpacedWord),
            ('ß', SpacedWord),
            ('д', SpacedWord),
            ('ｘ', SpacedWord),
            ('１', SpacedWord),
            ('型', UnspacedWord),
            ('〇', UnspacedWord),
            ('を', UnspacedWord),
            ('ツ', UnspacedWord),
            ('ｱ', UnspacedWord),
            ('ー', UnspacedWord),
            ('한', UnspacedWord),
            ('ก', UnspacedWord),
            ('\u{301}', Mark),
            ('\u{FE0F}', Mark),
            ('\u{200D}', Mark),
            ('-', Other),
            ('、', Other),
            ('。', Other),
            ('「', Other),
            ('\u{3000}', Other),
            ('❤', Other),
            ('🦀', Other),
        ] {
            assert_eq!(classify(c), class, "{c:?}");
        }
    }

    // --- case folding ---

    #[test]
    fn case_insensitive_with_unicode_simple_folding() {
        let found = find_one(&wb("école"), "Une ÉCOLE de Rust").expect("match");
        assert_eq!((found.matched_text.as_str(), found.position), ("ÉCOLE", 4));
        assert_wb("κόσμος", "ΚΌΣΜΟΣ", true);
        assert_wb("Привет", "ПРИВЕТ мир", true);
        // Simple folding maps ß to ẞ, but not to `ss` (that is full folding).
        assert_wb("straße", "STRAẞE", true);
        assert_wb("straße", "STRASSE", false);
        // The Kelvin sign folds to `k`.
        assert_wb("k8s", "\u{212A}8s", true);
        // No NFKC normalisation.
        assert_wb("Rust", "ＲＵＳＴ", false);
        assert_wb("ＲＵＳＴ", "ｒｕｓｔで", true);
    }

    // --- positions, synonyms, whitespace ---

    #[test]
    fn position_counts_chars_not_bytes() {
        let found = find_one(&wb("Rust"), "日本語のテキストでRustを使う").expect("match");
        assert_eq!(found.position, 9);
        let found = find_one(&wb("Rust"), "🦀 Rust 🦀 rust").expect("match");
        assert_eq!(found.position, 2);
        assert_eq!(found.occurrences, 2);
    }

    #[test]
    fn synonyms_count_as_the_same_keyword() {
        let m = one(spec(
            "k8s",
            "Kubernetes",
            Strategy::WordBoundary,
            &["k8s", " ", "K8S"],
        ));
        let found = find_one(&m, "k8s and Kubernetes, K8S but not k8sx").expect("match");
        assert_eq!(found.keyword_id, "k8s");
        assert_eq!(found.matched_text, "k8s");
        assert_eq!(found.position, 0);
        assert_eq!(found.occurrences, 3);

        let sub = one(spec("js", "JavaScript", Strategy::Substring, &["JS"]));
        assert_eq!(
            find_one(&sub, "JSX, javascripts")
                .expect("match")
                .occurrences,
            2
        );
    }

    #[test]
    fn longest_alternative_wins_and_shorter_ones_are_retried() {
        let m = one(spec("go", "Go", Strategy::WordBoundary, &["Golang"]));
        let found = find_one(&m, "Golang rocks").expect("match");
        assert_eq!(found.matched_text, "Golang");

        let m = one(spec("rust", "Rust", Strategy::WordBoundary, &["Rust lang"]));
        let found = find_one(&m, "Rust langX").expect("match");
        assert_eq!(found.matched_text, "Rust");
        let found = find_one(&m, "Rust lang!").expect("match");
        assert_eq!(found.matched_text, "Rust lang");
    }

    #[test]
    fn whitespace_in_terms_matches_any_whitespace_run() {
        let m = wb("Visual Studio Code");
        let found = find_one(&m, "I use visual  studio\ncode daily").expect("match");
        assert_eq!(found.matched_text, "visual  studio\ncode");
        assert_wb("Visual Studio Code", "VisualStudioCode", false);
    }

    // --- regex ---

    #[test]
    fn regex_strategy_is_case_insensitive() {
        let m = one(regex_spec("k8s", r"\bkube(?:rnetes|ctl)\b", &[]));
        let found = find_one(&m, "Using KUBECTL with Kubernetes").expect("match");
        assert_eq!(found.matched_text, "KUBECTL");
        assert_eq!(found.position, 6);
        assert_eq!(found.occurrences, 2);
        // The term is only a label for regex keywords.
        let labelled = one(KeywordSpec {
            term: "Go".into(),
            ..regex_spec("go", r"golang", &[])
        });
        assert!(find_one(&labelled, "Go is fun").is_none());
    }

    #[test]
    fn regex_synonyms_are_literal_word_boundary_alternatives() {
        let m = one(regex_spec("k8s", r"kube(?:rnetes|ctl)", &["k8s", "c++"]));
        let found = find_one(&m, "k8s, kubectl, K8sX, C++ and k8s.").expect("match");
        assert_eq!(found.matched_text, "k8s");
        assert_eq!(found.occurrences, 4);
        // Overlap between the pattern and a synonym counts once.
        let m = one(regex_spec("k", r"kubernetes", &["Kubernetes"]));
        assert_eq!(find_one(&m, "kubernetes").expect("match").occurrences, 1);
    }

    #[test]
    fn regex_empty_matches_are_ignored() {
        let m = one(regex_spec("x", r"x*", &[]));
        assert!(find_one(&m, "abc").is_none());
        assert_eq!(find_one(&m, "axxbx").expect("match").occurrences, 2);
    }

    // --- errors ---

    #[test]
    fn empty_term_is_an_error_naming_the_keyword() {
        let error = Matcher::new(&[spec("kw-1", "  ", Strategy::WordBoundary, &[])]).unwrap_err();
        assert_eq!(
            error,
            MatcherError::EmptyTerm {
                keyword_id: "kw-1".into()
            }
        );
        assert_eq!(error.keyword_id(), "kw-1");
        assert!(error.to_string().contains("kw-1"), "{error}");
    }

    #[test]
    fn invalid_regex_is_an_error_naming_the_keyword() {
        let error = Matcher::new(&[regex_spec("kw-bad", "(unclosed", &[])]).unwrap_err();
        let MatcherError::InvalidRegex {
            keyword_id,
            message,
        } = &error
        else {
            panic!("unexpected {error:?}");
        };
        assert_eq!(keyword_id, "kw-bad");
        assert!(message.contains("unclosed"), "{message}");
        assert!(
            error
                .to_string()
                .starts_with("keyword `kw-bad`: invalid regex_pattern")
        );

        // Look-around is not supported by the regex crate and is reported, not ignored.
        let error = Matcher::new(&[regex_spec("kw-look", "(?<=a)b", &[])]).unwrap_err();
        assert_eq!(error.keyword_id(), "kw-look");
    }

    #[test]
    fn missing_regex_pattern_is_an_error() {
        let error = Matcher::new(&[spec("kw-r", "Rust", Strategy::Regex, &[])]).unwrap_err();
        assert_eq!(
            error,
            MatcherError::MissingRegexPattern {
                keyword_id: "kw-r".into()
            }
        );
    }

    #[test]
    fn oversized_regex_is_rejected() {
        let error = Matcher::new(&[regex_spec("kw-big", r"(?:\w{100}){100}", &[])]).unwrap_err();
        assert_eq!(
            error,
            MatcherError::RegexTooBig {
                keyword_id: "kw-big".into(),
                limit: REGEX_SIZE_LIMIT
            }
        );
        assert!(Matcher::new(&[regex_spec("kw-30", r"\w{1,30}", &[])]).is_err());
        let deep = format!("{}a{}", "(".repeat(200), ")".repeat(200));
        let error = Matcher::new(&[regex_spec("kw-deep", &deep, &[])]).unwrap_err();
        assert_eq!(error.keyword_id(), "kw-deep");
        // Realistic Unicode patterns fit.
        for pattern in [
            r"\w+",
            r"\b\p{L}+\b",
            r"[\p{Han}\p{Hiragana}]+",
            r"\w{1,15}",
            r"[a-z0-9_]{1,30}",
        ] {
            Matcher::new(&[regex_spec("ok", pattern, &[])]).expect(pattern);
        }
    }

    #[test]
    fn duplicate_ids_are_rejected() {
        let specs = [
            spec("same", "Rust", Strategy::WordBoundary, &[]),
            spec("same", "Go", Strategy::WordBoundary, &[]),
        ];
        assert_eq!(
            Matcher::new(&specs).unwrap_err(),
            MatcherError::DuplicateId {
                keyword_id: "same".into()
            }
        );
    }

    #[test]
    fn lenient_construction_keeps_valid_keywords() {
        let specs = [
            spec("rust", "Rust", Strategy::WordBoundary, &[]),
            regex_spec("bad", "[", &[]),
            spec("empty", "", Strategy::Substring, &[]),
            spec("go", "Go", Strategy::WordBoundary, &[]),
        ];
        let (matcher, errors) = Matcher::new_lenient(&specs);
        assert_eq!(matcher.len(), 2);
        let ids: Vec<_> = errors.iter().map(MatcherError::keyword_id).collect();
        assert_eq!(ids, ["bad", "empty"]);
        let found: Vec<_> = matcher
            .find("Go and Rust")
            .into_iter()
            .map(|m| m.keyword_id)
            .collect();
        assert_eq!(found, ["rust", "go"]);
    }

    // --- several keywords ---

    #[test]
    fn results_follow_keyword_order_and_mix_strategies() {
        let specs = [
            spec("ts", "TypeScript", Strategy::WordBoundary, &["TS"]),
            spec("script", "script", Strategy::Substring, &[]),
            regex_spec("ver", r"v\d+\.\d+", &[]),
            spec(
                "exact",
                "typescriptの型安全な設計 v5.4",
                Strategy::Exact,
                &[],
            ),
            spec("java", "Java", Strategy::WordBoundary, &[]),
        ];
        let matcher = Matcher::new(&specs).expect("compiles");
        let found = matcher.find("TypeScriptの型安全な設計 v5.4");
        let ids: Vec<_> = found.iter().map(|m| m.keyword_id.as_str()).collect();
        assert_eq!(ids, ["ts", "script", "ver", "exact"]);
        assert_eq!(found[1].matched_text, "Script");
        assert_eq!(found[1].position, 4);
        assert_eq!(found[2].matched_text, "v5.4");
        assert_eq!(found[2].position, 18);
        assert!(matcher.find("").is_empty());
        assert!(
            Matcher::new(&[])
                .expect("empty")
                .find("anything")
                .is_empty()
        );
    }

    #[test]
    fn prefilter_does_not_change_results() {
        let specs: Vec<_> = ["Rust", "Go", "React", "型安全", "C++", ".NET", "Node.js"]
            .iter()
            .enumerate()
            .map(|(i, term)| {
                let strategy = if i % 2 == 0 {
                    Strategy::WordBoundary
                } else {
                    Strategy::Substring
                };
                spec(&format!("k{i}"), term, strategy, &[])
            })
            .collect();
        let with = Matcher::new(&specs).expect("compiles");
        assert!(with.prefilter.is_some());
        let mut without = Matcher::new(&specs).expect("compiles");
        without.prefilter = None;
        for text in [
            "Rust and Go, not Google; React ≠ preact",
            "TypeScriptの型安全な設計 C++ ASP.NET Node.js",
            "nothing here",
        ] {
            assert_eq!(with.find(text), without.find(text), "{text}");
        }
    }

    #[test]
    fn specs_deserialise_from_drowl_keyword_rows() {
        let spec: KeywordSpec = serde_json::from_str(
            r#"{"id":"k1","term":"Rust","match_strategy":"word_boundary","synonyms":["rustlang"]}"#,
        )
        .expect("valid");
        assert_eq!(spec.strategy, Strategy::WordBoundary);
        let spec: KeywordSpec = serde_json::from_str(
            r#"{"id":"k2","term":"k8s","strategy":"regex","regex_pattern":"k8s"}"#,
        )
        .expect("valid");
        assert_eq!(spec.strategy, Strategy::Regex);
        assert_eq!(spec.regex_pattern.as_deref(), Some("k8s"));
        let spec: KeywordSpec = serde_json::from_str(r#"{"id":"k3","term":"Go"}"#).expect("valid");
        assert_eq!(spec.strategy, Strategy::WordBoundary);
        assert!(spec.synonyms.is_empty());
    }

    /// Throughput check, not a pass/fail gate: run with
    /// `cargo test -p keywords-plugin --release --lib -- --ignored --nocapture throughput`.
    #[test]
    #[ignore = "timing report; run explicitly in release mode"]
    fn throughput_10k_events_100_keywords() {
        let words = [
            "the",
            "new",
            "release",
            "of",
            "our",
            "library",
            "fixes",
            "a",
            "bug",
            "in",
            "parser",
            "で",
            "を",
            "使って",
            "みた",
            "Reactive",
            "preact",
            "Google",
            "trust",
            "API",
            "CLI",
            "ツール",
            "設計",
            "performance",
            "🦀",
            "async",
            "runtime",
            "型",
            "安全",
        ];
        let mut specs = Vec::new();
        for i in 0..100 {
            let strategy = match i % 10 {
                0 => Strategy::Substring,
                1 => Strategy::Exact,
                _ => Strategy::WordBoundary,
            };
            let mut s = spec(
                &format!("k{i}"),
                &format!("Term{i}x"),
                strategy,
                &[&format!("syn{i}")],
            );
            if i % 25 == 0 {
                s.strategy = Strategy::Regex;
                s.regex_pattern = Some(format!(r"\bpat{i}(?:ern)?\b"));
            }
            specs.push(s);
        }
        for (i, term) in [
            "Rust",
            "Go",
            "React",
            "TypeScript",
            "型安全",
            "C++",
            "Node.js",
        ]
        .iter()
        .enumerate()
        {
            specs[10 * i + 2].term = (*term).to_owned();
        }
        let matcher = Matcher::new(&specs).expect("compiles");

        let mut state = 0x2545_f491_u32;
        let events: Vec<String> = (0..10_000)
            .map(|_| {
                let mut event = String::new();
                while event.len() < 1024 {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    let word = match state % 40 {
                        0 => "Rust",
                        1 => "TypeScriptの",
                        2 => "k8s",
                        3 => "syn7",
                        n => words[n as usize % words.len()],
                    };
                    event.push_str(word);
                    event.push(' ');
                }
                event
            })
            .collect();

        let mut without_prefilter = Matcher::new(&specs).expect("compiles");
        without_prefilter.prefilter = None;
        for (label, matcher) in [
            ("prefilter", &matcher),
            ("no prefilter", &without_prefilter),
        ] {
            let started = std::time::Instant::now();
            let mut total = 0;
            for event in &events {
                total += matcher.find(event).len();
            }
            let elapsed = started.elapsed();
            println!("10k events x ~1 KiB, 100 keywords, {label}: {elapsed:?} ({total} matches)");
        }
    }
}
