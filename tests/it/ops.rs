//! The commands admins script, over the real binary: `check-config` (and `-t`), the
//! monitoring plugin `check`, and `metrics` (its output read by a strict parser of the
//! Prometheus text format).

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::*;
use tokenusage::dev::sample_api::{Fault, SampleApiOptions};

/// The exit code, stdout and stderr of the binary run with `args`, as `uid` if given.
fn run(args: &[&str], uid: Option<u32>) -> (i32, String, String) {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_remove("GATEWAY_INTERFACE")
        .stdin(Stdio::null());
    if let Some(uid) = uid {
        command.uid(uid);
    }
    let output = command.output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

fn root_of(install: &Install) -> String {
    install.ct.display().to_string()
}

/// A URL where nothing answers.
fn unreachable_api() -> String {
    format!("http://127.0.0.1:{}/projects/api.php", free_port())
}

fn api_with_balance(balance: f64) -> tokenusage::dev::sample_api::SampleApi {
    sample_api_with(SampleApiOptions {
        transactions: 5,
        balance,
        ..SampleApiOptions::default()
    })
}

/// Makes the installation's folders reachable by another user, like a site's.
fn open_to_others(install: &Install) {
    for dir in [
        &install.dir.0,
        &install.dir.0.join("site"),
        &install.ct,
        &install.ct.join("admin"),
    ] {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    }
    fs::set_permissions(install.config_path(), fs::Permissions::from_mode(0o644)).unwrap();
}

// ---------------------------------------------------------------- check-config

#[test]
fn check_config_passes_a_complete_installation_and_shows_only_8_characters_of_the_key() {
    let api = sample_api(5);
    let install = Install::new("cc-ok", &api.url());
    let sessions = TempDir::new("cc-sessions");
    let root = root_of(&install);
    let session_path = sessions.0.display().to_string();
    let args = [
        "check-config",
        "--root",
        &root,
        "--session-key",
        "admin_logged_in",
        "--session-path",
        &session_path,
        "--online",
    ];
    let (code, out, err) = run(&args, None);
    assert_eq!(code, 0, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.iter().all(|l| l.contains(": ok")), "{out}");
    assert!(out.contains("license key DEMO-4F9..."), "{out}");
    assert!(
        !out.contains("DEMO-4F9A"),
        "never more than 8 characters: {out}"
    );
    assert!(
        out.contains(&format!("session folder {session_path}: ok")),
        "{out}"
    );
    assert!(out.contains("license API: ok"), "{out}");
    assert_eq!(api.calls("user/info"), 1);
}

#[test]
fn dash_t_checks_the_serve_options_like_nginx_t_and_warns_about_web_server_mode() {
    let api = sample_api(5);
    let install = Install::new("cc-t", &api.url());
    let (code, out, _) = run(
        &["-t", "--root", &root_of(&install), "--auth", "web-server"],
        None,
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("admin check --auth web-server: warning: --auth web-server: lets in"),
        "{out}"
    );
    assert_eq!(api.calls("user/info"), 0, "no call without --online");
}

#[test]
fn check_config_names_a_missing_license_key_and_fails() {
    let api = sample_api(5);
    let install = Install::new("cc-nokey", &api.url());
    install.edit_config("'DEMO-4F9A-1C2B-7E3D-90AB'", "''");
    let (code, out, _) = run(
        &[
            "check-config",
            "--root",
            &root_of(&install),
            "--auth",
            "none",
        ],
        None,
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("$license_config['license_key'] is missing or empty: fix the file"),
        "{out}"
    );
}

#[test]
fn check_config_fails_on_a_cache_folder_this_user_cannot_write() {
    let api = sample_api(5);
    let install = Install::new("cc-readonly", &api.url());
    open_to_others(&install);
    let dat = install.ct.join("dat");
    fs::set_permissions(&dat, fs::Permissions::from_mode(0o555)).unwrap();
    let nobody = crate::session::nobody_uid();
    let (code, out, _) = run(
        &[
            "check-config",
            "--root",
            &root_of(&install),
            "--auth",
            "none",
        ],
        Some(nobody),
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "cache folder {}: not writable by this user",
            dat.display()
        )),
        "{out}"
    );
    let names: Vec<String> = fs::read_dir(&dat)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["config.inc.php"], "no probe left behind");
}

#[test]
fn check_config_fails_on_a_session_folder_this_user_cannot_read() {
    let api = sample_api(5);
    let install = Install::new("cc-sessions-closed", &api.url());
    open_to_others(&install);
    let sessions = TempDir::new("cc-closed");
    fs::set_permissions(&sessions.0, fs::Permissions::from_mode(0o700)).unwrap();
    let path = sessions.0.display().to_string();
    let root = root_of(&install);
    let args = [
        "check-config",
        "--root",
        &root,
        "--session-key",
        "admin_logged_in",
        "--session-path",
        &path,
    ];
    let (code, out, _) = run(&args, Some(crate::session::nobody_uid()));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("session folder {path}: not readable by this user")),
        "{out}"
    );
}

