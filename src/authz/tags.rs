//! Visibility tags and the clearance table (POLICY.md section 3).

use async_graphql::Enum;

use crate::kinds::Role;

/// The one tag every output field carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Enum, strum::IntoStaticStr, strum::EnumString)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum VisibilityTag {
    ClientVisible,
    CoachOnly,
    AdminAggregate,
    SystemInternal,
}

impl VisibilityTag {
    pub const ALL: [VisibilityTag; 4] = [
        VisibilityTag::ClientVisible,
        VisibilityTag::CoachOnly,
        VisibilityTag::AdminAggregate,
        VisibilityTag::SystemInternal,
    ];

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }

    /// How many roles may hold the tag: a tag is "looser" than another when more
    /// roles are cleared for it (`CLIENT_VISIBLE` is the loosest).
    pub fn breadth(self) -> usize {
        Role::ALL.iter().filter(|r| clearance(**r, self) != Clearance::No).count()
    }
}

/// A cell of the clearance table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clearance {
    No,
    Yes,
    /// Only through a consent the coachee granted (AI_AGENT).
    ConsentGated,
}

/// POLICY.md section 3, cell by cell. The "only resources the matrix grants"
/// qualifiers are the matrix's business ([`super::matrix`]), not the clearance's.
pub fn clearance(role: Role, tag: VisibilityTag) -> Clearance {
    use Clearance::{ConsentGated, No, Yes};
    use VisibilityTag::*;
    match (role, tag) {
        (Role::Coachee, ClientVisible) => Yes,
        (Role::Coachee, _) => No,
        (Role::Coach, ClientVisible | CoachOnly) => Yes,
        (Role::Coach, _) => No,
        (Role::ProgramAdmin, ClientVisible | AdminAggregate) => Yes,
        (Role::ProgramAdmin, _) => No,
        (Role::Executive, ClientVisible | AdminAggregate) => Yes,
        (Role::Executive, _) => No,
        (Role::AiAgent, ClientVisible | CoachOnly) => ConsentGated,
        (Role::AiAgent, _) => No,
        (Role::SystemAdmin, AdminAggregate | SystemInternal) => Yes,
        (Role::SystemAdmin, _) => No,
    }
}
