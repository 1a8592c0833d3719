//! Test helpers: a temporary copy of the sample installation wired to a sample license
//! API, the real binary serving FastCGI on a unix socket, and a small FastCGI client
//! written from the spec (independent of the crate's codec).

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokenusage::dev::sample_api::{FIXED_ANCHOR, SampleApi, SampleApiOptions};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_tokenusage");

/// A fresh folder (from `tempfile`), removed on drop, so also when a test fails. Readable
/// by other users (0755) like a folder a site would have: some tests run the binary or a
/// web server as another user over it.
pub struct TempDir(
    pub PathBuf,
    // Held only for its drop, which removes the folder.
    #[allow(dead_code)] tempfile::TempDir,
);

impl TempDir {
    pub fn new(name: &str) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new()
            .prefix(&format!("tokenusage-it-{name}-"))
            .tempdir()
            .unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        TempDir(dir.path().to_path_buf(), dir)
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A copy of the repository's `ct/` whose config points at `api_url`.
pub struct Install {
    pub dir: TempDir,
    pub ct: PathBuf,
}

impl Install {
    pub fn new(name: &str, api_url: &str) -> Self {
        let dir = TempDir::new(name);
        let ct = dir.0.join("site").join("ct");
        let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("ct");
        copy_dir(&sample.join("admin"), &ct.join("admin"));
        fs::create_dir_all(ct.join("dat")).unwrap();
        let config = fs::read_to_string(sample.join("dat/config.inc.php")).unwrap();
        let config = config.replace("http://127.0.0.1:8781/projects/api.php", api_url);
        fs::write(ct.join("dat/config.inc.php"), config).unwrap();
        Install { dir, ct }
    }

    pub fn config_path(&self) -> PathBuf {
        self.ct.join("dat/config.inc.php")
    }

    pub fn script_filename(&self) -> String {
        self.ct.join("admin/tokenusage.php").display().to_string()
    }

    pub fn pricing_cache(&self) -> PathBuf {
        self.ct.join("dat/pricing_cache.json")
    }

    pub fn transaction_cache_dir(&self) -> PathBuf {
        self.ct.join("dat/transaction_cache")
    }

