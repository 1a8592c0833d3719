//! Session files written by the real PHP (php-cli) and read by `SessionStore`: both
//! serialize handlers, logged-out sessions, and every refusal (symlink, foreign owner,
//! expiry, bad id, PHP's lock, the `N;/path` layout).

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use tokenusage::auth::session_store::{
    MAX_SESSION_BYTES, Refusal, SavePath, SessionStore, read_path, valid_session_id,
};
use tokenusage::php::session::{Handler, SessionValue};

use crate::support::TempDir;

/// The longest any PHP run may take before the test gives up on it.
const PHP_LIMIT: Duration = Duration::from_secs(20);

const LOG_IN: &str = r#"$_SESSION["admin_logged_in"] = true; $_SESSION["admin_user"] = "boss"; $_SESSION["cart"] = [1, "x" => new stdClass];"#;

/// `php -r` with the session settings given, waited for at most [`PHP_LIMIT`].
fn php(save_path: &str, handler: &str, code: &str) -> Output {
    let child = php_command(save_path, handler, code)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("php-cli is installed");
    let output = wait_bounded(child);
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "php failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn php_command(save_path: &str, handler: &str, code: &str) -> Command {
    let mut command = Command::new("php");
    for setting in [
        // Quoted: in ini syntax an unquoted `;` starts a comment.
        format!("session.save_path=\"{save_path}\""),
        format!("session.serialize_handler={handler}"),
        "session.save_handler=files".into(),
        "session.use_strict_mode=0".into(),
        "session.gc_probability=0".into(),
        "display_errors=stderr".into(),
    ] {
        command.arg("-d").arg(setting);
    }
    command.arg("-r").arg(code);
    command
}