#[test]
fn check_config_online_fails_when_the_license_api_is_unreachable() {
    let install = Install::new("cc-offline", &unreachable_api());
    let (code, out, _) = run(
        &[
            "check-config",
            "--root",
            &root_of(&install),
            "--auth",
            "none",
            "--online",
            "--api-timeout",
            "2",
        ],
        None,
    );
    assert_eq!(code, 1, "{out}");
    let line = out.lines().find(|l| l.starts_with("license API:")).unwrap();
    assert!(line.contains("user/info at http://127.0.0.1:"), "{line}");
    assert!(line.contains("Failed to connect to License API"), "{line}");
}

// ---------------------------------------------------------------- check

fn check(install: &Install, extra: &[&str]) -> (i32, String) {
    let root = root_of(install);
    let mut args = vec!["check", "--root", &root, "--account-cache-seconds", "0"];
    args.extend_from_slice(extra);
    let (code, out, _) = run(&args, None);
    (code, out)
}

#[test]
fn check_is_ok_above_the_warning_threshold_with_perfdata() {
    let api = api_with_balance(48.7323);
    let install = Install::new("chk-ok", &api.url());
    let (code, out) = check(&install, &["-w", "5", "-c", "1"]);
    assert_eq!(
        out,
        "TOKENUSAGE OK - $48.73 left | balance=48.7323;5:;1:;0;\n"
    );
    assert_eq!(code, 0);
}

#[test]
fn check_warns_between_the_thresholds_and_is_critical_below_both() {
    let api = api_with_balance(3.0);
    let install = Install::new("chk-levels", &api.url());
    let (code, out) = check(&install, &["-w", "5", "-c", "1"]);
    assert!(
        out.starts_with("TOKENUSAGE WARNING - $3.00 left |"),
        "{out}"
    );
    assert_eq!(code, 1);
    api.set_balance(0.5);
    let (code, out) = check(&install, &["-w", "5", "-c", "1"]);
    assert!(
        out.starts_with("TOKENUSAGE CRITICAL - $0.50 left |"),
        "{out}"
    );
    assert_eq!(code, 2);
}

#[test]
fn check_reads_the_guidelines_range_syntax() {
    let api = api_with_balance(4.0);
    let install = Install::new("chk-ranges", &api.url());
    let (code, out) = check(&install, &["-w", "@0:5"]);
    assert_eq!(code, 1, "@0:5 alerts inside: {out}");
    assert!(out.ends_with("| balance=4;@0:5;;0;\n"), "{out}");
    api.set_balance(20.0);
    let (code, out) = check(&install, &["-c", "~:10"]);
    assert_eq!(code, 2, "~:10 alerts above 10: {out}");
    let (code, _) = check(&install, &["-w", "10:30"]);
    assert_eq!(code, 0);
}

#[test]
fn check_is_unknown_when_the_api_is_unreachable_and_nothing_is_cached() {
    let install = Install::new("chk-nothing", &unreachable_api());
    let (code, out) = check(&install, &["-w", "5", "-c", "1", "-t", "2"]);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.starts_with("TOKENUSAGE UNKNOWN - no balance: Failed to connect to License API"),
        "{out}"
    );
}

#[test]
fn check_gives_up_on_a_hanging_api_within_its_timeout() {
    let api = api_with_balance(9.0);
    api.set_fault(Fault::Hang);
    let install = Install::new("chk-hang", &api.url());
    let started = std::time::Instant::now();
    let (code, out) = check(&install, &["-w", "5", "-t", "1"]);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.starts_with("TOKENUSAGE UNKNOWN - no balance: "),
        "{out}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn check_reuses_the_page_s_recent_answers_like_a_view_does() {
    let api = api_with_balance(9.0);
    let install = Install::new("chk-reuse", &api.url());
    let root = root_of(&install);
    for _ in 0..2 {
        let (code, out, _) = run(&["check", "--root", &root, "-w", "5"], None);
        assert_eq!(code, 0, "{out}");
    }
    assert_eq!(
        api.calls("user/stats"),
        1,
        "the second check reused the first's answer"
    );
}

