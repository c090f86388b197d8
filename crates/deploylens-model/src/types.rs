//! The closed vocabularies of the event schema, as enums rather than strings passed around.

use std::fmt;

/// A value that is not one of an enum's allowed spellings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseEnumError {
    /// The schema field being parsed, such as `environment`.
    pub field: &'static str,
    /// The spellings the field accepts.
    pub allowed: &'static [&'static str],
}

impl fmt::Display for ParseEnumError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} must be one of {}", self.field, self.allowed.join(", "))
    }
}

impl std::error::Error for ParseEnumError {}

macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident, $field:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $(#[doc = concat!("`", $text, "`")] $variant),+ }

        impl $name {
            /// Every value, in schema order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The allowed spellings, exactly as in the schema.
            pub const NAMES: &'static [&'static str] = &[$($text),+];
            /// The column (and event field) holding these values.
            pub const FIELD: &'static str = $field;

            /// The spelling in the schema, such as `production`.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the exact spelling (enums are case-sensitive, as in the JSON schema).
            pub fn parse(text: &str) -> Result<Self, ParseEnumError> {
                match text {
                    $($text => Ok($name::$variant),)+
                    _ => Err(ParseEnumError { field: $field, allowed: Self::NAMES }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = ParseEnumError;
            fn from_str(s: &str) -> Result<Self, Self::Err> { Self::parse(s) }
        }
    };
}

string_enum!(
    /// What happened: the `event_type` field.
    EventType, "event_type", {
        Deployment => "deployment",
        Rollback => "rollback",
        HealthCheck => "health_check",
        Backup => "backup",
        ConfigurationChange => "configuration_change",
    }
);

string_enum!(
    /// Where it happened: the `environment` field.
    Environment, "environment", {
        Development => "development",
        Staging => "staging",
        Production => "production",
    }
);

string_enum!(
    /// How it ended: the `status` field.
    Status, "status", {
        Success => "success",
        Failure => "failure",
        InProgress => "in_progress",
    }
);

string_enum!(
    /// Who triggered it: the `deployed_by` field.
    DeployedBy, "deployed_by", {
        Agent => "agent",
        Human => "human",
        CiCd => "ci_cd",
    }
);

string_enum!(
    /// How an event's repository was obtained: from its own `repository` field, or (legacy
    /// records) from the name of the folder that holds `.chora`.
    RepositorySource, "repository_source", {
        Field => "field",
        Path => "path",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_and_are_case_sensitive() {
        for e in Environment::ALL {
            assert_eq!(Environment::parse(e.as_str()), Ok(*e));
        }
        assert!(Environment::parse("Production").is_err());
        assert!(Environment::parse("prod").is_err());
        let err = Status::parse("ok").unwrap_err();
        assert_eq!(
            err.to_string(),
            "status must be one of success, failure, in_progress"
        );
    }
}
