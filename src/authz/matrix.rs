//! `matrix.csv` as pure functions: role x resource x action -> grant (scope and gate).
//! Every cell is covered by the unit tests at the bottom, allowed and denied.

use crate::kinds::Role;

/// The matrix rows, in `matrix.csv` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Resource {
    OwnProfile,
    OtherUserProfiles,
    SessionMetadata,
    Transcripts,
    DraftInsights,
    ApprovedInsights,
    EvidencePacks,
    CoachNotes,
    ActionItems,
    Goals,
    AiFeedback,
    Consents,
    CoachAssignments,
    ProgramMetrics,
    AuditLogs,
    AccessNotices,
    BreakGlassRequests,
    SystemConfig,
    AccountSecurityStatus,
    IntegrationTokens,
    /// The tenant rows themselves: a SYSTEM_ADMIN creates them (POLICY.md section 11).
    Tenants,
    /// One-time secrets that set a password: a new user's invitation, or a reset.
    Invitations,
    /// Not a matrix row; POLICY.md section 5 ("visible to the coachee it concerns").
    AiAccessLog,
    /// Not a matrix row; POLICY.md section 5 (SASHA_ACT proposals the coachee confirms).
    AiActionProposals,
}

impl Resource {
    pub const MATRIX_ROWS: [Resource; 22] = [
        Resource::OwnProfile,
        Resource::OtherUserProfiles,
        Resource::SessionMetadata,
        Resource::Transcripts,
        Resource::DraftInsights,
        Resource::ApprovedInsights,
        Resource::EvidencePacks,
        Resource::CoachNotes,
        Resource::ActionItems,
        Resource::Goals,
        Resource::AiFeedback,
        Resource::Consents,
        Resource::CoachAssignments,
        Resource::ProgramMetrics,
        Resource::AuditLogs,
        Resource::AccessNotices,
        Resource::BreakGlassRequests,
        Resource::SystemConfig,
        Resource::AccountSecurityStatus,
        Resource::IntegrationTokens,
        Resource::Tenants,
        Resource::Invitations,
    ];

    /// The row name in `matrix.csv` (also used as the `resource` of audit events).
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Create,
    Read,
    Update,
    Delete,
}

impl Action {
    pub const ALL: [Action; 4] = [Action::Create, Action::Read, Action::Update, Action::Delete];
}

/// Which rows a grant reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Rows about (or owned by) the principal itself.
    Own,
    /// Coachee: its own assigned coaches' `id` and `displayName`, nothing more.
    OwnCoaches,
    /// Coach: rows of coachees with an active assignment to this coach.
    Assigned,
    /// Any row of the principal's tenant.
    Tenant,
    /// Executive: the tenant directory, fields `id`, `role`, `displayName` only.
    TenantDirectory,
    /// AI_AGENT: rows of coachees whose effective AI level opens the resource.
    Consented,
    /// SYSTEM_ADMIN: platform-wide.
    Platform,
}

/// An extra condition on a grant, checked per row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    None,
    /// Coach reads transcripts only with the coachee's TRANSCRIPT_SHARING.
    TranscriptSharing,
    /// Coachee reads L0 evidence always, L1 only once approved.
    ApprovedL1Only,
    /// Coachee may only mark its own action items complete.
    CompleteOnly,
    /// Aggregates over fewer than 5 coachees are suppressed.
    AnonymityFloor,
    /// Executive: no figure below tenant level, no drill-down.
    AnonymityFloorNoDrillDown,
    /// Break-glass: a second, different admin must approve.
    DualApproval,
    /// System admin: only unlocking an account.
    UnlockOnly,
    /// Program admin: only the tenant settings part of the configuration.
    TenantSettingsOnly,
    /// System admin: only the first program admin's invitation, as part of creating a tenant.
    FirstProgramAdminOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub scope: Scope,
    pub gate: Gate,
}

const fn g(scope: Scope, gate: Gate) -> Option<Grant> {
    Some(Grant { scope, gate })
}

