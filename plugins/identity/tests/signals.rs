//! The identity signals against real-looking account pairs: which pairs link, how sure,
//! and the near misses that must not (a false link merges two people in every report).

use identity_plugin::signals::{
    Confidence, Identity, Lookup, Signal, assess, emails, lookups, name_key, normalise_url,
    own_profile, urls,
};
use serde_json::{Value, json};

use Confidence::{High, Low, Medium};

/// An account on `platform` with handle `user` and the profile URL that platform gives it.
fn acct(platform: &str, user: &str) -> Identity {
    let host = match platform {
        "github" => "github.com",
        "x" => "x.com",
        "zenn" => "zenn.dev",
        "qiita" => "qiita.com",
        "devto" => "dev.to",
        other => panic!("no profile host for {other}"),
    };
    Identity {
        id: format!("{platform}:{user}"),
        platform: platform.into(),
        platform_user_id: user.into(),
        username: Some(user.into()),
        display_name: None,
        profile_url: Some(format!("https://{host}/{user}")),
        metadata: Value::Null,
    }
}

fn gh(user: &str) -> Identity {
    acct("github", user)
}
fn x(user: &str) -> Identity {
    acct("x", user)
}
fn zenn(user: &str) -> Identity {
    acct("zenn", user)
}
fn qiita(user: &str) -> Identity {
    acct("qiita", user)
}
fn devto(user: &str) -> Identity {
    acct("devto", user)
}

/// Short setters, so a table row fits on a few lines.
trait Build {
    fn name(self, name: &str) -> Self;
    fn meta(self, metadata: Value) -> Self;
    fn profile(self, url: Option<&str>) -> Self;
    fn platform(self, platform: &str) -> Self;
}

impl Build for Identity {
    fn name(self, name: &str) -> Self {
        Identity {
            display_name: Some(name.into()),
            ..self
        }
    }
    fn meta(self, metadata: Value) -> Self {
        Identity { metadata, ..self }
    }
    fn profile(self, url: Option<&str>) -> Self {
        Identity {
            profile_url: url.map(Into::into),
            ..self
        }
    }
    fn platform(self, platform: &str) -> Self {
        Identity {
            platform: platform.into(),
            id: format!("{platform}:{}", self.platform_user_id),
            ..self
        }
    }
}

struct Row {
    label: &'static str,
    a: Identity,
    b: Identity,
    want: Option<Confidence>,
}

fn row(label: &'static str, a: Identity, b: Identity, want: Option<Confidence>) -> Row {
    Row { label, a, b, want }
}