fn wait_bounded(mut child: Child) -> Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > PHP_LIMIT {
            let _ = child.kill();
            panic!("php ran longer than {PHP_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Runs `code` inside session `id`: `session_start()`, the code, `session_write_close()`.
pub(crate) fn php_session(dir: &Path, handler: &str, id: &str, code: &str) {
    let code = format!(r#"session_id("{id}"); session_start(); {code} session_write_close();"#);
    php(dir.to_str().unwrap(), handler, &code);
}

fn store(dir: &Path) -> SessionStore {
    SessionStore::new(SavePath::parse(dir.to_str().unwrap()).unwrap())
}

fn is_admin(store: &SessionStore, id: &str) -> bool {
    store.read(id, SystemTime::now()).is_ok_and(|s| {
        s.get("admin_logged_in")
            .is_some_and(SessionValue::is_truthy)
    })
}

fn session_file(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("sess_{id}"))
}

#[test]
fn a_session_php_wrote_with_the_php_handler_shows_the_admin_logged_in() {
    let dir = TempDir::new("session-php");
    php_session(&dir.0, "php", "abc123", LOG_IN);
    let session = store(&dir.0).read("abc123", SystemTime::now()).unwrap();
    assert_eq!(session.handler, Handler::Php);
    assert!(session.get("admin_logged_in").unwrap().is_truthy());
    assert!(session.get("admin_user").unwrap().matches("boss"));
    assert_eq!(session.get("cart").unwrap().type_name(), "array");
}

#[test]
fn a_session_php_wrote_with_the_php_serialize_handler_shows_the_admin_logged_in() {
    let dir = TempDir::new("session-php-serialize");
    php_session(&dir.0, "php_serialize", "abc123", LOG_IN);
    let session = store(&dir.0).read("abc123", SystemTime::now()).unwrap();
    assert_eq!(session.handler, Handler::PhpSerialize);
    assert!(session.get("admin_logged_in").unwrap().is_truthy());
    assert!(session.get("admin_user").unwrap().matches("boss"));
    let cart = session.get("cart").unwrap();
    assert_eq!(
        cart.get("x"),
        Some(&SessionValue::Object("stdClass".into()))
    );
}

#[test]
fn sessions_php_wrote_without_a_login_or_after_unsetting_it_have_no_truthy_login() {
    let dir = TempDir::new("session-logged-out");
    let store = store(&dir.0);
    // Separate ids per handler: PHP cannot read one handler's file with the other.
    for (handler, n) in [("php", 1), ("php_serialize", 2)] {
        let [visitor, empty, leaver, quitter] =
            ["visitor", "empty", "leaver", "quitter"].map(|id| format!("{id}{n}"));
        php_session(&dir.0, handler, &visitor, r#"$_SESSION["lang"] = "en";"#);
        let session = store.read(&visitor, SystemTime::now()).unwrap();
        assert!(session.get("lang").unwrap().matches("en"));
        assert!(session.get("admin_logged_in").is_none());

        php_session(&dir.0, handler, &empty, "");
        let session = store.read(&empty, SystemTime::now()).unwrap();
        assert!(session.entries.is_empty(), "{handler}");

        php_session(&dir.0, handler, &leaver, LOG_IN);
        assert!(is_admin(&store, &leaver), "{handler}");
        php_session(
            &dir.0,
            handler,
            &leaver,
            r#"unset($_SESSION["admin_logged_in"]);"#,
        );
        let session = store.read(&leaver, SystemTime::now()).unwrap();
        assert!(session.get("admin_logged_in").is_none(), "{handler}");
        assert!(session.get("admin_user").unwrap().matches("boss"));

        php_session(
            &dir.0,
            handler,
            &quitter,
            r#"$_SESSION["admin_logged_in"] = false;"#,
        );
        assert!(!is_admin(&store, &quitter), "{handler}");
    }
}

#[test]
fn reading_a_session_never_changes_or_creates_a_file() {
    let dir = TempDir::new("session-untouched");
    php_session(&dir.0, "php", "abc123", LOG_IN);
    let path = session_file(&dir.0, "abc123");
    let before = (fs::read(&path).unwrap(), fs::metadata(&path).unwrap());
    let store = store(&dir.0);
    assert!(is_admin(&store, "abc123"));
    assert!(matches!(
        store.read("nosuch1", SystemTime::now()),
        Err(Refusal::Missing)
    ));
    let after = (fs::read(&path).unwrap(), fs::metadata(&path).unwrap());
    assert_eq!(before.0, after.0);
    assert_eq!(before.1.mtime(), after.1.mtime());
    assert_eq!(before.1.mtime_nsec(), after.1.mtime_nsec());
    assert_eq!(before.1.ctime_nsec(), after.1.ctime_nsec());
    assert_eq!(fs::read_dir(&dir.0).unwrap().count(), 1);
}

#[test]
fn a_symlinked_session_file_is_refused_not_followed() {
    let dir = TempDir::new("session-symlink");
    php_session(&dir.0, "php", "real1", LOG_IN);
    std::os::unix::fs::symlink(session_file(&dir.0, "real1"), session_file(&dir.0, "link1"))
        .unwrap();
    let store = store(&dir.0);
    assert!(is_admin(&store, "real1"));
    let refusal = store.read("link1", SystemTime::now()).unwrap_err();
    assert!(matches!(refusal, Refusal::Symlink), "{refusal:?}");
    let refusal = read_path(&session_file(&dir.0, "link1")).unwrap_err();
    assert!(matches!(refusal, Refusal::Symlink), "{refusal:?}");
}

#[test]
fn a_session_file_owned_by_another_user_is_refused_as_foreign() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: chown needs root");
        return;
    }
    let dir = TempDir::new("session-foreign");
    php_session(&dir.0, "php", "planted1", LOG_IN);
    let path = session_file(&dir.0, "planted1");
    let nobody = nobody_uid();
    std::os::unix::fs::chown(&path, Some(nobody), None).unwrap();
    let refusal = store(&dir.0)
        .read("planted1", SystemTime::now())
        .unwrap_err();
    assert!(
        matches!(refusal, Refusal::Foreign { owner } if owner == nobody),
        "{refusal:?}"
    );
    // An admin inspecting the file by path may still read it.
    assert!(
        read_path(&path)
            .unwrap()
            .get("admin_logged_in")
            .unwrap()
            .is_truthy()
    );
}

pub(crate) fn nobody_uid() -> u32 {
    tokenusage::transport::fastcgi::user_id("nobody").unwrap_or(65534)
}

#[test]
fn a_session_file_older_than_the_lifetime_is_refused_as_expired() {
    let dir = TempDir::new("session-expired");
    php_session(&dir.0, "php", "old1", LOG_IN);
    php_session(&dir.0, "php", "fresh1", LOG_IN);
    let old = SystemTime::now() - Duration::from_secs(1500);
    fs::File::options()
        .write(true)
        .open(session_file(&dir.0, "old1"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    let store = store(&dir.0);
    assert_eq!(store.max_lifetime, Duration::from_secs(1440));
    let refusal = store.read("old1", SystemTime::now()).unwrap_err();
    assert!(matches!(refusal, Refusal::Expired { .. }), "{refusal:?}");
    assert!(is_admin(&store, "fresh1"));
    // The clock is the caller's: the fresh file expires once `now` is far enough on.
    let later = SystemTime::now() + Duration::from_secs(1441);
    let refusal = store.read("fresh1", later).unwrap_err();
    assert!(matches!(refusal, Refusal::Expired { .. }), "{refusal:?}");
    // An admin inspecting by path reads it whatever its age.
    assert!(read_path(&session_file(&dir.0, "old1")).is_ok());
}

#[test]
fn an_id_with_bad_characters_is_refused_before_any_path_is_built() {
    let dir = TempDir::new("session-bad-id");
    // A valid session where `sess_` + "../x" would land if the id were joined unchecked.
    php_session(&dir.0, "php", "x", LOG_IN);
    fs::create_dir(dir.0.join("sess_..")).unwrap();
    fs::copy(session_file(&dir.0, "x"), dir.0.join("sess_..").join("x")).unwrap();
    let store = store(&dir.0);
    let too_long = "a".repeat(257);
    for id in [
        "../x", "..%2fx", "a/b", "a.b", "a_b", "a b", "a\0b", "", &too_long,
    ] {
        assert!(!valid_session_id(id), "{id:?}");
        assert_eq!(store.save_path.file_for(id), None, "{id:?}");
        let refusal = store.read(id, SystemTime::now()).unwrap_err();
        assert!(matches!(refusal, Refusal::BadId), "{id:?}: {refusal:?}");
        if !id.is_empty() {
            assert!(!refusal.to_string().contains(id));
        }
    }
    assert!(is_admin(&store, "x"));
}

#[test]
fn a_session_php_holds_locked_is_refused_after_the_timeout_and_read_once_released() {
    let dir = TempDir::new("session-locked");
    php_session(&dir.0, "php", "busy1", LOG_IN);
    // A request in progress: PHP holds LOCK_EX from session_start() until it ends.
    let code = r#"session_id("busy1"); session_start(); echo "locked\n"; flush(); sleep(3);"#;
    let mut child = php_command(dir.0.to_str().unwrap(), "php", code)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "locked\n");

    let mut store = store(&dir.0);
    store.lock_timeout = Duration::from_millis(300);
    let start = Instant::now();
    let refusal = store.read("busy1", SystemTime::now()).unwrap_err();
    let waited = start.elapsed();
    assert!(matches!(refusal, Refusal::Locked { .. }), "{refusal:?}");
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(2),
        "{waited:?}"
    );

    assert!(wait_bounded(child).status.success());
    assert!(is_admin(&store, "busy1"));
}

#[test]
fn another_reader_holding_a_shared_lock_does_not_block_reading() {
    let dir = TempDir::new("session-shared");
    php_session(&dir.0, "php", "shared1", LOG_IN);
    let other = fs::File::open(session_file(&dir.0, "shared1")).unwrap();
    // SAFETY: flock on a descriptor `other` owns.
    assert_eq!(
        unsafe { libc::flock(other.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) },
        0
    );
    let mut store = store(&dir.0);
    store.lock_timeout = Duration::from_millis(100);
    assert!(is_admin(&store, "shared1"));
    // And an exclusive lock on another descriptor blocks it until released.
    drop(other);
    let writer = fs::File::open(session_file(&dir.0, "shared1")).unwrap();
    // SAFETY: as above.
    assert_eq!(unsafe { libc::flock(writer.as_raw_fd(), libc::LOCK_EX) }, 0);
    assert!(matches!(
        store.read("shared1", SystemTime::now()),
        Err(Refusal::Locked { .. })
    ));
    drop(writer);
    assert!(is_admin(&store, "shared1"));
}

#[test]
fn the_depth_layout_finds_the_file_php_wrote_in_subfolders() {
    let dir = TempDir::new("session-depth");
    // PHP does not create the subfolders: mod_files.sh does, for every id character.
    for first in ["a", "b"] {
        for second in ["a", "b", "1"] {
            fs::create_dir_all(dir.0.join(first).join(second)).unwrap();
        }
    }
    for (save_path, id) in [("2;{}", "ab12cd"), ("2;0600;{}", "b1ef00")] {
        let save_path = save_path.replace("{}", dir.0.to_str().unwrap());
        let code =
            format!(r#"session_id("{id}"); session_start(); {LOG_IN} session_write_close();"#);
        php(&save_path, "php", &code);
        let mut chars = id.chars();
        let (c1, c2) = (chars.next().unwrap(), chars.next().unwrap());
        let written = dir
            .0
            .join(c1.to_string())
            .join(c2.to_string())
            .join(format!("sess_{id}"));
        assert!(written.is_file(), "{}", written.display());

        let store = SessionStore::new(SavePath::parse(&save_path).unwrap());
        assert_eq!(store.save_path.file_for(id), Some(written));
        assert!(is_admin(&store, id));
        // Without the depth the file is not where the store looks.
        assert!(matches!(
            self::store(&dir.0).read(id, SystemTime::now()),
            Err(Refusal::Missing)
        ));
    }
}

#[test]
fn a_fifo_or_a_folder_in_place_of_the_file_is_refused_without_blocking() {
    let dir = TempDir::new("session-fifo");
    let fifo = std::ffi::CString::new(
        session_file(&dir.0, "fifo1")
            .into_os_string()
            .into_encoded_bytes(),
    )
    .unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    fs::create_dir(session_file(&dir.0, "dir1")).unwrap();
    let store = store(&dir.0);
    for id in ["fifo1", "dir1"] {
        let refusal = store.read(id, SystemTime::now()).unwrap_err();
        assert!(matches!(refusal, Refusal::NotAFile), "{id}: {refusal:?}");
    }
}

#[test]
fn a_session_file_over_the_size_limit_is_refused_unread() {
    let dir = TempDir::new("session-large");
    let mut big = b"admin_logged_in|b:1;pad|s:".to_vec();
    let pad = MAX_SESSION_BYTES as usize;
    big.extend_from_slice(format!("{pad}:\"").as_bytes());
    big.resize(big.len() + pad, b'x');
    big.extend_from_slice(b"\";");
    fs::write(session_file(&dir.0, "big1"), &big).unwrap();
    let refusal = store(&dir.0).read("big1", SystemTime::now()).unwrap_err();
    assert!(matches!(refusal, Refusal::TooLarge { .. }), "{refusal:?}");
}

#[test]
fn a_damaged_session_file_is_refused_as_malformed() {
    let dir = TempDir::new("session-damaged");
    php_session(&dir.0, "php", "cut1", LOG_IN);
    let path = session_file(&dir.0, "cut1");
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
    let refusal = store(&dir.0).read("cut1", SystemTime::now()).unwrap_err();
    assert!(matches!(refusal, Refusal::Malformed(_)), "{refusal:?}");
    assert!(
        refusal
            .to_string()
            .starts_with("malformed session data at byte ")
    );
}

#[test]
fn a_session_php_holds_locked_costs_a_request_at_most_half_a_second_and_says_why() {
    let dir = TempDir::new("session-held");
    php_session(&dir.0, "php", "heldadmin1", LOG_IN);
    let api = crate::support::sample_api(20);
    let install = crate::support::Install::new("session-held", &api.url());
    let server = crate::support::Server::start_php_session(&dir.0, "admin_logged_in");
    let cookie = "PHPSESSID=heldadmin1";
    assert_eq!(server.get_with_cookie(&install, "", cookie).status, 200);

    // A request of PHP's in progress holds LOCK_EX from session_start() until it ends.
    let code = r#"session_id("heldadmin1"); session_start(); echo "locked\n"; flush(); sleep(3);"#;
    let mut child = php_command(dir.0.to_str().unwrap(), "php", code)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "locked\n");
    for _ in 0..3 {
        let start = Instant::now();
        let page = server.get_with_cookie(&install, "", cookie);
        let took = start.elapsed();
        assert_eq!(page.status, 302, "treated as not logged in");
        assert_eq!(page.header("location"), Some("/ct/admin/ctlogin.php"));
        assert!(took < Duration::from_millis(500), "{took:?}");
    }
    assert!(wait_bounded(child).status.success());
    assert_eq!(server.get_with_cookie(&install, "", cookie).status, 200);
    let log = server.stop();
    assert_eq!(
        log.matches("session stayed locked by another request for")
            .count(),
        1,
        "one wait; the next views are refused at once: {log}"
    );
    assert_eq!(log.matches("treated as not logged in").count(), 3, "{log}");
    assert!(
        !log.contains("heldadmin1"),
        "no session id in the log: {log}"
    );
}