/// The matrix. `None` is `-` (deny).
pub fn grant(role: Role, resource: Resource, action: Action) -> Option<Grant> {
    use Action::*;
    use Gate as G;
    use Resource as R;
    use Scope as S;
    match (resource, role) {
        (R::OwnProfile, Role::Coachee | Role::Coach) => g(S::Own, G::None),
        (R::OwnProfile, Role::ProgramAdmin) if action == Read => g(S::Own, G::None),
        (R::OwnProfile, Role::AiAgent) if action == Read => g(S::Own, G::None),

        (R::OtherUserProfiles, Role::Coachee) if action == Read => g(S::OwnCoaches, G::None),
        (R::OtherUserProfiles, Role::Coach) if action == Read => g(S::Assigned, G::None),
        (R::OtherUserProfiles, Role::ProgramAdmin) => g(S::Tenant, G::None),
        (R::OtherUserProfiles, Role::Executive) if action == Read => g(S::TenantDirectory, G::None),
        (R::OtherUserProfiles, Role::AiAgent) if action == Read => g(S::Consented, G::None),

        (R::SessionMetadata, Role::Coachee) if action == Read => g(S::Own, G::None),
        (R::SessionMetadata, Role::Coach) => g(S::Assigned, G::None),
        (R::SessionMetadata, Role::ProgramAdmin) if action == Read => g(S::Tenant, G::None),
        (R::SessionMetadata, Role::AiAgent) if action == Read => g(S::Consented, G::None),

        (R::Transcripts, Role::Coach) if action == Read => g(S::Assigned, G::TranscriptSharing),
        (R::Transcripts, Role::AiAgent) if action == Read => g(S::Consented, G::None),

        (R::DraftInsights, Role::Coach) => g(S::Assigned, G::None),
        (R::DraftInsights, Role::AiAgent) if action == Create => g(S::Consented, G::None),

        (R::ApprovedInsights, Role::Coachee) if action == Read => g(S::Own, G::None),
        (R::ApprovedInsights, Role::Coach) if action == Read => g(S::Assigned, G::None),
        (R::ApprovedInsights, Role::AiAgent) if action == Read => g(S::Consented, G::None),

        (R::EvidencePacks, Role::Coachee) if action == Read => g(S::Own, G::ApprovedL1Only),
        (R::EvidencePacks, Role::Coach) => g(S::Assigned, G::None),
        (R::EvidencePacks, Role::AiAgent) if action == Create => g(S::Consented, G::None),

        (R::CoachNotes, Role::Coach) => g(S::Own, G::None),
        (R::CoachNotes, Role::AiAgent) if action == Read => g(S::Consented, G::None),

        (R::ActionItems, Role::Coachee) if action == Read => g(S::Own, G::None),
        (R::ActionItems, Role::Coachee) if action == Update => g(S::Own, G::CompleteOnly),
        (R::ActionItems, Role::Coach) => g(S::Assigned, G::None),
        (R::ActionItems, Role::AiAgent) if action == Read => g(S::Consented, G::None),

        (R::Goals, Role::Coachee) if action == Read => g(S::Own, G::None),
        (R::Goals, Role::Coach) => g(S::Assigned, G::None),
        (R::Goals, Role::AiAgent) if action == Read => g(S::Consented, G::None),

        (R::AiFeedback, Role::Coachee) => g(S::Own, G::None),
        (R::AiFeedback, Role::Coach) if action == Read => g(S::Assigned, G::None),
        (R::AiFeedback, Role::AiAgent) if action == Read => g(S::Consented, G::None),

        (R::Consents, Role::Coachee) => g(S::Own, G::None),
        (R::Consents, Role::Coach) if action == Read => g(S::Assigned, G::None),
        // "R(own grants)": the consents that concern the AI, no consent needed to read them.
        (R::Consents, Role::AiAgent) if action == Read => g(S::Tenant, G::None),

        (R::CoachAssignments, Role::Coachee | Role::Coach) if action == Read => g(S::Own, G::None),
        (R::CoachAssignments, Role::ProgramAdmin) => g(S::Tenant, G::None),

        (R::ProgramMetrics, Role::ProgramAdmin) if action == Read => g(S::Tenant, G::AnonymityFloor),
        (R::ProgramMetrics, Role::Executive) if action == Read => g(S::Tenant, G::AnonymityFloorNoDrillDown),

        (R::AuditLogs, Role::ProgramAdmin) if action == Read => g(S::Tenant, G::None),
        (R::AuditLogs, Role::SystemAdmin) if action == Read => g(S::Platform, G::None),

        (R::AccessNotices, Role::Coachee | Role::Coach) if action == Read => g(S::Own, G::None),

        (R::BreakGlassRequests, Role::ProgramAdmin) => g(S::Tenant, G::DualApproval),
        (R::BreakGlassRequests, Role::SystemAdmin) if action == Read => g(S::Platform, G::None),

        (R::SystemConfig, Role::ProgramAdmin) if matches!(action, Read | Update) => g(S::Tenant, G::TenantSettingsOnly),
        (R::SystemConfig, Role::SystemAdmin) => g(S::Platform, G::None),

        (R::AccountSecurityStatus, Role::SystemAdmin) if matches!(action, Read | Update) => {
            g(S::Platform, G::UnlockOnly)
        }

        (R::IntegrationTokens, Role::Coachee | Role::Coach) => g(S::Own, G::None),

        (R::Tenants, Role::ProgramAdmin) if action == Read => g(S::Own, G::None),
        (R::Tenants, Role::SystemAdmin) if action == Create => g(S::Platform, G::None),

        (R::Invitations, Role::ProgramAdmin) if action == Create => g(S::Tenant, G::None),
        (R::Invitations, Role::SystemAdmin) if action == Create => g(S::Platform, G::FirstProgramAdminOnly),

        // Extensions of section 5 (no matrix row): the coachee reads its own AI access log and
        // proposals (and confirms them); the AI creates proposals.
        (R::AiAccessLog, Role::Coachee) if action == Read => g(S::Own, G::None),
        (R::AiActionProposals, Role::Coachee) if matches!(action, Read | Update) => g(S::Own, G::None),
        (R::AiActionProposals, Role::AiAgent) if action == Create => g(S::Consented, G::None),

        _ => None,
    }
}

