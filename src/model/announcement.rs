//! How an announcement was asked for: the command line, the API, the admin
//! page, or a category announced automatically on ingest.

/// How an announcement was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `tidings announce`.
    Cli,
    /// `POST /api/announcements`.
    Api,
    /// The admin page.
    Admin,
    /// A category with `announce = true`, on ingest.
    Auto,
}

impl Route {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cli => "cli",
            Self::Api => "api",
            Self::Admin => "admin",
            Self::Auto => "auto",
        }
    }
}
