//! "Download History": the kept history as a CSV attachment.

use super::error::{RequestError, debug_message};
use super::visit::Visit;

use crate::data::cache::local_date;
use crate::data::fetch::{Needs, required};
use crate::transport::response::Response;
use crate::view::dashboard::Notice;
use crate::view::export;

impl Visit<'_> {
    pub(super) fn download(&self, mut notices: Vec<Notice>) -> Result<Response, RequestError> {
        let config = &self.config;
        let strings = &config.strings;
        if config.demo_mode {
            notices.push(Notice::error(strings.get("token_usage_download_demo")));
            return self.dashboard(notices, false);
        }
        let gathered = self.gatherer(false).gather(Needs::HISTORY);
        let history = match required(gathered.history) {
            Ok(history) => history,
            Err(error) => {
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
        if history.value.is_empty() {
            notices.push(Notice::info(
                strings.get("token_usage_no_transactions_download"),
            ));
            return self.dashboard(notices, false);
        }
        let csv = self
            .site
            .csv
            .get_or_make(&history.value, (), || {
                let mut body = Vec::with_capacity(history.value.len() * 160);
                export::write_csv(&mut body, history.value.iter()).map(|()| body)
            })
            .map_err(RequestError::Csv)?;
        let body = csv.as_ref().clone();
        let today = local_date(self.now, config.timezone);
        let mut response = Response::new(200, "text/csv; charset=UTF-8", body);
        response.set_header(
            "Content-Disposition",
            &format!(
                "attachment; filename=\"{}\"",
                export::download_file_name(today)
            ),
        );
        Ok(response)
    }
}
