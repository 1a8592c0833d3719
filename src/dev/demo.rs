//! `tokenusage demo`: the sample license API and a local HTTP preview of the real page
//! over the repository's sample installation (`ct/`), like `php -S`.
//!
//! Binds two loopback sockets: the sample API at the address the sample config's
//! `api_url` names, and the preview.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::app::{Site, SiteOptions, handle};
use crate::data::cache;
use crate::data::config::ConfigStore;
use crate::data::install::Installation;
use crate::dev::http::{Handler, HttpRequest, HttpResponse, cgi_request_from_http, serve_http};
use crate::dev::sample_api::{SampleApi, SampleApiOptions};
use crate::transport::response::Response;
use crate::transport::signals;

/// The URL path the preview serves the page at.
pub const PAGE_PATH: &str = "/ct/admin/tokenusage.php";

/// Runs the demo until SIGINT or SIGTERM.
pub fn run(root: &Path, listen: &str, transactions: usize) -> Result<(), String> {
    let install = Installation::new(root);
    let config = ConfigStore::default()
        .load(&install)
        .map_err(|e| format!("the demo needs a complete sample config: {e}"))?;
    let api_addr = loopback_authority(&config.credentials.api_url).ok_or_else(|| {
        format!(
            "the demo serves the sample API at the config's api_url, which must be \
             http://127.0.0.1:PORT/...; it is {}",
            config.credentials.api_url
        )
    })?;
    // Checked before anything is deleted or started: a wrong --listen changes nothing.
    let listener =
        TcpListener::bind(listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    // The demo has no admin check (--auth none): it may only be reachable from here.
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    if !local.ip().is_loopback() {
        return Err(format!(
            "the demo has no admin check, so it listens on loopback only, not {local}"
        ));
    }
    let options = SampleApiOptions {
        transactions,
        ..SampleApiOptions::default()
    };
    // The sample data depends on --transactions: start from empty caches so the page
    // shows what this run's sample API serves.
    cache::delete(&install.pricing_cache()).map_err(|e| e.to_string())?;
    cache::clear_transaction_caches(&install.transaction_cache_dir()).map_err(|e| e.to_string())?;
    let api = SampleApi::start(&api_addr, options)
        .map_err(|e| format!("cannot start the sample API on {api_addr}: {e}"))?;
    let site = Site::new(SiteOptions {
        root: Some(root.to_path_buf()),
        ..SiteOptions::default()
    })
    .map_err(|e| e.to_string())?;
    let shutdown = signals::shutdown_flag();
    println!("Sample license API: {}", api.url());
    println!("Token Usage dashboard: http://{local}{PAGE_PATH}");
    println!("Press Ctrl-C to stop.");
    serve_http(listener, 8, page_handler(site, root), shutdown).map_err(|e| e.to_string())?;
    // Joins the sample API's server thread: nothing is left to wait for.
    api.stop();
    Ok(())
}

/// The preview's handler: the page at [`PAGE_PATH`] from the installation at `root`,
/// `/` redirected there, and 404 for anything else.
pub fn page_handler(site: Site, root: &Path) -> Handler {
    let script = root.join("admin").join("tokenusage.php");
    Arc::new(move |request: &HttpRequest| {
        let response = match request.path() {
            PAGE_PATH => handle(&cgi_request_from_http(request, &script, PAGE_PATH), &site),
            "/" => Response::redirect(PAGE_PATH),
            _ => Response::text(
                404,
                format!(
                    "Not part of the demo: only {PAGE_PATH} is served \
                     (the rest of the admin panel is PHP).\n"
                ),
            ),
        };
        HttpResponse::from(response)
    })
}

/// `http://127.0.0.1:8781/path` -> `127.0.0.1:8781`, only for loopback addresses.
fn loopback_authority(url: &str) -> Option<String> {
    let rest = url.strip_prefix("http://")?;
    let authority = rest.split('/').next()?;
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    matches!(host, "127.0.0.1" | "localhost" | "[::1]").then(|| {
        if authority.contains(':') {
            authority.to_string()
        } else {
            format!("{authority}:80")
        }
    })
}

/// The sample installation beside the binary's source: `./ct` when run from the repo.
pub fn default_root() -> PathBuf {
    PathBuf::from("ct")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preview_redirects_the_root_to_the_page_and_refuses_the_rest() {
        let site = Site::new(SiteOptions::default()).unwrap();
        let handler = page_handler(site, Path::new("ct"));
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], 8780));
        let get = |target: &str| {
            handler(&HttpRequest {
                method: "GET".into(),
                target: target.into(),
                minor_version: 1,
                headers: Vec::new(),
                body: Vec::new(),
                remote_addr: address,
                local_addr: address,
            })
        };
        let root = get("/");
        assert_eq!(root.status, 302);
        let location = root.headers.iter().find(|(name, _)| name == "Location");
        assert_eq!(location.map(|(_, value)| value.as_str()), Some(PAGE_PATH));
        assert_eq!(get("/ct/admin/main.php").status, 404);
    }

    #[test]
    fn only_loopback_api_urls_are_served_by_the_demo() {
        assert_eq!(
            loopback_authority("http://127.0.0.1:8781/projects/api.php").as_deref(),
            Some("127.0.0.1:8781")
        );
        assert_eq!(loopback_authority("https://comusthumbz.com/x"), None);
        assert_eq!(loopback_authority("http://10.0.0.1:80/x"), None);
    }
}
