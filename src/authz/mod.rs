//! Authorization: the clearance table, the matrix, the row policy and the predicates
//! derived from them. Everything here is a pure function of its arguments: no I/O, no
//! context. Who may read `CoachNote.body`, on which rows, is answered by its declaration
//! (tag and resource, `graphql/coaching`) and by [`rows`].

pub mod matrix;
pub mod rows;
pub mod tags;

pub use matrix::{Action, Gate, Grant, Resource, Scope};
pub use rows::{ContentTable, Reach, Refusal, RowFacts};
pub use tags::{Clearance, VisibilityTag};

use crate::kinds::Role;

/// What a field belongs to, besides its tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// One matrix resource.
    Resource(Resource),
    /// A `User` profile field: the caller's own profile or another user's, with the
    /// field limits of the scoped grants (own coaches: id+displayName; directory:
    /// id+role+displayName).
    Profile,
}

/// Fields an `OtherUserProfiles` grant of this scope may show, `None` meaning all.
pub fn profile_fields(scope: Scope) -> Option<&'static [&'static str]> {
    match scope {
        Scope::OwnCoaches => Some(&["id", "displayName"]),
        Scope::TenantDirectory => Some(&["id", "role", "displayName"]),
        _ => None,
    }
}

/// May `role` ever read the field `field` tagged `tag` belonging to `access`?
/// This decides whether the field exists in the role's schema at all.
pub fn field_in_schema(role: Role, tag: VisibilityTag, access: Access, field: &str) -> bool {
    if tags::clearance(role, tag) == Clearance::No {
        return false;
    }
    match access {
        // A write-only grant (the AI creating drafts and evidence) shows the id of what was
        // written, so a mutation's payload can name it; nothing else of the row.
        Access::Resource(resource) => {
            matrix::allows(role, resource, Action::Read)
                || (field == "id" && matrix::allows(role, resource, Action::Create))
        }
        Access::Profile => {
            let own = matrix::allows(role, Resource::OwnProfile, Action::Read);
            let other = matrix::grant(role, Resource::OtherUserProfiles, Action::Read)
                .map(|g| profile_fields(g.scope).is_none_or(|fields| fields.contains(&field)))
                .unwrap_or(false);
            own || other
        }
    }
}

/// May `role` call a root field that needs `action` on `resource`?
pub fn may(role: Role, resource: Resource, action: Action) -> bool {
    matrix::allows(role, resource, action)
}

/// POLICY.md section 6: what an active break-glass grant opens to the program admin who holds
/// it, for the one coachee it names, read-only: that coachee's individual coaching data.
pub const BREAK_GLASS_RESOURCES: [Resource; 9] = [
    Resource::SessionMetadata,
    Resource::Transcripts,
    Resource::DraftInsights,
    Resource::ApprovedInsights,
    Resource::EvidencePacks,
    Resource::CoachNotes,
    Resource::ActionItems,
    Resource::Goals,
    Resource::AiFeedback,
];

pub fn break_glass_opens(resource: Resource) -> bool {
    BREAK_GLASS_RESOURCES.contains(&resource)
}