fn rows() -> Vec<Row> {
    vec![
        // ---- linked ----
        row(
            "same username and same display name",
            gh("octocat").name("The Octocat"),
            zenn("octocat").name("The Octocat"),
            Some(Low),
        ),
        row(
            "same commit e-mail alone",
            gh("tyamada").meta(json!({ "commit_emails": ["Taro@Example.jp"] })),
            zenn("taro_y").meta(json!({ "email": "taro@example.jp" })),
            Some(High),
        ),
        row(
            "same e-mail across keys, case and spaces differ",
            gh("hanako").meta(json!({ "email": " Hanako@Example.COM " })),
            qiita("h_suzuki").meta(json!({ "commitEmails": ["x@y.org", "hanako@example.com"] })),
            Some(High),
        ),
        row(
            "same e-mail in an array of {email} objects and public_email",
            gh("kenji")
                .meta(json!({ "emails": [{ "email": "kenji@dev.example", "primary": true }] })),
            devto("kenji_t").meta(json!({ "public_email": "KENJI@dev.example" })),
            Some(High),
        ),
        row(
            "mutual URLs alone",
            gh("tyamada").meta(json!({ "blog": "https://zenn.dev/taro_y" })),
            zenn("taro_y").meta(json!({ "website_url": "github.com/tyamada" })),
            Some(High),
        ),
        row(
            "mutual URLs and same e-mail, capped",
            gh("tyamada").meta(json!({ "blog": "zenn.dev/taro_y", "email": "t@example.jp" })),
            zenn("taro_y").meta(json!({ "github_username": "tyamada", "email": "t@example.jp" })),
            Some(High),
        ),
        row(
            "one-way blog URL and same username",
            gh("octocat").meta(json!({ "blog": "https://zenn.dev/octocat" })),
            zenn("octocat"),
            Some(Medium),
        ),
        row(
            "one-way messy URL (http, www, case, query, slash) and username differing in case",
            gh("OctoCat").meta(json!({ "blog": "http://www.Zenn.dev/OctoCat/?utm_source=gh" })),
            zenn("octocat"),
            Some(Medium),
        ),
        row(
            "one-way twitter.com link to the X account and same username",
            gh("octocat").meta(json!({ "blog": "https://twitter.com/OctoCat" })),
            x("octocat"),
            Some(Medium),
        ),
        row(
            "dev.to github_username pointing at GitHub and same username",
            devto("octocat").meta(json!({ "github_username": "octocat" })),
            gh("octocat"),
            Some(Medium),
        ),
        row(
            "one-way link in a links array of {url} objects and same username",
            devto("taro_y").meta(json!({ "links": [{ "url": "https://qiita.com/Taro_Y" }] })),
            qiita("taro_y"),
            Some(Medium),
        ),
        row(
            "links two accounts on one platform, one of them the other account",
            gh("taro").meta(json!({ "urls": ["zenn.dev/taro_work", "https://zenn.dev/taro"] })),
            zenn("taro"),
            Some(Medium),
        ),
        row(
            "one-way URL and same e-mail",
            gh("tyamada").meta(json!({ "blog": "zenn.dev/taro_y", "email": "t@example.jp" })),
            zenn("taro_y").meta(json!({ "email": "t@example.jp" })),
            Some(High),
        ),
        row(
            "GitHub twitter_username at the X account and same name",
            gh("octocat")
                .name("The Octocat")
                .meta(json!({ "twitter_username": "octo_tw" })),
            x("octo_tw").name("the octocat"),
            Some(Low),
        ),
        row(
            "Qiita twitter_screen_name with @ and same Japanese name",
            qiita("taro")
                .name("山田太郎")
                .meta(json!({ "twitter_screen_name": "@taro_yamada" })),
            x("taro_yamada").name("山田 太郎"),
            Some(Low),
        ),
        row(
            "personal site as a profile: blog points at it, same name",
            gh("octocat")
                .name("The Octocat")
                .meta(json!({ "blog": "example.com/" })),
            acct("x", "octoblog")
                .platform("blog")
                .profile(Some("https://www.example.com"))
                .name("the octocat"),
            Some(Low),
        ),
        row(
            "Japanese name on zenn and qiita (ideographic space) and same username",
            zenn("yamada_taro").name("山田\u{3000}太郎"),
            qiita("yamada_taro").name("山田太郎"),
            Some(Low),
        ),
        row(
            "accented and unaccented name and same username",
            gh("jgarcia").name("José García"),
            devto("jgarcia").name("JOSE GARCIA"),
            Some(Low),
        ),
        row(
            "fullwidth name and same username",
            x("yamada").name("ＹＡＭＡＤＡ Ｋｅｎ"),
            gh("yamada").name("Yamada Ken"),
            Some(Low),
        ),
        row(
            "half-width katakana name and same username",
            x("yamada").name("ﾔﾏﾀﾞ ﾀﾛｳ"),
            zenn("yamada").name("ヤマダ タロウ"),
            Some(Low),
        ),
        // ---- not linked ----
        row(
            "same display name only",
            gh("tyamada").name("Taro Yamada"),
            zenn("taro_y").name("taro yamada"),
            None,
        ),
        row("same username only", gh("octocat"), x("octocat"), None),
        row(
            "username differing by one char and same name",
            gh("octocat").name("The Octocat"),
            zenn("octocat2").name("The Octocat"),
            None,
        ),
        row(
            "same GitHub noreply commit e-mail",
            gh("a_one")
                .meta(json!({ "commit_emails": ["583231+octocat@users.noreply.github.com"] })),
            zenn("b_two").meta(json!({ "email": "583231+octocat@users.noreply.github.com" })),
            None,
        ),
        row(
            "same noreply@ e-mail and same name",
            gh("a_one")
                .name("Taro Yamada")
                .meta(json!({ "email": "noreply@example.com" })),
            qiita("b_two")
                .name("Taro Yamada")
                .meta(json!({ "email": "NoReply@example.com" })),
            None,
        ),
        row(
            "same implausible e-mail (no dot in the domain)",
            gh("a_one").meta(json!({ "email": "root@localhost" })),
            zenn("b_two").meta(json!({ "email": "root@localhost" })),
            None,
        ),
        row(
            "same platform twice, even with the same e-mail",
            gh("octocat").meta(json!({ "email": "o@example.com" })),
            gh("octocat_alt").meta(json!({ "email": "o@example.com" })),
            None,
        ),
        row(
            "same platform spelled in another case",
            gh("octocat").meta(json!({ "email": "o@example.com" })),
            gh("octo_work")
                .platform("GitHub")
                .meta(json!({ "email": "o@example.com" })),
            None,
        ),
        row(
            "the same identity twice",
            gh("octocat")
                .name("The Octocat")
                .meta(json!({ "email": "o@example.com" })),
            gh("octocat")
                .name("The Octocat")
                .meta(json!({ "email": "o@example.com" })),
            None,
        ),
        row(
            "one-way URL to a different user on the same host and same username",
            gh("octocat").meta(json!({ "blog": "https://zenn.dev/octocat2" })),
            zenn("octocat"),
            None,
        ),
        row(
            "names another X account, despite same username and same name",
            gh("octocat")
                .name("The Octocat")
                .meta(json!({ "twitter_username": "octo_tw" })),
            x("octocat").name("The Octocat"),
            None,
        ),
        row(
            "URL points at the profile of a third account, same name",
            gh("tyamada")
                .name("Taro Yamada")
                .meta(json!({ "blog": "https://qiita.com/hanako" })),
            zenn("taro_y").name("Taro Yamada"),
            None,
        ),
        row(
            "initials JS and same username",
            gh("jsmith").name("JS"),
            zenn("jsmith").name("J S"),
            None,
        ),
        row(
            "initials with dots and same username",
            gh("jsmith").name("J. S."),
            devto("jsmith").name("j.s."),
            None,
        ),
        row(
            "short Latin name `dev` and same username",
            x("devguy").name("dev"),
            gh("devguy").name("Dev"),
            None,
        ),
        row(
            "one-kanji name and same username",
            x("lin").name("林"),
            gh("lin").name("林"),
            None,
        ),
        row(
            "one-syllable Hangul name and same username",
            x("kimdev").name("김"),
            gh("kimdev").name("김"),
            None,
        ),
        row(
            "display name is only the handle",
            gh("octocat").name("octocat"),
            x("octocat").name("OctoCat"),
            None,
        ),
        row(
            "two-char username and same name",
            gh("js").name("Jun Sato"),
            zenn("js").name("Jun Sato"),
            None,
        ),
        row(
            "link to the bare platform root and same username",
            gh("taro").meta(json!({ "blog": "https://zenn.dev" })),
            zenn("taro").profile(Some("https://zenn.dev/")),
            None,
        ),
        row(
            "html_url is its own profile, not a link, same name",
            zenn("taro_y")
                .name("Taro Yamada")
                .meta(json!({ "html_url": "https://github.com/tyamada" })),
            gh("tyamada").name("Taro Yamada"),
            None,
        ),
        row(
            "mailto link in blog and same name",
            gh("tyamada")
                .name("Taro Yamada")
                .meta(json!({ "blog": "mailto:t@example.jp" })),
            zenn("taro_y")
                .name("Taro Yamada")
                .meta(json!({ "email": "t@example.jp.invalid" })),
            None,
        ),
        row(
            "metadata that is not an object, same name",
            gh("tyamada")
                .name("Taro Yamada")
                .meta(json!("t@example.jp")),
            zenn("taro_y")
                .name("Taro Yamada")
                .meta(json!(["t@example.jp"])),
            None,
        ),
    ]
}

