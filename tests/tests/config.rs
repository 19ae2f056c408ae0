//! The example server's configuration, through the real binary: the sample
//! file is valid, a typo stops the start with the key it resembles, and
//! `--check-config` says so without starting anything.

use std::path::Path;
use std::process::{Command, Output};

use im_tests::process::server_binary;

fn server(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(server_binary());
    cmd.current_dir(dir).args(args).env("RUST_BACKTRACE", "0");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run the server binary")
}

fn sample() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/server.toml")
        .display()
        .to_string()
}

#[test]
fn the_sample_config_checks_out() {
    let dir = tempfile::tempdir().unwrap();
    let out = server(dir.path(), &["--config", &sample(), "--check-config"], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout.contains("configuration OK"), "{stdout}");
    // Nothing was opened or created.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_typo_in_a_file_or_the_environment_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("im.toml");
    std::fs::write(&file, "[limits]\nmax_fram = 1000\n").unwrap();
    let f = file.display().to_string();
    for args in [
        vec!["--config", f.as_str(), "--check-config"],
        vec!["--config", f.as_str()],
    ] {
        let out = server(
            dir.path(),
            &args,
            &[
                ("IM__HTTP__LISTEN", "127.0.0.1:0"),
                ("IM__TCP__LISTEN", "127.0.0.1:0"),
            ],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} started");
        assert!(
            stderr.contains(
                "unknown configuration key `limits.max_fram` (did you mean `limits.max_frame`?)"
            ),
            "{stderr}"
        );
    }
    let out = server(
        dir.path(),
        &["--check-config"],
        &[("IM__AUTH__BCRYPT_COSTS", "4")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("did you mean `auth.bcrypt_cost`"),
        "{stderr}"
    );
}