#[test]
fn check_shows_a_cached_balance_with_its_age_and_is_unknown_past_max_age() {
    let api = api_with_balance(20.0);
    let install = Install::new("chk-cached", &api.url());
    assert_eq!(check(&install, &["-w", "5"]).0, 0);
    api.set_fault(Fault::Status500);
    let (code, out) = check(&install, &["-w", "5", "-v"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("$20.00 left (cached "), "{out}");
    assert!(out.contains("license API: API returned HTTP 500"), "{out}");
    assert!(out.lines().count() > 1, "-v adds lines: {out}");
    // Two hours older: past the default --max-age of an hour.
    let file = install.ct.join("dat/tokenusage_last_good.json");
    let mut record: serde_json::Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    for slot in ["user_info", "user_stats"] {
        let stamp = record[slot]["timestamp"].as_i64().unwrap();
        record[slot]["timestamp"] = (stamp - 7200).into();
    }
    fs::write(&file, serde_json::to_vec(&record).unwrap()).unwrap();
    let (code, out) = check(&install, &["-w", "5"]);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.starts_with("TOKENUSAGE UNKNOWN - $20.00 left but cached 72"),
        "{out}"
    );
    assert!(out.contains("past --max-age 3600 s"), "{out}");
}

#[test]
fn check_exits_3_on_bad_arguments_and_0_on_help() {
    let api = sample_api(5);
    let install = Install::new("chk-args", &api.url());
    for bad in [
        vec!["-w", "five"],
        vec!["-c", "20:10"],
        vec!["--bogus"],
        vec!["-t", "0"],
    ] {
        let (code, out) = check(&install, &bad);
        assert_eq!(code, 3, "{bad:?}: {out}");
        assert!(
            out.starts_with("TOKENUSAGE UNKNOWN - bad arguments: "),
            "{out}"
        );
    }
    let (code, _, _) = run(&["check"], None);
    assert_eq!(code, 3, "--root is required");
    let (code, out, _) = run(&["check", "--help"], None);
    assert_eq!(code, 0);
    assert!(out.contains("--warning"));
    assert_eq!(api.calls("user/stats"), 0);
}

// ---------------------------------------------------------------- metrics

/// One sample of the exposition: name, labels (unescaped), value.
type Sample = (String, HashMap<String, String>, f64);

/// A strict reader of the text exposition format (version 0.0.4) for what we write:
/// every family has one HELP and one TYPE line before its samples, names and label
/// names match the format's grammar, label values use only its three escapes, values
/// are floats. Panics with the offending line otherwise.
fn parse_exposition(text: &str) -> (HashMap<String, String>, Vec<Sample>) {
    fn is_name(name: &str, colon: bool) -> bool {
        let mut chars = name.chars();
        let first_ok = |c: char| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':');
        chars.next().is_some_and(first_ok) && chars.all(|c| first_ok(c) || c.is_ascii_digit())
    }
    assert!(text.ends_with('\n'), "ends with a newline");
    let mut types = HashMap::new();
    let mut helps = HashMap::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, _) = rest.split_once(' ').expect(line);
            assert!(is_name(name, true), "{line}");
            assert!(
                helps.insert(name.to_string(), ()).is_none(),
                "one HELP: {line}"
            );
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect(line);
            assert!(is_name(name, true), "{line}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            assert!(
                types.insert(name.to_string(), kind.to_string()).is_none(),
                "one TYPE: {line}"
            );
            continue;
        }
        assert!(!line.starts_with('#') && !line.is_empty(), "{line}");
        let name_end = line.find(['{', ' ']).expect(line);
        let name = &line[..name_end];
        assert!(is_name(name, true), "{line}");
        assert!(types.contains_key(name), "TYPE before samples: {line}");
        let mut labels = HashMap::new();
        let mut rest = &line[name_end..];
        if let Some(body) = rest.strip_prefix('{') {
            let mut chars = body.char_indices().peekable();
            let end = loop {
                let (start, c) = chars.next().expect(line);
                if c == '}' {
                    break start;
                }
                let mut label = String::from(c);
                for (_, c) in chars.by_ref() {
                    if c == '=' {
                        break;
                    }
                    label.push(c);
                }
                assert!(is_name(&label, false), "label name: {line}");
                assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "{line}");
                let mut value = String::new();
                loop {
                    match chars.next().expect(line).1 {
                        '"' => break,
                        '\\' => match chars.next().expect(line).1 {
                            '\\' => value.push('\\'),
                            '"' => value.push('"'),
                            'n' => value.push('\n'),
                            other => panic!("escape \\{other}: {line}"),
                        },
                        '\n' => panic!("raw newline: {line}"),
                        c => value.push(c),
                    }
                }
                assert!(labels.insert(label, value).is_none(), "{line}");
                match chars.peek().map(|&(_, c)| c) {
                    Some(',') => {
                        chars.next();
                    }
                    Some('}') => {}
                    _ => panic!("after a label value: {line}"),
                }
            };
            rest = &body[end + 1..];
        }
        let value = rest.strip_prefix(' ').expect(line);
        assert!(!value.contains(' '), "no timestamp expected: {line}");
        let value: f64 = value.parse().expect(line);
        samples.push((name.to_string(), labels, value));
    }
    for name in types.keys() {
        assert!(helps.contains_key(name), "HELP for {name}");
    }
    (types, samples)
}