/// Does the field exist in the schema of a PROGRAM_ADMIN holding an active break-glass grant?
/// Its own schema, plus the CLIENT_VISIBLE and COACH_ONLY fields of [`BREAK_GLASS_RESOURCES`].
/// Never a SYSTEM_INTERNAL field, nothing of any other resource.
pub fn field_in_break_glass_schema(tag: VisibilityTag, access: Access, field: &str) -> bool {
    let opened = matches!(tag, VisibilityTag::ClientVisible | VisibilityTag::CoachOnly)
        && matches!(access, Access::Resource(r) if break_glass_opens(r));
    opened || field_in_schema(Role::ProgramAdmin, tag, access, field)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executive_sees_only_directory_fields_of_users() {
        let f = |name| field_in_schema(Role::Executive, VisibilityTag::ClientVisible, Access::Profile, name);
        assert!(f("id") && f("role") && f("displayName"));
        assert!(!f("email"));
    }

    #[test]
    fn coachee_sees_its_own_profile_fields() {
        assert!(field_in_schema(Role::Coachee, VisibilityTag::ClientVisible, Access::Profile, "email"));
    }

    #[test]
    fn system_admin_sees_no_profile_fields() {
        for name in ["id", "role", "displayName", "email"] {
            assert!(!field_in_schema(Role::SystemAdmin, VisibilityTag::ClientVisible, Access::Profile, name));
        }
    }

    #[test]
    fn coach_only_fields_never_reach_coachee_admin_or_executive() {
        for role in [Role::Coachee, Role::ProgramAdmin, Role::Executive, Role::SystemAdmin] {
            for resource in Resource::MATRIX_ROWS {
                assert!(!field_in_schema(role, VisibilityTag::CoachOnly, Access::Resource(resource), "x"));
            }
        }
    }

    #[test]
    fn a_write_only_grant_shows_the_id_and_nothing_else() {
        let ev = Access::Resource(Resource::EvidencePacks);
        assert!(field_in_schema(Role::AiAgent, VisibilityTag::ClientVisible, ev, "id"));
        assert!(!field_in_schema(Role::AiAgent, VisibilityTag::ClientVisible, ev, "content"));
        assert!(!field_in_schema(
            Role::Coachee,
            VisibilityTag::ClientVisible,
            Access::Resource(Resource::DraftInsights),
            "id"
        ));
    }

    #[test]
    fn break_glass_adds_coaching_content_to_the_admin_schema_and_nothing_else() {
        use VisibilityTag::*;
        let r = |resource| Access::Resource(resource);
        // Opened: CLIENT_VISIBLE and COACH_ONLY coaching content.
        for resource in BREAK_GLASS_RESOURCES {
            assert!(
                !field_in_schema(Role::ProgramAdmin, CoachOnly, r(resource), "x"),
                "{resource:?} is closed normally"
            );
            assert!(field_in_break_glass_schema(CoachOnly, r(resource), "x"), "{resource:?}");
            assert!(field_in_break_glass_schema(ClientVisible, r(resource), "x"), "{resource:?}");
            assert!(!field_in_break_glass_schema(SystemInternal, r(resource), "x"), "{resource:?}");
        }
        // Everything the admin sees anyway stays; nothing else is added.
        for resource in Resource::MATRIX_ROWS.into_iter().chain([Resource::AiAccessLog, Resource::AiActionProposals]) {
            for tag in VisibilityTag::ALL {
                let normal = field_in_schema(Role::ProgramAdmin, tag, r(resource), "x");
                let glass = field_in_break_glass_schema(tag, r(resource), "x");
                if normal {
                    assert!(glass, "{resource:?} {tag:?} stays");
                } else if !break_glass_opens(resource) || !matches!(tag, ClientVisible | CoachOnly) {
                    assert!(!glass, "{resource:?} {tag:?} must not open");
                }
            }
        }
        assert!(!field_in_break_glass_schema(SystemInternal, r(Resource::AccountSecurityStatus), "active"));
        assert!(!field_in_break_glass_schema(SystemInternal, r(Resource::AuditLogs), "ipAddress"));
        assert!(!field_in_break_glass_schema(ClientVisible, r(Resource::Consents), "kind"));
        assert!(!field_in_break_glass_schema(ClientVisible, r(Resource::AccessNotices), "reason"));
        assert!(field_in_break_glass_schema(AdminAggregate, r(Resource::AuditLogs), "action"));
        assert!(field_in_break_glass_schema(ClientVisible, Access::Profile, "email"));
    }

    #[test]
    fn system_internal_is_system_admin_only() {
        for role in Role::ALL {
            let visible = field_in_schema(
                role,
                VisibilityTag::SystemInternal,
                Access::Resource(Resource::AccountSecurityStatus),
                "x",
            );
            assert_eq!(visible, role == Role::SystemAdmin);
        }
    }

    #[test]
    fn program_metrics_reach_admin_and_executive_only() {
        for role in Role::ALL {
            let visible =
                field_in_schema(role, VisibilityTag::AdminAggregate, Access::Resource(Resource::ProgramMetrics), "x");
            assert_eq!(visible, matches!(role, Role::ProgramAdmin | Role::Executive), "{role:?}");
        }
    }
}
