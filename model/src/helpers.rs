//! Template helpers (placeholder).
pub fn register(_hb: &mut handlebars::Handlebars<'static>) {}
