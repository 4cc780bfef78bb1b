//! The binary's configuration errors, as a user sees them.

use std::process::Command;

use integration_tests::reactor_binary;

fn check_config(toml: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, toml).unwrap();
    let out = Command::new(reactor_binary().unwrap())
        .args(["--config", path.to_str().unwrap(), "check-config"])
        .env_remove("REACTOR__KAFKA__BROKERS")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn check_config_accepts_the_defaults_and_names_each_problem() {
    let (ok, text) = check_config("");
    assert!(ok && text.contains("configuration is valid"), "{text}");

    let (ok, text) = check_config("[kafka]\nbrokers = []\n");
    assert!(
        !ok && text.contains("kafka.brokers: the broker list is empty"),
        "{text}"
    );

    let (ok, text) = check_config("[windows]\nsize = \"a while\"\n");
    assert!(!ok && text.contains("size"), "{text}");

    let (ok, text) = check_config("[clickhouse]\npasword = \"x\"\n");
    assert!(!ok && text.contains("pasword"), "{text}");

    let (ok, text) =
        check_config("[derived]\nrollup_metrics = [\"engagement.click\", \"engagement.clicks\"]\n");
    assert!(
        !ok && text.contains("derived.rollup_metrics: unknown metric \"engagement.clicks\""),
        "{text}"
    );
    let (ok, text) =
        check_config("[derived]\nrollup_metrics = [\"engagement.click\", \"conversion.*\"]\n");
    assert!(ok, "{text}");
}

#[test]
fn secrets_are_masked_when_printing_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(reactor_binary().unwrap())
        .args(["check-config", "--print"])
        .current_dir(dir.path())
        .env("REACTOR__CLICKHOUSE__PASSWORD", "hunter2")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("password: \"***\""),
        "{text}"
    );
    assert!(!text.contains("hunter2"));
}