pub fn allows(role: Role, resource: Resource, action: Action) -> bool {
    grant(role, resource, action).is_some()
}

/// The matrix cell as written in `matrix.csv` reduced to its letters, e.g. "CRUD", "R", "C", "" for `-`.
pub fn letters(role: Role, resource: Resource) -> String {
    let mut s = String::new();
    for (a, c) in [(Action::Create, 'C'), (Action::Read, 'R'), (Action::Update, 'U'), (Action::Delete, 'D')] {
        if allows(role, resource, a) {
            s.push(c);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `matrix.csv` as vendored from the spec (a test keeps the copy equal to the spec):
    /// the test below checks every cell of the production table against it.
    const MATRIX_CSV: &str = include_str!("../../docs/spec/matrix.csv");

    const ROLES_IN_CSV_ORDER: [Role; 6] =
        [Role::Coachee, Role::Coach, Role::ProgramAdmin, Role::Executive, Role::AiAgent, Role::SystemAdmin];

    /// Reduces a CSV cell to the actions it grants: the letters before any scope.
    /// "+complete" is an update limited to completion.
    fn csv_letters(cell: &str) -> String {
        if cell == "-" {
            return String::new();
        }
        let head: String = cell.chars().take_while(|c| c.is_ascii_uppercase() || *c == '/').collect();
        let mut letters: String = head.chars().filter(|c| c.is_ascii_uppercase()).collect();
        if cell.contains("+complete") {
            letters.push('U');
        }
        let mut sorted = String::new();
        for c in ['C', 'R', 'U', 'D'] {
            if letters.contains(c) {
                sorted.push(c);
            }
        }
        sorted
    }

    #[test]
    fn every_matrix_cell_matches_matrix_csv() {
        let mut lines = MATRIX_CSV.lines();
        lines.next();
        let mut rows = 0;
        for (line, resource) in lines.zip(Resource::MATRIX_ROWS) {
            let cells = split_csv(line);
            assert_eq!(cells[0], resource.as_str());
            for (i, role) in ROLES_IN_CSV_ORDER.iter().enumerate() {
                assert_eq!(
                    letters(*role, resource),
                    csv_letters(&cells[i + 1]),
                    "{} x {:?}: csv cell {:?}",
                    resource.as_str(),
                    role,
                    cells[i + 1]
                );
            }
            rows += 1;
        }
        assert_eq!(rows, Resource::MATRIX_ROWS.len());
    }

    #[test]
    fn consent_gated_cells_use_the_consented_scope() {
        let mut lines = MATRIX_CSV.lines();
        lines.next();
        for (line, resource) in lines.zip(Resource::MATRIX_ROWS) {
            let cells = split_csv(line);
            let ai_cell = &cells[5];
            for action in Action::ALL {
                if let Some(grant) = grant(Role::AiAgent, resource, action)
                    && ai_cell.ends_with('*')
                    && resource != Resource::OwnProfile
                {
                    assert_eq!(grant.scope, Scope::Consented, "{}", resource.as_str());
                }
            }
        }
    }

    #[test]
    fn scopes_follow_the_csv_parentheses() {
        assert_eq!(grant(Role::Coach, Resource::SessionMetadata, Action::Read).map(|g| g.scope), Some(Scope::Assigned));
        assert_eq!(grant(Role::Coachee, Resource::Goals, Action::Read).map(|g| g.scope), Some(Scope::Own));
        assert_eq!(grant(Role::Coach, Resource::CoachNotes, Action::Read).map(|g| g.scope), Some(Scope::Own));
        assert_eq!(
            grant(Role::Coachee, Resource::OtherUserProfiles, Action::Read).map(|g| g.scope),
            Some(Scope::OwnCoaches)
        );
        assert_eq!(
            grant(Role::Executive, Resource::OtherUserProfiles, Action::Read).map(|g| g.scope),
            Some(Scope::TenantDirectory)
        );
        assert_eq!(grant(Role::SystemAdmin, Resource::AuditLogs, Action::Read).map(|g| g.scope), Some(Scope::Platform));
        assert_eq!(
            grant(Role::Coach, Resource::Transcripts, Action::Read).map(|g| g.gate),
            Some(Gate::TranscriptSharing)
        );
        assert_eq!(
            grant(Role::Coachee, Resource::EvidencePacks, Action::Read).map(|g| g.gate),
            Some(Gate::ApprovedL1Only)
        );
        assert_eq!(
            grant(Role::Coachee, Resource::ActionItems, Action::Update).map(|g| g.gate),
            Some(Gate::CompleteOnly)
        );
        assert_eq!(
            grant(Role::Executive, Resource::ProgramMetrics, Action::Read).map(|g| g.gate),
            Some(Gate::AnonymityFloorNoDrillDown)
        );
        assert_eq!(
            grant(Role::ProgramAdmin, Resource::BreakGlassRequests, Action::Create).map(|g| g.gate),
            Some(Gate::DualApproval)
        );
    }

    fn split_csv(line: &str) -> Vec<String> {
        // Cells hold no quotes or commas except inside parentheses.
        let mut cells = Vec::new();
        let mut depth = 0;
        let mut cur = String::new();
        for c in line.chars() {
            match c {
                '(' => {
                    depth += 1;
                    cur.push(c)
                }
                ')' => {
                    depth -= 1;
                    cur.push(c)
                }
                ',' if depth == 0 => cells.push(std::mem::take(&mut cur)),
                _ => cur.push(c),
            }
        }
        cells.push(cur);
        cells
    }
}
