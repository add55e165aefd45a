//! The closed vocabularies of coachgraph. Each enum is declared once and serves the
//! database (stored as its upper-case name), the GraphQL schema and the policy. Its names
//! come from the variant names (strum: `<&'static str>::from(v)`, `"NAME".parse()`), never
//! from a table written by hand.

/// The name of a vocabulary value, as stored, sent and shown (e.g. `SASHA_OBSERVE`).
pub fn name<T: Into<&'static str>>(value: T) -> &'static str {
    value.into()
}

use async_graphql::Enum;
use sea_orm::{DeriveActiveEnum, EnumIter};
use serde::{Deserialize, Serialize};
use strum::{EnumString, IntoStaticStr};

/// A principal's role (POLICY.md section 1).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[derive(Enum, IntoStaticStr, EnumString)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    #[sea_orm(string_value = "COACHEE")]
    Coachee,
    #[sea_orm(string_value = "COACH")]
    Coach,
    #[sea_orm(string_value = "PROGRAM_ADMIN")]
    ProgramAdmin,
    #[sea_orm(string_value = "EXECUTIVE")]
    Executive,
    #[sea_orm(string_value = "AI_AGENT")]
    AiAgent,
    #[sea_orm(string_value = "SYSTEM_ADMIN")]
    SystemAdmin,
}

impl Role {
    pub const ALL: [Role; 6] =
        [Role::Coachee, Role::Coach, Role::ProgramAdmin, Role::Executive, Role::AiAgent, Role::SystemAdmin];

    /// The name stored in the database, in tokens and in `set_tenant_context`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(s: &str) -> Option<Role> {
        s.parse().ok()
    }

    /// Lower-case name used for file names (golden schemas, snapshots).
    pub fn slug(self) -> String {
        self.as_str().to_ascii_lowercase()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[derive(Enum, IntoStaticStr, EnumString)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UserStatus {
    #[sea_orm(string_value = "ACTIVE")]
    Active,
    /// Invited, no password set yet: cannot log in.
    #[sea_orm(string_value = "INVITED")]
    Invited,
    #[sea_orm(string_value = "DEACTIVATED")]
    Deactivated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[derive(Enum, IntoStaticStr, EnumString)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SessionStatus {
    #[sea_orm(string_value = "SCHEDULED")]
    Scheduled,
    #[sea_orm(string_value = "COMPLETED")]
    Completed,
    #[sea_orm(string_value = "CANCELLED")]
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[derive(Enum, IntoStaticStr, EnumString)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InsightStatus {
    #[sea_orm(string_value = "DRAFT")]
    Draft,
    #[sea_orm(string_value = "APPROVED")]
    Approved,
    #[sea_orm(string_value = "REJECTED")]
    Rejected,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[derive(Enum, IntoStaticStr, EnumString)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum EvidenceLevel {
    #[sea_orm(string_value = "L0")]
    L0,
    #[sea_orm(string_value = "L1")]
    L1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[derive(Enum, IntoStaticStr, EnumString)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConsentKind {
    #[sea_orm(string_value = "SASHA_OBSERVE")]
    SashaObserve,
    #[sea_orm(string_value = "SASHA_ANALYZE")]
    SashaAnalyze,
    #[sea_orm(string_value = "SASHA_ACT")]
    SashaAct,
    #[sea_orm(string_value = "TRANSCRIPT_SHARING")]
    TranscriptSharing,
}

impl ConsentKind {
    pub const ALL: [ConsentKind; 4] =
        [ConsentKind::SashaObserve, ConsentKind::SashaAnalyze, ConsentKind::SashaAct, ConsentKind::TranscriptSharing];
}

/// The AI engine's reach over one coachee, ordered: `Off < Observe < Analyze < Act`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[derive(Enum, IntoStaticStr, EnumString)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AiLevel {
    #[sea_orm(string_value = "OFF")]
    Off,
    #[sea_orm(string_value = "OBSERVE")]
    Observe,
    #[sea_orm(string_value = "ANALYZE")]
    Analyze,
    #[sea_orm(string_value = "ACT")]
    Act,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[derive(IntoStaticStr, EnumString)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuditOutcome {
    #[sea_orm(string_value = "ALLOWED")]
    Allowed,
    #[sea_orm(string_value = "DENIED")]
    Denied,
    #[sea_orm(string_value = "ALERT")]
    Alert,
}

impl AuditOutcome {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// How a client keeps its session (POLICY.md section 11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Enum, IntoStaticStr, EnumString)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum ClientKind {
    /// The session rides in cookies (coach dashboard).
    #[default]
    Browser,
    /// A bearer token plus a refresh token (mobile app, reporting jobs); no cookies.
    Device,
}

impl ClientKind {
    pub fn parse(s: &str) -> Option<ClientKind> {
        s.parse().ok()
    }
}
