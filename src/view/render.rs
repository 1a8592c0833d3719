//! Templates: built once at start, embedded in the binary, optionally overridden from a
//! folder (`--templates DIR`) for a site that customises the look.
//!
//! Reading the override folder at start is the only I/O; rendering is pure.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;
use tera::{Context, Tera};

use crate::data::i18n::Strings;

/// The page templates, rendered with HTML autoescaping on.
const TEMPLATES: [(&str, &str); 6] = [
    ("base.html", include_str!("../../templates/base.html")),
    (
        "dashboard.html",
        include_str!("../../templates/dashboard.html"),
    ),
    ("debug.html", include_str!("../../templates/debug.html")),
    ("error.html", include_str!("../../templates/error.html")),
    (
        "insights.html",
        include_str!("../../templates/insights.html"),
    ),
    (
        "transactions.html",
        include_str!("../../templates/transactions.html"),
    ),
];

/// The files served as they are with `?asset=NAME`: name, content type, embedded content.
/// The binary carries them so no CDN is needed; the router accepts only these names.
pub const ASSETS: [(&str, &str, &str); 2] = [
    (
        "dashboard.css",
        "text/css; charset=UTF-8",
        include_str!("../../templates/dashboard.css"),
    ),
    (
        "dashboard.js",
        "text/javascript; charset=UTF-8",
        include_str!("../../templates/dashboard.js"),
    ),
];

/// Why the templates could not be built (a start-up error) or a page rendered.
#[derive(Debug)]
pub enum TemplateError {
    /// `--templates DIR` is not a folder.
    NotAFolder(PathBuf),
    /// A template file of the override folder could not be read.
    Unreadable { path: PathBuf, source: io::Error },
    /// The templates do not compile.
    Compile(tera::Error),
    /// A page could not be rendered.
    Render(tera::Error),
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateError::NotAFolder(dir) => {
                write!(f, "--templates {}: not a folder", dir.display())
            }
            TemplateError::Unreadable { path, .. } => {
                write!(f, "{}: cannot be read", path.display())
            }
            TemplateError::Compile(_) => f.write_str("the templates do not compile"),
            TemplateError::Render(_) => f.write_str("a template could not be rendered"),
        }
    }
}

impl std::error::Error for TemplateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TemplateError::NotAFolder(_) => None,
            TemplateError::Unreadable { source, .. } => Some(source),
            TemplateError::Compile(e) | TemplateError::Render(e) => Some(e),
        }
    }
}

/// The compiled templates and the assets.
pub struct Renderer {
    tera: Tera,
    assets: Vec<(&'static str, &'static str, Vec<u8>)>,
}

impl fmt::Debug for Renderer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Renderer").finish_non_exhaustive()
    }
}

impl Renderer {
    /// The templates compiled into the binary.
    pub fn embedded() -> Result<Self, TemplateError> {
        Self::build(None)
    }

    /// The embedded templates with any file of the same name in `dir` used instead.
    pub fn with_overrides(dir: &Path) -> Result<Self, TemplateError> {
        if !dir.is_dir() {
            return Err(TemplateError::NotAFolder(dir.to_path_buf()));
        }
        Self::build(Some(dir))
    }

    fn build(dir: Option<&Path>) -> Result<Self, TemplateError> {
        let read = |name: &str, embedded: &str| -> Result<String, TemplateError> {
            match dir.map(|d| d.join(name)).filter(|p| p.is_file()) {
                Some(path) => std::fs::read_to_string(&path)
                    .map_err(|source| TemplateError::Unreadable { path, source }),
                None => Ok(embedded.to_string()),
            }
        };
        let mut tera = Tera::default();
        // Every template escapes, whatever its name: outside text is data, never markup.
        tera.autoescape_on(vec![""]);
        let mut sources = Vec::new();
        for (name, embedded) in TEMPLATES {
            sources.push((name, read(name, embedded)?));
        }
        tera.add_raw_templates(sources)
            .map_err(TemplateError::Compile)?;
        let mut assets = Vec::new();
        for (name, content_type, embedded) in ASSETS {
            assets.push((name, content_type, read(name, embedded)?.into_bytes()));
        }
        Ok(Renderer { tera, assets })
    }

    /// Renders a page: the view under `name_of_view`, the strings as `t`, plus the links.
    pub fn render(
        &self,
        template: &str,
        strings: &Strings,
        common: &impl Serialize,
        view: (&str, &impl Serialize),
    ) -> Result<String, TemplateError> {
        let mut context = Context::from_serialize(common).map_err(TemplateError::Render)?;
        context.insert_value("t", strings.template_value());
        context.insert(view.0.to_string(), view.1);
        self.tera
            .render(template, &context)
            .map_err(TemplateError::Render)
    }

    /// An asset's content type and bytes.
    pub fn asset(&self, name: &str) -> Option<(&'static str, &[u8])> {
        self.assets
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, content_type, bytes)| (*content_type, bytes.as_slice()))
    }
}

/// An error with its causes, for logs.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
