//! drowl's first-party identity-resolution plugin.
//!
//! drowl stores one `identities` row per account (a GitHub login, an X handle, a Zenn or
//! Qiita user, ...). Reports count *people*, so accounts that belong to one person are
//! joined by identity links. This plugin proposes those links from real signals: a shared
//! e-mail address, profiles that link to each other, the same username, the same display
//! name.
//!
//! A false link merges two people in every report, so the rules are conservative: one weak
//! or medium signal alone never links (common handles and common names collide), and the
//! evidence behind each proposal is kept in it so a reviewer can see why.
//!
//! For now the crate holds only the pure decision logic, [`signals`]: no I/O, no threads,
//! so it runs the same in unit tests and in the `wasm32-wasip2` component.

pub mod signals;
