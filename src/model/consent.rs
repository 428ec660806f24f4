//! Consent as evidence (UK GDPR art. 7(1): be able to show that a person
//! consented): the route a subscriber came by, the operator's reason for a
//! confirmation given on the command line, and for an import the times the
//! other system recorded. Storing it is `store::subscribers`'s.

use super::SubscriberStatus;

/// How a subscriber came to be on the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentRoute {
    /// The sign-up form, confirmed by the emailed link.
    Web,
    /// `tidings subscribers add`.
    Cli,
    /// `tidings subscribers import`.
    Import,
}

impl ConsentRoute {
    /// The stored name: `web`, `cli` or `import`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Web => "web",
            Self::Cli => "cli",
            Self::Import => "import",
        }
    }
}

/// What is recorded about how a subscriber consented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    /// How they came.
    pub route: ConsentRoute,
    /// Why an operator added or confirmed them (`--reason`), or which file
    /// and format they were imported from.
    pub reason: Option<String>,
    /// When they opted in, as the system they were imported from wrote it.
    pub source_optin_at: Option<String>,
    /// When they confirmed, as the system they were imported from wrote it.
    pub source_confirmed_at: Option<String>,
    /// For imports: `Unsubscribed` or `Suppressed` when the other system had
    /// them so; they are then stored with that status and sent nothing.
    pub imported_status: Option<SubscriberStatus>,
}

impl Consent {
    /// A sign-up through the web form.
    pub fn web() -> Self {
        Self::by(ConsentRoute::Web, None)
    }

    /// An address added on the command line, with the operator's reason.
    pub fn cli(reason: Option<String>) -> Self {
        Self::by(ConsentRoute::Cli, reason)
    }

    /// An imported address; `origin` names the file and format.
    pub fn import(origin: String) -> Self {
        Self::by(ConsentRoute::Import, Some(origin))
    }

    fn by(route: ConsentRoute, reason: Option<String>) -> Self {
        Self {
            route,
            reason,
            source_optin_at: None,
            source_confirmed_at: None,
            imported_status: None,
        }
    }
}