fn series<'a>(samples: &'a [Sample], name: &str, root: &str) -> Option<&'a Sample> {
    samples
        .iter()
        .find(|(n, labels, _)| n == name && labels.get("root").map(String::as_str) == Some(root))
}

#[test]
fn metrics_write_one_series_per_installation_in_the_exposition_format() {
    let api = api_with_balance(48.7323);
    // A root with a quote and a backslash in it: its label value must be escaped.
    let up = Install::new("met-\"q\\uote", &api.url());
    let down = Install::new("met-down", &unreachable_api());
    let (up_root, down_root) = (root_of(&up), root_of(&down));
    let before = chrono::Utc::now().timestamp();
    let (code, out, _) = run(
        &[
            "metrics",
            "--root",
            &up_root,
            "--root",
            &down_root,
            "--timeout",
            "2",
        ],
        None,
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        !out.contains("DEMO-4F9A") && !out.contains("owner@"),
        "{out}"
    );
    let (types, samples) = parse_exposition(&out);
    for name in [
        "tokenusage_balance_dollars",
        "tokenusage_last_success_timestamp_seconds",
        "tokenusage_up",
        "tokenusage_build_info",
    ] {
        assert_eq!(types[name], "gauge", "{name}");
    }
    let balance = series(&samples, "tokenusage_balance_dollars", &up_root).unwrap();
    assert_eq!(balance.2, 48.7323);
    assert_eq!(balance.1["domain"], "demo.example.com");
    let when = series(
        &samples,
        "tokenusage_last_success_timestamp_seconds",
        &up_root,
    )
    .unwrap();
    assert!(
        (before..before + 60).contains(&(when.2 as i64)),
        "{}",
        when.2
    );
    assert_eq!(series(&samples, "tokenusage_up", &up_root).unwrap().2, 1.0);
    assert_eq!(
        series(&samples, "tokenusage_up", &down_root).unwrap().2,
        0.0
    );
    assert!(series(&samples, "tokenusage_balance_dollars", &down_root).is_none());
    let build = samples
        .iter()
        .find(|(n, _, _)| n == "tokenusage_build_info")
        .unwrap();
    assert_eq!(build.1["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(build.2, 1.0);

    // Prometheus's own parser (the Python client's) reads the same samples.
    let official = parsed_by_prometheus_client(&out);
    let balance = official
        .iter()
        .find(|s| s["name"] == "tokenusage_balance_dollars" && s["labels"]["root"] == up_root)
        .unwrap_or_else(|| panic!("{official:?}"));
    assert_eq!(balance["value"], 48.7323);
    assert_eq!(balance["labels"]["domain"], "demo.example.com");
    assert_eq!(official.len(), samples.len(), "{official:?}");
}

/// The samples of an exposition as prometheus_client's parser reads them (installed by
/// .ci/install), as JSON: name, labels, value.
fn parsed_by_prometheus_client(exposition: &str) -> Vec<serde_json::Value> {
    use std::io::Write;
    let script = "import json, sys\n\
        from prometheus_client.parser import text_string_to_metric_families as parse\n\
        print(json.dumps([{'name': s.name, 'labels': s.labels, 'value': s.value}\n\
            for f in parse(sys.stdin.read()) for s in f.samples]))";
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "prometheus_client could not parse it (pip install prometheus-client; \
         .ci/install does): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn metrics_say_down_for_a_cached_balance_past_max_age() {
    let api = api_with_balance(7.5);
    let install = Install::new("met-stale", &api.url());
    let root = root_of(&install);
    let args = ["metrics", "--root", &root, "--account-cache-seconds", "0"];
    assert_eq!(run(&args, None).0, 0);
    api.set_fault(Fault::Status500);
    std::thread::sleep(Duration::from_millis(2100));
    let (code, out, _) = run(&[&args[..], &["--max-age", "1"]].concat(), None);
    assert_eq!(code, 0);
    let (_, samples) = parse_exposition(&out);
    assert_eq!(
        series(&samples, "tokenusage_balance_dollars", &root)
            .unwrap()
            .2,
        7.5
    );
    assert_eq!(series(&samples, "tokenusage_up", &root).unwrap().2, 0.0);
}
