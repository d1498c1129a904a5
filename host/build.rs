//! Rebuilds the host when a migration is added: `sqlx::migrate!` embeds the migration
//! directories at compile time, and cargo only notices edits to files it already knows.

fn main() {
    println!("cargo:rerun-if-changed=../migrations");
    println!("cargo:rerun-if-changed=migrations-sqlite");
}