    /// The transaction cache files present.
    pub fn transaction_files(&self) -> Vec<PathBuf> {
        match fs::read_dir(self.transaction_cache_dir()) {
            Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Replaces a config setting line by text.
    pub fn edit_config(&self, from: &str, to: &str) {
        let text = fs::read_to_string(self.config_path()).unwrap();
        assert!(text.contains(from), "config has no {from:?}");
        fs::write(self.config_path(), text.replace(from, to)).unwrap();
    }
}

/// A sample API with the given number of transactions.
pub fn sample_api(transactions: usize) -> SampleApi {
    sample_api_with(SampleApiOptions {
        transactions,
        ..SampleApiOptions::default()
    })
}

/// A sample API with `options`; its history ends at [`FIXED_ANCHOR`] (2026-11-20
/// 10:04:11 UTC) unless they name another anchor, so a test's dates never change.
pub fn sample_api_with(options: SampleApiOptions) -> SampleApi {
    let options = SampleApiOptions {
        anchor: options.anchor.or(Some(FIXED_ANCHOR)),
        ..options
    };
    SampleApi::start("127.0.0.1:0", options).unwrap()
}

/// The binary serving FastCGI on a unix socket; stopped with SIGTERM on drop.
pub struct Server {
    pub child: Child,
    pub socket: PathBuf,
    _dir: TempDir,
}

impl Server {
    pub fn start(extra: &[&str]) -> Self {
        Self::launch(extra, None, None)
    }

    /// The server in php-session mode over the session files in `sessions`.
    pub fn start_php_session(sessions: &Path, key: &str) -> Self {
        let path = sessions.display().to_string();
        Self::start(&[
            "--auth",
            "php-session",
            "--session-path",
            &path,
            "--session-key",
            key,
        ])
    }

    /// The server running as another user (a web server's `www-data`, say).
    pub fn start_as(uid: u32, extra: &[&str]) -> Self {
        Self::launch(extra, Some(uid), None)
    }

    /// The server with at most `files` open file descriptors (RLIMIT_NOFILE).
    pub fn start_with_limit(files: u64, extra: &[&str]) -> Self {
        Self::launch(extra, None, Some(files))
    }

    fn launch(extra: &[&str], uid: Option<u32>, files: Option<u64>) -> Self {
        let dir = TempDir::new("sock");
        if uid.is_some() {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o777)).unwrap();
        }
        let socket = dir.0.join("tokenusage.sock");
        let spec = format!("unix:{}", socket.display());
        let mut command = Command::new(BIN);
        command.args(["fcgi", "--listen", &spec]).args(extra);
        // Tests of the page run without the admin check unless they choose a mode.
        if !extra.contains(&"--auth") {
            command.args(["--auth", "none"]);
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(uid) = uid {
            use std::os::unix::process::CommandExt;
            command.uid(uid);
        }
        if let Some(files) = files {
            use std::os::unix::process::CommandExt;
            // SAFETY: only setrlimit, async-signal-safe, between fork and exec.
            unsafe {
                command.pre_exec(move || {
                    let limit = libc::rlimit {
                        rlim_cur: files,
                        rlim_max: files,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let child = command.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(&socket).is_err() {
            assert!(Instant::now() < deadline, "server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Server {
            child,
            socket,
            _dir: dir,
        }
    }

    /// Sends one request with these CGI params.
    pub fn request<S: AsRef<str>>(&self, params: &[(&str, S)]) -> CgiResponse {
        let mut stream = connect(&self.socket, Duration::from_secs(60)).unwrap();
        fastcgi_request(&mut stream, params)
    }

    /// GETs the page of `install` with a query string.
    pub fn get(&self, install: &Install, query: &str) -> CgiResponse {
        self.request(&page_params(install, query))
    }

    /// GETs the page with a `Cookie` header.
    pub fn get_with_cookie(&self, install: &Install, query: &str, cookie: &str) -> CgiResponse {
        let mut params = page_params(install, query);
        params.push(("HTTP_COOKIE", cookie.to_string()));
        self.request(&params)
    }

    /// POSTs a form body to the page with a `Cookie` header, as a browser submits a form.
    pub fn post_with_cookie(
        &self,
        install: &Install,
        query: &str,
        cookie: &str,
        body: &str,
    ) -> CgiResponse {
        let mut params = page_params(install, query);
        params.retain(|(name, _)| *name != "REQUEST_METHOD");
        params.extend([
            ("REQUEST_METHOD", "POST".to_string()),
            ("CONTENT_TYPE", "application/x-www-form-urlencoded".into()),
            ("CONTENT_LENGTH", body.len().to_string()),
            ("HTTP_COOKIE", cookie.to_string()),
        ]);
        let mut stream = connect(&self.socket, Duration::from_secs(60)).unwrap();
        let params: Vec<(&[u8], &[u8])> = params
            .iter()
            .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
            .collect();
        let request = fcgi::request(1, false, &params, body.as_bytes());
        CgiResponse::parse(&fcgi::exchange(&mut stream, &request).unwrap().stdout)
    }

    /// Clicks an action's button as a browser would: loads the page (keeping the CSRF
    /// cookie it sets), then submits the button's form with that cookie.
    pub fn click(&self, install: &Install, action: &str) -> CgiResponse {
        let page = self.get(install, "");
        let cookie = csrf_cookie(&page).expect("the page sets a CSRF cookie");
        let html = page.text();
        let target = attrs(&html, "nav.actions form", "action")
            .into_iter()
            .find(|target| *target == format!("?action={action}"))
            .unwrap_or_else(|| panic!("no button for {action}"));
        let token = csrf_token(&page).expect("the page's forms carry a token");
        let done = self.post_with_cookie(install, &target[1..], &cookie, &format!("token={token}"));
        self.follow(install, done, &cookie)
    }

    /// Follows an action's `303 See Other` to the plain page as a browser does, with the
    /// cookies it had and those the redirect set; any other answer is returned as it is.
    pub fn follow(&self, install: &Install, done: CgiResponse, cookie: &str) -> CgiResponse {
        if done.status != 303 {
            return done;
        }
        assert_eq!(done.header("location"), Some("?"), "to the plain page");
        let mut cookies = vec![cookie.to_string()];
        cookies.extend(set_cookies(&done));
        self.get_with_cookie(install, "", &cookies.join("; "))
    }

    /// Runs an action with the page's CSRF token, in any spelling the router takes: loads
    /// the page (keeping the cookie it sets), then POSTs `token={token}` to
    /// `?action={action}` with that cookie.
    pub fn act(&self, install: &Install, action: &str) -> CgiResponse {
        let page = self.get(install, "");
        let cookie = csrf_cookie(&page).expect("the page sets a CSRF cookie");
        let token = csrf_token(&page).expect("the page's forms carry a token");
        let query = format!("action={action}");
        let done = self.post_with_cookie(install, &query, &cookie, &format!("token={token}"));
        self.follow(install, done, &cookie)
    }

    /// Kills the server at once (SIGKILL), as a crash or the OOM killer would.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate_and_wait(mut self) -> std::process::ExitStatus {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "no exit within 20 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server with SIGTERM and returns its stderr.
    pub fn stop(mut self) -> String {
        terminate(&mut self.child);
        let mut err = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = stderr.read_to_string(&mut err);
        }
        err
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

fn terminate(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while let Ok(None) = child.try_wait() {
            if Instant::now() > deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.wait();
    }
}

/// `name=value` of the CSRF cookie a response sets.
pub fn csrf_cookie(response: &CgiResponse) -> Option<String> {
    set_cookies(response).into_iter().find(|pair| {
        pair.starts_with("tokenusage_csrf=") || pair.starts_with("__Host-tokenusage_csrf=")
    })
}

/// `name=value` of each cookie a response sets.
pub fn set_cookies(response: &CgiResponse) -> Vec<String> {
    response
        .header("set-cookie")
        .map(|all| {
            all.lines()
                .filter_map(|line| Some(line.split(';').next()?.to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// The CSRF token a page's forms carry (the same in each of them).
pub fn csrf_token(response: &CgiResponse) -> Option<String> {
    let tokens = attrs(&response.text(), "form input[name=token]", "value");
    assert!(
        tokens.windows(2).all(|pair| pair[0] == pair[1]),
        "{tokens:?}"
    );
    tokens.into_iter().next()
}

/// The params nginx sends for a GET of the page.
pub fn page_params(install: &Install, query: &str) -> Vec<(&'static str, String)> {
    vec![
        ("GATEWAY_INTERFACE", "CGI/1.1".into()),
        ("REQUEST_METHOD", "GET".into()),
        ("SCRIPT_FILENAME", install.script_filename()),
        ("SCRIPT_NAME", "/ct/admin/tokenusage.php".into()),
        ("QUERY_STRING", query.into()),
        ("REQUEST_URI", format!("/ct/admin/tokenusage.php?{query}")),
        ("SERVER_PROTOCOL", "HTTP/1.1".into()),
        ("REMOTE_ADDR", "127.0.0.1".into()),
        ("SERVER_NAME", "localhost".into()),
        ("SERVER_PORT", "80".into()),
    ]
}

/// A CGI-style response: status, headers (lower-case names), body.
#[derive(Debug)]
pub struct CgiResponse {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl CgiResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// Parses a CGI response (`Status:` line, headers, blank line, body).
    pub fn parse(raw: &[u8]) -> Self {
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a CGI head");
        let head = String::from_utf8_lossy(&raw[..split]);
        let mut headers = HashMap::new();
        let mut status = 200;
        for line in head.split("\r\n") {
            let (name, value) = line.split_once(':').expect("a header line");
            let name = name.trim().to_ascii_lowercase();
            let value = value.trim().to_string();
            if name == "status" {
                status = value[..3].parse().unwrap();
            }
            // Several Set-Cookie headers are kept, a line each.
            match headers.get_mut(&name) {
                Some(earlier) if name == "set-cookie" => *earlier = format!("{earlier}\n{value}"),
                _ => {
                    headers.insert(name, value);
                }
            }
        }
        CgiResponse {
            status,
            headers,
            body: raw[split + 4..].to_vec(),
        }
    }
}

/// A unix socket connection whose reads and writes give up after `timeout`.
pub fn connect(socket: &Path, timeout: Duration) -> io::Result<UnixStream> {
    let stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    Ok(stream)
}

/// One FastCGI request on `stream`, as a web server sends a GET: BEGIN_REQUEST (responder,
/// no keep-alive), these PARAMS, empty STDIN; the STDOUT up to END_REQUEST, parsed. An
/// I/O error (a server that dies mid-answer, a timeout) or a record outside the protocol
/// is an `Err`, not a panic.
pub fn try_fastcgi_request<S: AsRef<str>>(
    stream: &mut (impl Read + Write),
    params: &[(&str, S)],
) -> io::Result<CgiResponse> {
    let params: Vec<(&[u8], &[u8])> = params
        .iter()
        .map(|(k, v)| (k.as_bytes(), v.as_ref().as_bytes()))
        .collect();
    let reply = fcgi::exchange(stream, &fcgi::request(1, false, &params, b""))?;
    Ok(CgiResponse::parse(&reply.stdout))
}

/// [`try_fastcgi_request`] that must be answered.
pub fn fastcgi_request<S: AsRef<str>>(
    stream: &mut (impl Read + Write),
    params: &[(&str, S)],
) -> CgiResponse {
    try_fastcgi_request(stream, params).expect("a FastCGI answer")
}

/// A FastCGI client written from the spec, independent of the crate's codec: records are
/// built and read byte by byte here.
pub mod fcgi {
    use std::io::{self, Read, Write};

    // Record types, spelled out so the tests do not lean on the codec they check.
    pub const BEGIN_REQUEST: u8 = 1;
    pub const ABORT_REQUEST: u8 = 2;
    pub const END_REQUEST: u8 = 3;
    pub const PARAMS: u8 = 4;
    pub const STDIN: u8 = 5;
    pub const STDOUT: u8 = 6;
    pub const GET_VALUES: u8 = 9;
    pub const GET_VALUES_RESULT: u8 = 10;
    pub const UNKNOWN_TYPE: u8 = 11;
    /// The BEGIN_REQUEST role of a web server's request.
    pub const RESPONDER: u16 = 1;

    /// One record, padded to a multiple of 8 bytes as the spec recommends.
    pub fn record(kind: u8, id: u16, content: &[u8]) -> Vec<u8> {
        let len = u16::try_from(content.len()).unwrap();
        let padding = (8 - content.len() % 8) % 8;
        let [id_hi, id_lo] = id.to_be_bytes();
        let [len_hi, len_lo] = len.to_be_bytes();
        let mut out = vec![1, kind, id_hi, id_lo, len_hi, len_lo, padding as u8, 0];
        out.extend_from_slice(content);
        out.resize(out.len() + padding, 0);
        out
    }

    /// A stream's records, split at 65535 bytes, then the empty record that ends it.
    pub fn stream(kind: u8, id: u16, data: &[u8]) -> Vec<u8> {
        let mut out: Vec<u8> = data
            .chunks(65535)
            .flat_map(|chunk| record(kind, id, chunk))
            .collect();
        out.extend(record(kind, id, &[]));
        out
    }

    /// Name-value pairs, each length in one byte below 128, else in four.
    pub fn pairs(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
        fn length(out: &mut Vec<u8>, len: usize) {
            match u8::try_from(len) {
                Ok(short) if short < 0x80 => out.push(short),
                _ => out.extend((u32::try_from(len).unwrap() | 0x8000_0000).to_be_bytes()),
            }
        }
        let mut out = Vec::new();
        for (name, value) in pairs {
            length(&mut out, name.len());
            length(&mut out, value.len());
            out.extend_from_slice(name);
            out.extend_from_slice(value);
        }
        out
    }

    pub fn begin(id: u16, role: u16, keep_conn: bool) -> Vec<u8> {
        let [role_hi, role_lo] = role.to_be_bytes();
        record(
            BEGIN_REQUEST,
            id,
            &[role_hi, role_lo, u8::from(keep_conn), 0, 0, 0, 0, 0],
        )
    }

    /// A whole responder request: BEGIN_REQUEST, PARAMS and STDIN.
    pub fn request(id: u16, keep_conn: bool, params: &[(&[u8], &[u8])], body: &[u8]) -> Vec<u8> {
        let mut out = begin(id, RESPONDER, keep_conn);
        out.extend(stream(PARAMS, id, &pairs(params)));
        out.extend(stream(STDIN, id, body));
        out
    }

    pub struct RawRecord {
        pub kind: u8,
        pub id: u16,
        pub content: Vec<u8>,
    }

    fn invalid(message: String) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, message)
    }

    pub fn read_record(conn: &mut (impl Read + ?Sized)) -> io::Result<RawRecord> {
        let mut header = [0u8; 8];
        conn.read_exact(&mut header)?;
        let [version, kind, id_hi, id_lo, len_hi, len_lo, padding, _] = header;
        if version != 1 {
            return Err(invalid(format!("a record of version {version}")));
        }
        let len = usize::from(u16::from_be_bytes([len_hi, len_lo]));
        let mut content = vec![0u8; len + usize::from(padding)];
        conn.read_exact(&mut content)?;
        content.truncate(len);
        Ok(RawRecord {
            kind,
            id: u16::from_be_bytes([id_hi, id_lo]),
            content,
        })
    }

    /// One request's answer: its STDOUT (and the size of each record) up to END_REQUEST.
    pub struct Reply {
        pub stdout: Vec<u8>,
        pub record_sizes: Vec<usize>,
        pub protocol_status: u8,
    }

    impl Reply {
        pub fn text(&self) -> String {
            String::from_utf8_lossy(&self.stdout).into_owned()
        }
    }

    /// Reads the answer to request `id`; a record of another request or type is an error.
    pub fn read_reply(conn: &mut (impl Read + ?Sized), id: u16) -> io::Result<Reply> {
        let mut reply = Reply {
            stdout: Vec::new(),
            record_sizes: Vec::new(),
            protocol_status: u8::MAX,
        };
        loop {
            let record = read_record(conn)?;
            if record.id != id {
                return Err(invalid(format!(
                    "a record for request {}, not {id}",
                    record.id
                )));
            }
            match record.kind {
                STDOUT => {
                    reply.record_sizes.push(record.content.len());
                    reply.stdout.extend(record.content);
                }
                END_REQUEST => {
                    reply.protocol_status = record.content[4];
                    return Ok(reply);
                }
                other => return Err(invalid(format!("unexpected record type {other}"))),
            }
        }
    }

    /// Sends a whole request and reads the answer to its id (the id of its first record).
    pub fn exchange(conn: &mut (impl Read + Write + ?Sized), request: &[u8]) -> io::Result<Reply> {
        let id = u16::from_be_bytes([request[2], request[3]]);
        conn.write_all(request)?;
        read_reply(conn, id)
    }
}

/// Runs the binary as a CGI program with these variables.
pub fn cgi(params: &[(&str, String)], extra_env: &[(&str, &str)]) -> CgiResponse {
    let mut command = Command::new(BIN);
    command.env_clear();
    for (k, v) in params {
        command.env(k, v);
    }
    if !extra_env.iter().any(|(k, _)| *k == "TOKENUSAGE_AUTH") {
        command.env("TOKENUSAGE_AUTH", "none");
    }
    for (k, v) in extra_env {
        command.env(k, v);
    }
    let output = command.stdin(Stdio::null()).output().unwrap();
    assert!(
        output.status.success(),
        "CGI exited with {:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    CgiResponse::parse(&output.stdout)
}

/// The text of the elements matching a CSS selector.
pub fn texts(html: &str, selector: &str) -> Vec<String> {
    let document = scraper::Html::parse_document(html);
    let selector = scraper::Selector::parse(selector).unwrap();
    document
        .select(&selector)
        .map(|e| {
            e.text()
                .collect::<Vec<_>>()
                .join(" ")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// An attribute of the elements matching a CSS selector.
pub fn attrs(html: &str, selector: &str, attr: &str) -> Vec<String> {
    let document = scraper::Html::parse_document(html);
    let selector = scraper::Selector::parse(selector).unwrap();
    document
        .select(&selector)
        .filter_map(|e| e.value().attr(attr).map(str::to_string))
        .collect()
}

/// Today's transaction cache file of the sample installation (UTC, the sample's zone).
pub fn today_file(install: &Install) -> PathBuf {
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    tokenusage::data::cache::transaction_cache_file(
        &install.transaction_cache_dir(),
        "demo.example.com",
        &today,
    )
}

/// Writes the PHP page's transaction cache file of `date` (`YYYY-MM-DD`) holding
/// `entries` (each a JSON object's text), stamped long ago.
pub fn write_history_file(install: &Install, date: &str, entries: &[String]) {
    fs::create_dir_all(install.transaction_cache_dir()).unwrap();
    fs::write(
        tokenusage::data::cache::transaction_cache_file(
            &install.transaction_cache_dir(),
            "demo.example.com",
            date,
        ),
        format!(
            r#"{{"timestamp":1,"domain":"demo.example.com","transactions":[{}]}}"#,
            entries.join(",")
        ),
    )
    .unwrap();
}

/// Writes today's transaction cache as the PHP page does (`json_encode` of the time now,
/// the sample's domain and `entries`, the text of a JSON array).
pub fn write_today_history(install: &Install, entries: &str) {
    fs::create_dir_all(install.transaction_cache_dir()).unwrap();
    let now = chrono::Utc::now().timestamp();
    fs::write(
        today_file(install),
        format!(r#"{{"timestamp":{now},"domain":"demo.example.com","transactions":{entries}}}"#),
    )
    .unwrap();
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real nginx (Debian's package) on loopback passing `*.php` under `site` to the
/// FastCGI socket; stopped on drop.
pub struct Nginx {
    pub port: u16,
    child: Child,
    _dir: TempDir,
}

impl Nginx {
    pub fn start(site: &Path, socket: &Path) -> Self {
        let php = format!(
            r#"location ~ \.php$ {{
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            fastcgi_pass unix:{socket};
        }}"#,
            socket = socket.display()
        );
        Self::start_with(site, &php)
    }

    /// nginx with these `location` blocks in its one server (root `site`).
    pub fn start_with(site: &Path, locations: &str) -> Self {
        let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("nginx is not installed: apt-get install -y nginx (.ci/run does)");
        let dir = TempDir::new("nginx");
        let port = free_port();
        let prefix = dir.0.display().to_string();
        fs::create_dir_all(dir.0.join("tmp")).unwrap();
        let conf = format!(
            r#"
user root;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/tmp/body;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    proxy_temp_path {prefix}/tmp/proxy;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {site};
        {locations}
    }}
}}
"#,
            site = site.display(),
        );
        let conf_path = dir.0.join("nginx.conf");
        fs::write(&conf_path, conf).unwrap();
        let child = Command::new(nginx)
            .args(["-p", &prefix, "-c"])
            .arg(&conf_path)
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not start: {}",
                fs::read_to_string(dir.0.join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Nginx {
            port,
            child,
            _dir: dir,
        }
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://127.0.0.1:{}{path_and_query}", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

/// An HTTP GET on loopback: status, headers (lower-case names), body.
pub fn http_get(url: &str) -> CgiResponse {
    try_http_get(url, &[], Duration::from_secs(60)).unwrap()
}

/// An HTTP GET with these request headers that gives up after `timeout`; an HTTP error
/// status is a response, only a failed exchange (refused, timed out) is an `Err`.
pub fn try_http_get(
    url: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> Result<CgiResponse, ureq::Error> {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(timeout))
        .build()
        .new_agent();
    let mut request = agent.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut response = request.call()?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                v.to_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let body = response
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_vec()?;
    Ok(CgiResponse {
        status,
        headers,
        body,
    })
}

/// True when the server closed `stream` within `limit` (EOF or an error; not a timeout).
pub fn closed_within(stream: &mut UnixStream, limit: Duration) -> bool {
    stream.set_read_timeout(Some(limit)).unwrap();
    match stream.read(&mut [0u8; 64]) {
        Ok(0) => true,
        Ok(_) => false,
        Err(err) => !matches!(
            err.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ),
    }
}
