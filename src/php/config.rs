//! The PHP config literal parser (being written).
