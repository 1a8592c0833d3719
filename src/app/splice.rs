//! Rendered dashboards kept and filled in: a page is rendered once per distinct view
//! with a placeholder token, then cut where each browser's token and the rows go.

use crate::data::i18n::Strings;
use crate::view::dashboard::DashboardView;

/// Where the page template places the rendered rows. Outside text cannot forge it: every
/// template escapes `<` in what it prints.
pub(super) const ROWS_MARKER: &str = "<!--tokenusage:rows-->";

/// What a rendered dashboard depends on: the view (rows left out) and the strings.
pub(super) struct PageKey {
    pub(super) view: DashboardView,
    pub(super) strings: Strings,
}

impl PartialEq for PageKey {
    fn eq(&self, other: &Self) -> bool {
        self.strings.is_same(&other.strings) && self.view == other.view
    }
}

/// A rendered dashboard, cut where a browser's CSRF token and the page's rows go.
#[derive(Debug, PartialEq)]
pub(super) struct RenderedPage {
    pieces: Vec<Piece>,
}

#[derive(Debug, PartialEq)]
pub(super) enum Piece {
    Text(String),
    Token,
    Rows,
}

impl RenderedPage {
    /// Cuts `html`, rendered with `placeholder` as the token, at the token and the rows'
    /// marker.
    pub(super) fn cut(html: &str, placeholder: &str) -> RenderedPage {
        let mut pieces = Vec::new();
        let (before, after) = match html.split_once(ROWS_MARKER) {
            Some((before, after)) => (before, Some(after)),
            None => (html, None),
        };
        let push_text = |text: &str, pieces: &mut Vec<Piece>| {
            for (i, part) in text.split(placeholder).enumerate() {
                if i > 0 {
                    pieces.push(Piece::Token);
                }
                if !part.is_empty() {
                    pieces.push(Piece::Text(part.to_string()));
                }
            }
        };
        push_text(before, &mut pieces);
        if let Some(after) = after {
            pieces.push(Piece::Rows);
            push_text(after, &mut pieces);
        }
        RenderedPage { pieces }
    }

    /// The page with this token and these rows.
    pub(super) fn assemble(&self, token: &str, rows: &str) -> Vec<u8> {
        let piece = |p: &'_ Piece| -> usize {
            match p {
                Piece::Text(text) => text.len(),
                Piece::Token => token.len(),
                Piece::Rows => rows.len(),
            }
        };
        let mut body = Vec::with_capacity(self.pieces.iter().map(piece).sum());
        for p in &self.pieces {
            body.extend_from_slice(match p {
                Piece::Text(text) => text.as_bytes(),
                Piece::Token => token.as_bytes(),
                Piece::Rows => rows.as_bytes(),
            });
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_page_takes_each_browsers_token_and_the_rows() {
        let placeholder = "0123456789abcdef";
        let html = format!(
            "<a href=\"?action=refresh_data&token={placeholder}\">{ROWS_MARKER}<b data-x=\"{placeholder}\"></b>"
        );
        let page = RenderedPage::cut(&html, placeholder);
        assert_eq!(
            page.pieces,
            [
                Piece::Text("<a href=\"?action=refresh_data&token=".into()),
                Piece::Token,
                Piece::Text("\">".into()),
                Piece::Rows,
                Piece::Text("<b data-x=\"".into()),
                Piece::Token,
                Piece::Text("\"></b>".into()),
            ]
        );
        assert_eq!(
            String::from_utf8(page.assemble("feed", "<tr></tr>")).unwrap(),
            "<a href=\"?action=refresh_data&token=feed\"><tr></tr><b data-x=\"feed\"></b>"
        );
    }

    #[test]
    fn a_page_without_the_rows_marker_is_kept_whole() {
        let page = RenderedPage::cut("<p>no rows</p>", "0123");
        assert_eq!(page.assemble("t", "<tr></tr>"), b"<p>no rows</p>");
    }
}
