//! "Download History": the kept history as a CSV attachment.

use super::error::{RequestError, debug_message};
use super::visit::Visit;

use crate::data::cache::local_date;
use crate::data::fetch::{Needs, required};
use crate::data::history::PER_PAGE;
use crate::data::kept_history::KeptError;
use crate::transport::response::Response;
use crate::view::dashboard::Notice;
use crate::view::export;

impl Visit<'_> {
    pub(super) fn download(&self, mut notices: Vec<Notice>) -> Result<Response, RequestError> {
        let config = &self.config;
        let strings = &self.strings;
        if config.demo_mode {
            notices.push(Notice::error(strings.get("token_usage_download_demo")));
            return self.dashboard(notices, false);
        }
        let gathered = self.gatherer(false).gather(Needs::HISTORY);
        // The kept history, everything ever fetched, when there is one: it also stands
        // in for a history the license server did not send (stale beats blank).
        let kept = gathered.kept.filter(|kept| kept.len > 0);
        let history = match (required(gathered.history), &kept) {
            (Ok(history), _) => Some(history),
            (Err(_), Some(_)) => None,
            (Err(error), None) => {
                eprintln!("tokenusage: download: {}", debug_message(&error));
                let message = strings.get("token_usage_download_failed").to_string();
                notices.push(Notice::error(message.clone()));
                return self
                    .dashboard(notices, false)
                    .map_err(|_| RequestError::DownloadFailed {
                        message,
                        cause: error,
                    });
            }
        };
        let header = export::CsvHeader::of(strings);
        let language = strings.language();
        let csv = match (kept, history) {
            (Some(kept), _) => {
                // The first page, read once per generation, stands for this version.
                let version = kept.page(0..PER_PAGE).map_err(kept_failed)?;
                self.site
                    .csv
                    .get_or_make(&version, language, || {
                        // About 160 bytes a row; grown as needed past 16 MB.
                        let mut body = Vec::with_capacity((kept.len * 160).min(16 << 20));
                        kept.history()
                            .with_all(|all| export::write_csv(&mut body, &header, all))
                            .map_err(|e| std::io::Error::other(e.to_string()))?
                            .map(|()| body)
                    })
                    .map_err(RequestError::Csv)?
            }
            (None, Some(history)) if !history.value.is_empty() => self
                .site
                .csv
                .get_or_make(&history.value, language, || {
                    let mut body = Vec::with_capacity(history.value.len() * 160);
                    export::write_csv(&mut body, &header, history.value.iter()).map(|()| body)
                })
                .map_err(RequestError::Csv)?,
            (None, _) => {
                notices.push(Notice::info(
                    strings.get("token_usage_no_transactions_download"),
                ));
                return self.dashboard(notices, false);
            }
        };
        let body = csv.as_ref().clone();
        let today = local_date(self.now, config.timezone);
        let mut response = Response::new(200, "text/csv; charset=UTF-8", body);
        response.set_header(
            "Content-Disposition",
            &format!(
                "attachment; filename=\"{}\"",
                export::download_file_name(strings, today)
            ),
        );
        Ok(response)
    }
}

fn kept_failed(error: KeptError) -> RequestError {
    RequestError::Csv(std::io::Error::other(error.to_string()))
}
