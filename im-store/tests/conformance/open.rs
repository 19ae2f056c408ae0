//! [`im_store::open`]: the URLs it takes.

#[cfg(feature = "sqlite")]
use crate::support::*;

/// These tests.
pub(crate) const TESTS: &[(&str, fn())] = &[
    ("open_urls", open_urls),
    #[cfg(feature = "sqlite")]
    (
        "open_sqlite_urls_relative_and_absolute",
        open_sqlite_urls_relative_and_absolute,
    ),
];

fn open_urls() {
    let o = im_store::StoreOptions::default();
    assert!(im_store::open("memory:", &o).is_ok());
    assert!(matches!(
        im_store::open("redis://x", &o),
        Err(im_store::OpenError::UnsupportedUrl(_))
    ));
}

#[cfg(feature = "sqlite")]
fn open_sqlite_urls_relative_and_absolute() {
    let o = im_store::StoreOptions::default();
    let dir = tempfile::tempdir().expect("temp dir");
    let abs = dir.path().join("abs.db");
    let s = im_store::open(&format!("sqlite://{}", abs.display()), &o).unwrap();
    s.create_user(&user("alice", 1)).unwrap();
    drop(s);
    assert!(abs.exists());

    // Relative to the working directory (the package root under cargo test).
    let here = tempfile::tempdir_in(".").expect("temp dir in cwd");
    let name = here
        .path()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let s = im_store::open(&format!("sqlite://{name}/rel.db"), &o).unwrap();
    s.create_user(&user("alice", 1)).unwrap();
    drop(s);
    assert!(here.path().join("rel.db").exists());

    assert!(im_store::open("sqlite://:memory:", &o).is_ok());
    assert!(im_store::open("sqlite://", &o).is_err());
    let missing_dir = dir.path().join("no/such/dir/x.db");
    assert!(im_store::open(&format!("sqlite://{}", missing_dir.display()), &o).is_err());
}