#[test]
fn table() {
    let rows = rows();
    assert!(rows.len() >= 25);
    let mut failures = Vec::new();
    for Row { label, a, b, want } in &rows {
        let ab = assess(a, b);
        let ba = assess(b, a);
        assert_eq!(ab, ba, "{label}: assess must be symmetric");
        let got = ab.as_ref().map(|p| p.confidence);
        if got != *want {
            failures.push(format!("{label}: want {want:?}, got {ab:?}"));
        }
        if let Some(p) = &ab {
            assert!(
                (0.0..=0.99).contains(&p.score),
                "{label}: score {}",
                p.score
            );
            assert!(!p.signals.is_empty(), "{label}: a link needs signals");
            assert!(
                !p.reason.is_empty() && p.reason.chars().count() < 300,
                "{label}: {}",
                p.reason
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn table_has_both_outcomes_and_every_confidence() {
    let rows = rows();
    let count = |want: Option<Confidence>| rows.iter().filter(|r| r.want == want).count();
    assert!(count(None) >= 10);
    assert!(count(Some(High)) >= 3 && count(Some(Medium)) >= 3 && count(Some(Low)) >= 3);
}

#[test]
fn scores_follow_the_weights() {
    let score = |a: Identity, b: Identity| assess(&a, &b).expect("linked").score;
    let mail = json!({ "email": "t@example.jp" });
    assert_eq!(
        score(gh("a_one").meta(mail.clone()), zenn("b_two").meta(mail)),
        0.9
    );
    assert_eq!(
        score(
            gh("tyamada").meta(json!({ "blog": "zenn.dev/taro_y" })),
            zenn("taro_y").meta(json!({ "github_username": "tyamada" })),
        ),
        0.95
    );
    assert_eq!(
        score(
            gh("octocat").meta(json!({ "blog": "zenn.dev/octocat" })),
            zenn("octocat")
        ),
        0.8
    );
    assert_eq!(
        score(
            gh("octocat").name("The Octocat"),
            zenn("octocat").name("The Octocat")
        ),
        0.65
    );
    assert_eq!(
        score(
            gh("octocat")
                .name("The Octocat")
                .meta(json!({ "twitter_username": "octo_tw" })),
            x("octo_tw").name("The Octocat"),
        ),
        0.72
    );
    assert_eq!(
        score(
            gh("tyamada").meta(json!({ "blog": "zenn.dev/taro_y", "email": "t@example.jp" })),
            zenn("taro_y").meta(json!({ "github_username": "tyamada", "email": "t@example.jp" })),
        ),
        0.99
    );
}

#[test]
fn signals_name_the_direction_whatever_the_argument_order() {
    let a = gh("octocat").meta(json!({ "blog": "https://zenn.dev/octocat" }));
    let b = zenn("octocat");
    let want = vec![
        Signal::PointsAt {
            from: "github".into(),
            to: "zenn".into(),
        },
        Signal::SameUsername("octocat".into()),
    ];
    assert_eq!(assess(&a, &b).unwrap().signals, want);
    assert_eq!(assess(&b, &a).unwrap().signals, want);

    let a = zenn("octocat").meta(json!({ "github_username": "OctoCat" }));
    let b = gh("octocat");
    let p = assess(&a, &b).unwrap();
    assert_eq!(
        p.signals[0],
        Signal::PointsAt {
            from: "zenn".into(),
            to: "github".into(),
        }
    );
}

#[test]
fn reasons_read_as_one_sentence() {
    let p = assess(
        &gh("octocat").name("The Octocat"),
        &zenn("octocat").name("The Octocat"),
    )
    .unwrap();
    assert_eq!(
        p.reason,
        "same username `octocat` on github and zenn; display names match (`The Octocat`)"
    );

    let p = assess(
        &zenn("octocat"),
        &gh("octocat").meta(json!({ "blog": "https://zenn.dev/octocat" })),
    )
    .unwrap();
    assert_eq!(
        p.reason,
        "the github profile links to the zenn profile; same username `octocat`"
    );

    let p = assess(
        &gh("tyamada").meta(json!({ "email": "t@example.jp", "blog": "zenn.dev/taro_y" })),
        &zenn("taro_y")
            .meta(json!({ "email": "t@example.jp", "website": "https://github.com/tyamada" })),
    )
    .unwrap();
    assert_eq!(
        p.reason,
        "same e-mail `t@example.jp` on github and zenn; the github and zenn profiles link to each other"
    );
}

#[test]
fn reasons_stay_short_and_quotable_with_hostile_values() {
    let long = "a`b\n".repeat(500);
    let email = format!("{}@example.com", "x".repeat(400));
    let a = gh(&long)
        .name(&long)
        .platform(&"p".repeat(400))
        .meta(json!({ "email": email }));
    let b = zenn(&long).name(&long).meta(json!({ "email": email }));
    let p = assess(&a, &b).unwrap();
    assert!(p.reason.chars().count() < 300, "{}", p.reason);
    assert!(!p.reason.contains('\n'));
    assert_eq!(p.reason.matches('`').count() % 2, 0, "{}", p.reason);
}

#[test]
fn name_keys() {
    let same = [
        ("José García", "jose garcia"),
        ("José García", "JOSE GARCIA"),
        ("Jose\u{0301} Garci\u{0301}a", "josegarcia"),
        ("山田 太郎", "山田太郎"),
        ("山田\u{3000}太郎", "山田太郎"),
        ("ＹＡＭＡＤＡ", "yamada"),
        ("ﾔﾏﾀﾞ", "ヤマダ"),
        ("  The\tOctocat\n", "theoctocat"),
        ("Ǆemal", "džemal"),
        ("ΣΟΦΟΣ", "σοφοσ"),
    ];
    for (x, y) in same {
        assert_eq!(name_key(x), name_key(y), "{x:?} vs {y:?}");
    }
    assert_eq!(name_key("José García"), "josegarcia");
    assert_eq!(name_key("ＹＡＭＡＤＡ Ｋｅｎ"), "yamadaken");
    assert_eq!(name_key("山田\u{3000}太郎"), "山田太郎");
    // Per-char lowercasing, like SQL lower(): no final sigma.
    assert_eq!(name_key("ΣΟΦΟΣ"), "σοφοσ");
    // Nothing beyond NFKD, marks, whitespace and case: punctuation stays, so does ß.
    assert_eq!(name_key("J. S."), "j.s.");
    assert_eq!(name_key("Straße"), "straße");
    assert_ne!(name_key("Yamada-Taro"), name_key("Yamada Taro"));
    assert_eq!(name_key(""), "");
}

#[test]
fn display_name_lookups_need_a_name_long_enough() {
    let key = |name: &str| {
        lookups(&gh("someone").name(name))
            .into_iter()
            .find_map(|l| match l {
                Lookup::DisplayName(k) => Some(k),
                _ => None,
            })
    };
    assert_eq!(key("Taro Yamada").as_deref(), Some("taroyamada"));
    assert_eq!(key("Jose").as_deref(), Some("jose"));
    assert_eq!(key("山田").as_deref(), Some("山田"));
    assert_eq!(key("ヤマダ"), Some(name_key("ヤマダ")));
    assert_eq!(key("김철수"), Some(name_key("김철수")));
    for short in [
        "JS",
        "J. S.",
        "dev",
        "Bob",
        "林",
        "김",
        "",
        "  ",
        "🦀🦀🦀🦀",
    ] {
        assert_eq!(key(short), None, "{short:?}");
    }
}

#[test]
fn url_normalisation() {
    let cases = [
        (
            "https://github.com/octocat",
            Some("https://github.com/octocat"),
        ),
        (
            "http://www.GitHub.com/OctoCat/",
            Some("https://github.com/octocat"),
        ),
        ("github.com/OctoCat", Some("https://github.com/octocat")),
        ("//github.com/octocat", Some("https://github.com/octocat")),
        ("https://twitter.com/OctoCat", Some("https://x.com/octocat")),
        (
            "https://www.twitter.com/octocat?s=20#x",
            Some("https://x.com/octocat"),
        ),
        ("https://zenn.dev/Taro_Y/", Some("https://zenn.dev/taro_y")),
        ("https://qiita.com/Taro_Y", Some("https://qiita.com/taro_y")),
        ("https://dev.to/Taro", Some("https://dev.to/taro")),
        ("https://Example.com/Me/", Some("https://example.com/Me")),
        ("example.com/Me?a=1#b", Some("https://example.com/Me")),
        ("https://example.com", Some("https://example.com")),
        ("https://example.com/", Some("https://example.com")),
        ("https://example.com:443/a", Some("https://example.com/a")),
        ("http://example.com:80/a", Some("https://example.com/a")),
        ("example.com:8080/a", Some("https://example.com:8080/a")),
        ("https://example.com./a", Some("https://example.com/a")),
        ("HTTPS://EXAMPLE.COM/A", Some("https://example.com/A")),
        ("https://example.com/a/../b", Some("https://example.com/b")),
        (
            "https://bücher.example/",
            Some("https://xn--bcher-kva.example"),
        ),
        ("  https://example.com/me  ", Some("https://example.com/me")),
        ("", None),
        ("   ", None),
        ("mailto:me@example.com", None),
        ("javascript:alert(1)", None),
        ("ftp://example.com/me", None),
        ("https://user:pass@example.com/", None),
        ("me@example.com", None),
        ("localhost:3000", None),
        ("https://localhost/me", None),
        ("not a url", None),
        ("https://exa mple.com", None),
    ];
    for (input, want) in cases {
        assert_eq!(normalise_url(input).as_deref(), want, "{input:?}");
    }
}

#[test]
fn emails_are_normalised_and_noreply_dropped() {
    let i = gh("someone").meta(json!({
        "email": " Me@Example.COM ",
        "emails": ["me@example.com", { "email": "Work@Corp.example" }, 42, null],
        "commit_emails": [
            "583231+octocat@users.noreply.github.com",
            "octocat@noreply.github.com",
            "no-reply@example.com",
            "DoNotReply@example.com",
            "root@localhost",
            "a@b@c.com",
            "@example.com",
            "a@.example.com",
            "a@example.com.",
        ],
        "commitEmails": ["other@example.org"],
        "public_email": "",
    }));
    assert_eq!(
        emails(&i),
        ["me@example.com", "other@example.org", "work@corp.example"]
    );
    assert!(emails(&gh("nobody")).is_empty());
}

#[test]
fn urls_come_from_the_pointing_keys_only() {
    let i = gh("octocat").meta(json!({
        "blog": "octocat.example",
        "website": "http://www.octocat.example/",
        "url": "https://api.github.com/users/octocat",
        "html_url": "https://github.com/someone_else",
        "links": ["https://zenn.dev/Octo", { "url": "qiita.com/octo" }, 7],
        "twitter_username": "@Octo_TW",
        "github_username": "octocat",
        "urls": ["https://github.com/OctoCat/"],
    }));
    assert_eq!(
        urls(&i),
        [
            "https://api.github.com/users/octocat",
            "https://octocat.example",
            "https://qiita.com/octo",
            "https://x.com/octo_tw",
            "https://zenn.dev/octo",
        ],
        "own profile and html_url are not pointers"
    );
    let bad = devto("d").meta(json!({
        "twitter_username": "has space",
        "github_username": "x".repeat(40),
        "twitter_screen_name": "a/b",
        "github_login_name": "",
    }));
    assert!(urls(&bad).is_empty(), "{:?}", urls(&bad));
}

#[test]
fn own_profiles() {
    assert_eq!(
        own_profile(&gh("OctoCat")).as_deref(),
        Some("https://github.com/octocat")
    );
    assert_eq!(own_profile(&gh("x").profile(None)), None);
    assert_eq!(
        own_profile(&gh("x").profile(Some("https://github.com/"))),
        None
    );
    assert_eq!(
        own_profile(&gh("x").profile(Some("https://example.com"))).as_deref(),
        Some("https://example.com")
    );
}

#[test]
fn lookups_are_sorted_deduplicated_and_complete() {
    let i = gh("OctoCat").name("The Octocat").meta(json!({
        "email": "o@example.com",
        "emails": ["O@Example.com"],
        "blog": "https://zenn.dev/octocat",
        "twitter_username": "octo_tw",
    }));
    assert_eq!(
        lookups(&i),
        vec![
            Lookup::Username("octocat".into()),
            Lookup::Email("o@example.com".into()),
            Lookup::Url("https://github.com/octocat".into()),
            Lookup::Url("https://x.com/octo_tw".into()),
            Lookup::Url("https://zenn.dev/octocat".into()),
            Lookup::DisplayName("theoctocat".into()),
        ]
    );
    let bare = Identity {
        id: "1".into(),
        platform: "x".into(),
        username: Some("ab".into()),
        display_name: Some("JS".into()),
        ..Identity::default()
    };
    assert!(lookups(&bare).is_empty(), "{:?}", lookups(&bare));
}
