// `sqlx::migrate!` embeds the migration files at compile time: rebuild when they change.
//
// The PostgreSQL half of the conformance suite runs when ACCORD_TEST_DATABASE_URL names a
// database at build time (`cfg(accord_pg)`); without one its tests are compiled as ignored, so
// `cargo test` reports them as ignored rather than passing without running. When the URL is
// set the tests connect to it, and fail if it does not answer.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo::rustc-check-cfg=cfg(accord_pg)");
    println!("cargo:rerun-if-env-changed=ACCORD_TEST_DATABASE_URL");
    if std::env::var("ACCORD_TEST_DATABASE_URL").is_ok_and(|u| !u.trim().is_empty()) {
        println!("cargo:rustc-cfg=accord_pg");
    }
}
