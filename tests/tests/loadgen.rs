//! The load generator keeps working: every scenario, at a small scale,
//! against the real example server, over TCP and WebSocket. No timing is
//! asserted (numbers belong in BENCHMARKS.md); what is checked is that
//! each scenario runs to its report and that what it counts adds up.

use std::process::Command;

use im_tests::process::{example_binary, ServerProcess};

const ENV: [(&str, &str); 4] = [
    ("IM__AUTH__REGISTER_PER_PEER", "1000000"),
    ("IM__LIMITS__MAX_CONNECTIONS_PER_PEER", "100000"),
    ("IM__LIMITS__FRAMES_PER_SEC", "1000000"),
    ("IM__LIMITS__FRAMES_BURST", "1000000"),
];

fn loadgen(args: &[&str]) -> String {
    let out = Command::new(example_binary("loadgen"))
        .args(args)
        .output()
        .expect("run the load generator");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "loadgen {args:?} failed\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn every_scenario_runs_at_small_scale() {
    let dir = tempfile::tempdir().unwrap();
    let srv = ServerProcess::start(dir.path(), &ENV);
    let pid = srv.pid().to_string();
    let tcp = format!("tcp://{}", srv.addr);
    let ws = format!("ws://{}/ws", srv.http);
    let common = |url: &str| {
        vec![
            "--url".to_owned(),
            url.to_owned(),
            "--server-pid".into(),
            pid.clone(),
        ]
    };
    let run = |scenario: &str, url: &str, more: &[&str]| {
        let mut a: Vec<String> = vec![scenario.to_owned()];
        a.extend(common(url));
        a.extend(more.iter().map(|s| s.to_string()));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        loadgen(&a)
    };

    let out = run(
        "direct",
        &tcp,
        &["--users", "20", "--rate", "100", "--duration", "2"],
    );
    assert!(out.contains("direct: 10 pairs"), "{out}");
    assert!(out.contains("refused 0"), "{out}");
    assert!(out.contains("send to delivery: p50"), "{out}");

    let out = run(
        "direct",
        &ws,
        &["--users", "10", "--rate", "50", "--duration", "1"],
    );
    assert!(out.contains("send to delivery: p50"), "{out}");

    let out = run(
        "fanout",
        &tcp,
        &[
            "--users",
            "12",
            "--senders",
            "2",
            "--rate",
            "20",
            "--duration",
            "2",
        ],
    );
    assert!(out.contains("fanout: 12 members, 2 senders"), "{out}");
    assert!(out.contains("send to delivery: p50"), "{out}");

    // A sweep of two rates, one CSV row each (after the header).
    let csv = dir.path().join("results.csv");
    let csv_arg = csv.to_str().expect("UTF-8 temp path");
    let out = run(
        "direct",
        &tcp,
        &[
            "--users",
            "4",
            "--duration",
            "1",
            "--sweep",
            "40,80",
            "--csv",
            csv_arg,
            "--label",
            "ci, smoke",
        ],
    );
    assert!(out.contains("step 2 of 2: rate 80"), "{out}");
    let text = std::fs::read_to_string(&csv).expect("the CSV file");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some(
            "scenario,transport,offered_rate,achieved_rate,deliveries_per_s,\
             p50_ms,p90_ms,p99_ms,p999_ms,max_ms,generator_cpu,server_cpu,label,\
             receivers_per_msg"
        ),
        "{text}"
    );
    assert_eq!(lines.len(), 3, "{text}");
    for (line, rate) in lines[1..].iter().zip(["40.0", "80.0"]) {
        assert!(
            line.starts_with(&format!("direct,tcp,{rate},")),
            "{line}\n{text}"
        );
        assert!(line.contains(",\"ci, smoke\",1"), "{line}\n{text}");
    }

    let out = run("reconnect", &ws, &["--users", "15", "--senders", "3"]);
    assert!(
        out.contains("15 of 15 sessions replayed exactly the 3 pending messages once"),
        "{out}"
    );

    let out = run(
        "login-storm",
        &tcp,
        &[
            "--users",
            "5",
            "--rate",
            "10",
            "--duration",
            "1",
            "--background-rate",
            "50",
        ],
    );
    assert!(out.contains("login-storm: offered 10"), "{out}");
    assert!(out.contains("login time: p50"), "{out}");

    let out = run("idle", &tcp, &["--users", "30", "--duration", "1"]);
    assert!(out.contains("idle: 30 sessions, server RSS"), "{out}");
    assert!(out.contains("KiB per session"), "{out}");
}
