//! The row policy: which rows of coaching content a principal may read. It is declared once,
//! here, next to the matrix, and everything else derives from it:
//! - [`Reach`]: the caller's relationship facts (assignments, consents, break-glass grants),
//!   built by [`Reach::from_facts`] from rows the domain loads once per request;
//! - [`Reach::read`]: the row check, row facts -> allowed or the refusal kind (what a
//!   resolver asks before it shows a row, and what a per-row `null` is decided by);
//! - [`Reach::list_filter`]: the same rule as a SQL condition, for list queries;
//! - PostgreSQL's row-level security (migration `m20261201_000007_row_policy`) states the
//!   same rule for the database; the differential test (`tests/suite/walls_agree.rs`) proves
//!   that the three admit exactly the same rows.
//!
//! Everything here is a pure function of its arguments.

use std::collections::{HashMap, HashSet};

use sea_orm::sea_query::{Alias, Condition, Expr, ExprTrait};
use uuid::Uuid;

use super::matrix::{self, Action, Gate, Resource, Scope};
use crate::kinds::{AiLevel, ConsentKind, Role};

/// Why a row is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No relationship (or row condition) grants it.
    Forbidden,
    /// The relationship exists; a consent gate is closed.
    ConsentRequired,
}

/// The relationship facts of one request's principal. Loaded once per request and never
/// cached across requests, so a withdrawn consent or an ended assignment counts from the
/// next request.
#[derive(Debug, Clone, Default)]
pub struct Reach {
    pub role: Option<Role>,
    pub me: Option<Uuid>,
    /// COACH: coachees with an active assignment to me, with my AI level for each.
    pub assigned: HashMap<Uuid, AiLevel>,
    /// COACH: assigned coachees who granted TRANSCRIPT_SHARING.
    pub transcript_sharing: HashSet<Uuid>,
    /// COACHEE: my active coaches.
    pub my_coaches: HashSet<Uuid>,
    /// AI_AGENT: per coachee with an active assignment, the effective AI level and each
    /// coach's own level.
    pub ai: HashMap<Uuid, AiReach>,
    /// PROGRAM_ADMIN: the coachees of my active break-glass grants -> the grant (POLICY.md
    /// section 6). Opens reads of [`super::BREAK_GLASS_RESOURCES`] about them.
    pub break_glass: HashMap<Uuid, Uuid>,
}

#[derive(Debug, Clone, Default)]
pub struct AiReach {
    pub effective: Option<AiLevel>,
    pub coach_levels: HashMap<Uuid, AiLevel>,
}

/// An active coach assignment, as the facts see it.
#[derive(Debug, Clone, Copy)]
pub struct AssignmentFact {
    pub coach: Uuid,
    pub coachee: Uuid,
    /// The coach's per-relationship AI level.
    pub ai_level: AiLevel,
}

/// The level a coachee's consents grant the AI: each SASHA kind unlocks its level and the
/// ones below it (POLICY.md section 5).
pub fn consented_level(granted: &HashSet<ConsentKind>) -> AiLevel {
    if granted.contains(&ConsentKind::SashaAct) {
        AiLevel::Act
    } else if granted.contains(&ConsentKind::SashaAnalyze) {
        AiLevel::Analyze
    } else if granted.contains(&ConsentKind::SashaObserve) {
        AiLevel::Observe
    } else {
        AiLevel::Off
    }
}

/// The lower of the coachee's consent and the coach's per-relationship level. With several
/// active coaches, the most restrictive relationship decides.
pub fn effective_level(consented: AiLevel, coach_levels: impl IntoIterator<Item = AiLevel>) -> AiLevel {
    match coach_levels.into_iter().min() {
        Some(coach) => Ord::min(consented, coach),
        None => AiLevel::Off,
    }
}

/// The AI level a resource needs (POLICY.md section 5).
pub fn ai_level_needed(resource: Resource) -> Option<AiLevel> {
    match resource {
        Resource::SessionMetadata | Resource::Transcripts | Resource::OtherUserProfiles => Some(AiLevel::Observe),
        Resource::ApprovedInsights
        | Resource::Goals
        | Resource::ActionItems
        | Resource::AiFeedback
        | Resource::CoachNotes
        | Resource::DraftInsights
        | Resource::EvidencePacks => Some(AiLevel::Analyze),
        Resource::AiActionProposals => Some(AiLevel::Act),
        _ => None,
    }
}

/// The tables that hold coaching content or relationship facts about one coachee: every
/// row has a `coachee_id`, and the row policy decides who reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentTable {
    CoachingSessions,
    SessionSummaries,
    SessionPrivateNotes,
    Transcripts,
    Insights,
    EvidencePacks,
    ActionItems,
    Goals,
    CoachNotes,
    AiFeedback,
    AiActionProposals,
    Consents,
    ConsentHistory,
    AiAccessLog,
}

impl ContentTable {
    pub const ALL: [ContentTable; 14] = [
        ContentTable::CoachingSessions,
        ContentTable::SessionSummaries,
        ContentTable::SessionPrivateNotes,
        ContentTable::Transcripts,
        ContentTable::Insights,
        ContentTable::EvidencePacks,
        ContentTable::ActionItems,
        ContentTable::Goals,
        ContentTable::CoachNotes,
        ContentTable::AiFeedback,
        ContentTable::AiActionProposals,
        ContentTable::Consents,
        ContentTable::ConsentHistory,
        ContentTable::AiAccessLog,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ContentTable::CoachingSessions => "coaching_sessions",
            ContentTable::SessionSummaries => "session_summaries",
            ContentTable::SessionPrivateNotes => "session_private_notes",
            ContentTable::Transcripts => "transcripts",
            ContentTable::Insights => "insights",
            ContentTable::EvidencePacks => "evidence_packs",
            ContentTable::ActionItems => "action_items",
            ContentTable::Goals => "goals",
            ContentTable::CoachNotes => "coach_notes",
            ContentTable::AiFeedback => "ai_feedback",
            ContentTable::AiActionProposals => "ai_action_proposals",
            ContentTable::Consents => "consents",
            ContentTable::ConsentHistory => "consent_history",
            ContentTable::AiAccessLog => "ai_access_log",
        }
    }

    /// The matrix resource a row of this table belongs to.
    pub fn resource(self, row: &RowFacts) -> Resource {
        match self {
            ContentTable::CoachingSessions => Resource::SessionMetadata,
            ContentTable::SessionSummaries => Resource::ApprovedInsights,
            ContentTable::SessionPrivateNotes | ContentTable::CoachNotes => Resource::CoachNotes,
            ContentTable::Transcripts => Resource::Transcripts,
            ContentTable::Insights => match row.state {
                RowState::Insight { approved: true } => Resource::ApprovedInsights,
                _ => Resource::DraftInsights,
            },
            ContentTable::EvidencePacks => Resource::EvidencePacks,
            ContentTable::ActionItems => Resource::ActionItems,
            ContentTable::Goals => Resource::Goals,
            ContentTable::AiFeedback => Resource::AiFeedback,
            ContentTable::AiActionProposals => Resource::AiActionProposals,
            ContentTable::Consents | ContentTable::ConsentHistory => Resource::Consents,
            ContentTable::AiAccessLog => Resource::AiAccessLog,
        }
    }

    /// The column that names a row's author (the coach whose notes they are), if the rule
    /// looks at one.
    fn author_column(self) -> Option<&'static str> {
        match self {
            ContentTable::CoachNotes | ContentTable::SessionPrivateNotes => Some("coach_id"),
            _ => None,
        }
    }
}

/// A row the row policy admitted to this request's caller. Its field is private: the only
/// ways to get one are [`Reach::admit`] (a row to show) and [`Reach::admit_written`] (the row
/// the caller just wrote, shown as its mutation's payload). The views GraphQL serves hold
/// one, so no resolver can show a content row the policy did not admit.
#[derive(Debug, Clone)]
pub struct Admitted<T>(T);

impl<T> Admitted<T> {
    pub fn row(&self) -> &T {
        &self.0
    }

    /// The admitted row's values, to show.
    pub fn into_row(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Admitted<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// What the row policy looks at in one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowFacts {
    pub coachee: Uuid,
    /// The coach whose notes these are (coach notes, private notes); `None` elsewhere.
    pub author: Option<Uuid>,
    pub state: RowState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowState {
    Plain,
    Insight { approved: bool },
    Evidence { l1: bool, approved: bool },
}

impl RowFacts {
    pub fn about(coachee: Uuid) -> Self {
        Self { coachee, author: None, state: RowState::Plain }
    }

    pub fn authored(coachee: Uuid, author: Uuid) -> Self {
        Self { coachee, author: Some(author), state: RowState::Plain }
    }

    pub fn insight(coachee: Uuid, approved: bool) -> Self {
        Self { coachee, author: None, state: RowState::Insight { approved } }
    }

    pub fn evidence(coachee: Uuid, l1: bool, approved: bool) -> Self {
        Self { coachee, author: None, state: RowState::Evidence { l1, approved } }
    }
}

impl Reach {
    /// Builds the facts of `role`/`me` from the tenant's active assignments, granted consents
    /// and the caller's active break-glass grants (coachee -> grant). Only what concerns the
    /// caller is kept.
    pub fn from_facts(
        role: Role,
        me: Uuid,
        assignments: &[AssignmentFact],
        granted: &[(Uuid, ConsentKind)],
        grants: &[(Uuid, Uuid)],
    ) -> Reach {
        let mut reach = Reach { role: Some(role), me: Some(me), ..Reach::default() };
        match role {
            Role::Coach => {
                reach.assigned =
                    assignments.iter().filter(|a| a.coach == me).map(|a| (a.coachee, a.ai_level)).collect();
                reach.transcript_sharing = granted
                    .iter()
                    .filter(|(c, k)| *k == ConsentKind::TranscriptSharing && reach.assigned.contains_key(c))
                    .map(|(c, _)| *c)
                    .collect();
            }
            Role::Coachee => {
                reach.my_coaches = assignments.iter().filter(|a| a.coachee == me).map(|a| a.coach).collect();
            }
            Role::AiAgent => {
                let mut kinds: HashMap<Uuid, HashSet<ConsentKind>> = HashMap::new();
                for (coachee, kind) in granted {
                    kinds.entry(*coachee).or_default().insert(*kind);
                }
                for a in assignments {
                    reach.ai.entry(a.coachee).or_default().coach_levels.insert(a.coach, a.ai_level);
                }
                let none = HashSet::new();
                for (coachee, r) in reach.ai.iter_mut() {
                    let consented = consented_level(kinds.get(coachee).unwrap_or(&none));
                    let level = effective_level(consented, r.coach_levels.values().copied());
                    r.effective = (level > AiLevel::Off).then_some(level);
                }
            }
            Role::ProgramAdmin => reach.break_glass = grants.iter().copied().collect(),
            Role::Executive | Role::SystemAdmin => {}
        }
        reach
    }

    /// May the principal read `resource` about `coachee`? Relationship and consent only; the
    /// row conditions are [`Reach::read`]'s.
    pub fn coachee(&self, coachee: Uuid, resource: Resource) -> Result<(), Refusal> {
        self.may(coachee, resource, Action::Read)
    }

    /// May the principal do `action` on `resource` about `coachee`? Row conditions beyond
    /// the relationship (authorship, status) are the caller's to check.
    pub fn may(&self, coachee: Uuid, resource: Resource, action: Action) -> Result<(), Refusal> {
        let Some(role) = self.role else { return Err(Refusal::Forbidden) };
        if role == Role::ProgramAdmin
            && action == Action::Read
            && self.break_glass.contains_key(&coachee)
            && super::break_glass_opens(resource)
        {
            return Ok(());
        }
        let Some(grant) = matrix::grant(role, resource, action) else { return Err(Refusal::Forbidden) };
        match grant.scope {
            // A coach's own notes are notes it wrote about its assigned coachees; whose
            // notes they are is a row condition (author).
            Scope::Own if role == Role::Coach && resource == Resource::CoachNotes => {
                self.assigned.contains_key(&coachee).then_some(()).ok_or(Refusal::Forbidden)
            }
            Scope::Own => (Some(coachee) == self.me).then_some(()).ok_or(Refusal::Forbidden),
            Scope::Assigned => {
                if !self.assigned.contains_key(&coachee) {
                    return Err(Refusal::Forbidden);
                }
                if grant.gate == Gate::TranscriptSharing && !self.transcript_sharing.contains(&coachee) {
                    return Err(Refusal::ConsentRequired);
                }
                Ok(())
            }
            Scope::Tenant => Ok(()),
            Scope::Consented => {
                let Some(reach) = self.ai.get(&coachee) else { return Err(Refusal::Forbidden) };
                let needed = ai_level_needed(resource).ok_or(Refusal::Forbidden)?;
                match reach.effective {
                    Some(level) if level >= needed => Ok(()),
                    _ => Err(Refusal::ConsentRequired),
                }
            }
            Scope::OwnCoaches | Scope::TenantDirectory | Scope::Platform => Err(Refusal::Forbidden),
        }
    }

    pub fn allows(&self, coachee: Uuid, resource: Resource) -> bool {
        self.coachee(coachee, resource).is_ok()
    }

    /// The row check: may the principal read this row of `table`? The relationship and
    /// consent rules of its resource, then the row conditions: a coach reads only its own
    /// notes; the AI reads a coach's notes only if that coach's own AI level is ANALYZE or
    /// higher; a coachee reads L1 evidence only once approved. A break-glass grant opens every
    /// row of the coachee's content, read-only.
    pub fn read(&self, table: ContentTable, row: &RowFacts) -> Result<Resource, Refusal> {
        let resource = table.resource(row);
        self.coachee(row.coachee, resource)?;
        if self.break_glass_grant(row.coachee, resource).is_some() {
            return Ok(resource);
        }
        let role = self.role.ok_or(Refusal::Forbidden)?;
        if table.author_column().is_some() {
            match role {
                Role::Coach if row.author != self.me => return Err(Refusal::Forbidden),
                Role::AiAgent if !self.ai_opens_notes_of(row.coachee, row.author) => {
                    return Err(Refusal::ConsentRequired);
                }
                _ => {}
            }
        }
        let gate = matrix::grant(role, resource, Action::Read).map(|g| g.gate);
        if let (Some(Gate::ApprovedL1Only), RowState::Evidence { l1: true, approved: false }) = (gate, row.state) {
            return Err(Refusal::Forbidden);
        }
        Ok(resource)
    }

    /// Could any row of `table` about `coachee` be readable? (Lets a list skip loading.)
    pub fn may_list(&self, table: ContentTable, coachee: Uuid) -> bool {
        match table {
            ContentTable::Insights => {
                self.allows(coachee, Resource::ApprovedInsights) || self.allows(coachee, Resource::DraftInsights)
            }
            other => self.allows(coachee, other.resource(&RowFacts::about(coachee))),
        }
    }

    /// The row, admitted by the row check, or the refusal.
    pub fn admit<T>(&self, table: ContentTable, row: T, facts: fn(&T) -> RowFacts) -> Result<Admitted<T>, Refusal> {
        self.read(table, &facts(&row)).map(|_| Admitted(row))
    }

    /// The row the caller just wrote with `action`, admitted by that write's grant: what a
    /// mutation's payload shows (its schema shows a write-only principal the id alone).
    pub fn admit_written<T>(
        &self,
        table: ContentTable,
        row: T,
        facts: fn(&T) -> RowFacts,
        action: Action,
    ) -> Result<Admitted<T>, Refusal> {
        let f = facts(&row);
        self.may(f.coachee, table.resource(&f), action)?;
        if action != Action::Create && table.author_column().is_some() && self.role == Some(Role::Coach) {
            // A coach writes only its own notes.
            if f.author != self.me {
                return Err(Refusal::Forbidden);
            }
        }
        Ok(Admitted(row))
    }

    /// Whether the row check admits the row.
    pub fn reads(&self, table: ContentTable, row: &RowFacts) -> bool {
        self.read(table, row).is_ok()
    }

    /// AI: the coach who wrote the notes is an active coach of the coachee whose own AI level
    /// is ANALYZE or higher.
    fn ai_opens_notes_of(&self, coachee: Uuid, author: Option<Uuid>) -> bool {
        let level = author.and_then(|a| self.ai.get(&coachee).and_then(|r| r.coach_levels.get(&a)));
        level.is_some_and(|level| *level >= AiLevel::Analyze)
    }

    /// The coachees whose `resource` rows the principal may list; `None` means the whole tenant.
    pub fn coachees_for(&self, resource: Resource) -> Option<HashSet<Uuid>> {
        let mut set = self.own_coachees(resource)?;
        set.extend(self.opened_coachees(resource));
        Some(set)
    }

    /// [`Reach::coachees_for`] by the caller's own grant, without what break-glass adds.
    fn own_coachees(&self, resource: Resource) -> Option<HashSet<Uuid>> {
        let role = self.role?;
        let scope = matrix::grant(role, resource, Action::Read).map(|g| g.scope);
        Some(match scope {
            Some(Scope::Tenant) => return None,
            Some(Scope::Own) if role == Role::Coach && resource == Resource::CoachNotes => {
                self.assigned.keys().copied().collect()
            }
            Some(Scope::Own) => self.me.into_iter().collect(),
            Some(Scope::Assigned) => self.assigned.keys().copied().filter(|c| self.allows(*c, resource)).collect(),
            Some(Scope::Consented) => self.ai.keys().copied().filter(|c| self.allows(*c, resource)).collect(),
            _ => HashSet::new(),
        })
    }

    /// The coachees whose `resource` a break-glass grant opens to the caller.
    fn opened_coachees(&self, resource: Resource) -> Vec<Uuid> {
        if self.role != Some(Role::ProgramAdmin) || !super::break_glass_opens(resource) {
            return Vec::new();
        }
        let mut ids: Vec<Uuid> = self.break_glass.keys().copied().collect();
        ids.sort();
        ids
    }

    /// The row check as a SQL condition over `table`'s columns, for list queries: it admits
    /// exactly the rows [`Reach::read`] admits (the differential test checks both against
    /// each other and against PostgreSQL).
    pub fn list_filter(&self, table: ContentTable) -> Condition {
        self.list_filter_within(table, None)
    }

    /// [`Self::list_filter`] for the rows of `coachees` only, as one list on `coachee_id`:
    /// the rule's coachees intersected with these. A relation keyed by the coachee reads
    /// through this rather than adding a second `coachee_id IN (..)` of its own, because
    /// with two such lists (three, with the RLS policy's) PostgreSQL stops using the
    /// `(tenant_id, coachee_id)` index and scans the table.
    pub fn list_filter_under(&self, table: ContentTable, coachees: &[Uuid]) -> Condition {
        let within: HashSet<Uuid> = coachees.iter().copied().collect();
        self.list_filter_within(table, Some(&within))
    }

    fn list_filter_within(&self, table: ContentTable, within: Option<&HashSet<Uuid>>) -> Condition {
        let col = |name: &'static str| Expr::col(Alias::new(name));
        let inside = |id: &Uuid| within.is_none_or(|w| w.contains(id));
        let coachee_in = |set: Option<HashSet<Uuid>>| -> Condition {
            let set = match (set, within) {
                (None, None) => return Condition::all(),
                (None, Some(within)) => within.clone(),
                (Some(set), _) => set.into_iter().filter(|c| inside(c)).collect(),
            };
            if set.is_empty() {
                return Condition::all().add(Expr::cust("1 = 0"));
            }
            let mut ids: Vec<Uuid> = set.into_iter().collect();
            ids.sort();
            Condition::all().add(col("coachee_id").is_in(ids))
        };
        let Some(role) = self.role else { return Condition::all().add(Expr::cust("1 = 0")) };
        // What a break-glass grant opens, whole rows, besides the caller's own rule.
        let with_opened = |own: Condition, resource: Resource| {
            let opened: Vec<Uuid> = self.opened_coachees(resource).into_iter().filter(|c| inside(c)).collect();
            if opened.is_empty() { own } else { Condition::any().add(own).add(col("coachee_id").is_in(opened)) }
        };
        let own_rule = |resource: Resource| coachee_in(self.own_coachees(resource));
        match table {
            ContentTable::Insights => {
                let approved = with_opened(own_rule(Resource::ApprovedInsights), Resource::ApprovedInsights);
                let drafts = with_opened(own_rule(Resource::DraftInsights), Resource::DraftInsights);
                Condition::any()
                    .add(Condition::all().add(col("status").eq("APPROVED")).add(approved))
                    .add(Condition::all().add(col("status").ne("APPROVED")).add(drafts))
            }
            ContentTable::EvidencePacks => {
                let mut own = own_rule(Resource::EvidencePacks);
                let gate = matrix::grant(role, Resource::EvidencePacks, Action::Read).map(|g| g.gate);
                if gate == Some(Gate::ApprovedL1Only) {
                    own = own.add(Condition::any().add(col("level").eq("L0")).add(col("approved").eq(true)));
                }
                with_opened(own, Resource::EvidencePacks)
            }
            ContentTable::CoachNotes | ContentTable::SessionPrivateNotes => {
                let own = match role {
                    Role::Coach => match self.me {
                        Some(me) => own_rule(Resource::CoachNotes).add(col("coach_id").eq(me)),
                        None => Condition::all().add(Expr::cust("1 = 0")),
                    },
                    Role::AiAgent => {
                        let mut pairs = Condition::any().add(Expr::cust("1 = 0"));
                        let mut coachees: Vec<_> = self.ai.keys().copied().collect();
                        coachees.sort();
                        for coachee in
                            coachees.into_iter().filter(|c| inside(c) && self.allows(*c, Resource::CoachNotes))
                        {
                            let mut coaches: Vec<Uuid> = self.ai[&coachee]
                                .coach_levels
                                .iter()
                                .filter(|(_, level)| **level >= AiLevel::Analyze)
                                .map(|(coach, _)| *coach)
                                .collect();
                            coaches.sort();
                            pairs = pairs.add(
                                Condition::all().add(col("coachee_id").eq(coachee)).add(col("coach_id").is_in(coaches)),
                            );
                        }
                        pairs
                    }
                    _ => own_rule(Resource::CoachNotes),
                };
                with_opened(own, Resource::CoachNotes)
            }
            other => {
                let resource = other.resource(&RowFacts::about(Uuid::nil()));
                with_opened(own_rule(resource), resource)
            }
        }
    }

    /// How the caller sees the profile of `user`, reached by id (`user(id)`): the scope of
    /// the grant it is reached through, which decides the fields it shows
    /// ([`super::profile_fields`]), or the refusal.
    pub fn profile_scope(&self, user: Uuid) -> Result<Scope, Refusal> {
        let role = self.role.ok_or(Refusal::Forbidden)?;
        if Some(user) == self.me && matrix::allows(role, Resource::OwnProfile, Action::Read) {
            return Ok(Scope::Own);
        }
        let scope = matrix::grant(role, Resource::OtherUserProfiles, Action::Read).map(|g| g.scope);
        match scope {
            Some(Scope::OwnCoaches) if self.my_coaches.contains(&user) => Ok(Scope::OwnCoaches),
            Some(Scope::Assigned) if self.assigned.contains_key(&user) => Ok(Scope::Assigned),
            Some(scope @ (Scope::Tenant | Scope::TenantDirectory)) => Ok(scope),
            Some(Scope::Consented) => self.coachee(user, Resource::OtherUserProfiles).map(|()| Scope::Consented),
            _ => Err(Refusal::Forbidden),
        }
    }

    /// How the caller sees a person named by a session it may read (its coach or coachee):
    /// the session's coachee as the caller's relationship to it allows; anyone else (the
    /// coach, for a coachee or the AI; a colleague, for a coach) by id and display name only.
    pub fn session_person_scope(&self, user: Uuid, session_coachee: Uuid) -> Scope {
        if Some(user) == self.me {
            return Scope::Own;
        }
        let scope = self.role.and_then(|role| matrix::grant(role, Resource::OtherUserProfiles, Action::Read));
        match scope.map(|g| g.scope) {
            Some(scope @ (Scope::Tenant | Scope::TenantDirectory)) => scope,
            Some(scope @ (Scope::Assigned | Scope::Consented)) if user == session_coachee => scope,
            _ => Scope::OwnCoaches,
        }
    }

    /// `coachees`: the scope its rows are shown with, and the coachees it lists (`None`: every
    /// coachee of the tenant). Only roles whose profile grant reaches coachees as such.
    pub fn coachee_list(&self) -> Result<(Scope, Option<HashSet<Uuid>>), Refusal> {
        let role = self.role.ok_or(Refusal::Forbidden)?;
        match matrix::grant(role, Resource::OtherUserProfiles, Action::Read).map(|g| g.scope) {
            Some(Scope::Assigned) => Ok((Scope::Assigned, Some(self.assigned.keys().copied().collect()))),
            Some(Scope::Tenant) => Ok((Scope::Tenant, None)),
            _ => Err(Refusal::Forbidden),
        }
    }

    /// `users`: the scope of a tenant directory listing (program admins all fields,
    /// executives the directory fields).
    pub fn directory_scope(&self) -> Result<Scope, Refusal> {
        let role = self.role.ok_or(Refusal::Forbidden)?;
        match matrix::grant(role, Resource::OtherUserProfiles, Action::Read).map(|g| g.scope) {
            Some(scope @ (Scope::Tenant | Scope::TenantDirectory)) => Ok(scope),
            _ => Err(Refusal::Forbidden),
        }
    }

    /// The break-glass grant a read of `resource` about `coachee` happens under: `Some` only
    /// for a program admin holding an active grant for that coachee, and only for what the
    /// grant opens beyond the admin's own rights (the reads audited with the grant id).
    pub fn break_glass_grant(&self, coachee: Uuid, resource: Resource) -> Option<Uuid> {
        let opened = self.role == Some(Role::ProgramAdmin)
            && super::break_glass_opens(resource)
            && !matrix::allows(Role::ProgramAdmin, resource, Action::Read);
        if opened { self.break_glass.get(&coachee).copied() } else { None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consent_levels_include_the_ones_below() {
        let set = |k: &[ConsentKind]| k.iter().copied().collect::<HashSet<_>>();
        assert_eq!(consented_level(&set(&[])), AiLevel::Off);
        assert_eq!(consented_level(&set(&[ConsentKind::TranscriptSharing])), AiLevel::Off);
        assert_eq!(consented_level(&set(&[ConsentKind::SashaObserve])), AiLevel::Observe);
        assert_eq!(consented_level(&set(&[ConsentKind::SashaAnalyze])), AiLevel::Analyze);
        assert_eq!(consented_level(&set(&[ConsentKind::SashaAct, ConsentKind::SashaObserve])), AiLevel::Act);
    }

    #[test]
    fn effective_level_is_the_lower_of_consent_and_coach_setting() {
        assert_eq!(effective_level(AiLevel::Act, [AiLevel::Observe]), AiLevel::Observe);
        assert_eq!(effective_level(AiLevel::Observe, [AiLevel::Act]), AiLevel::Observe);
        assert_eq!(effective_level(AiLevel::Analyze, [AiLevel::Act, AiLevel::Off]), AiLevel::Off);
        assert_eq!(effective_level(AiLevel::Act, []), AiLevel::Off, "no assignment, no AI");
    }

    fn coach_reach() -> (Reach, Uuid, Uuid) {
        let (mine, shared, other) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let mut r = Reach { role: Some(Role::Coach), me: Some(Uuid::new_v4()), ..Reach::default() };
        r.assigned.insert(mine, AiLevel::Off);
        r.assigned.insert(shared, AiLevel::Off);
        r.transcript_sharing.insert(shared);
        (r, mine, other)
    }

    #[test]
    fn coach_reads_assigned_coachees_only_and_transcripts_with_sharing() {
        let (r, mine, other) = coach_reach();
        assert_eq!(r.coachee(mine, Resource::Goals), Ok(()));
        assert_eq!(r.coachee(other, Resource::Goals), Err(Refusal::Forbidden));
        assert_eq!(r.coachee(mine, Resource::Transcripts), Err(Refusal::ConsentRequired));
        let shared = *r.transcript_sharing.iter().next().expect("one");
        assert_eq!(r.coachee(shared, Resource::Transcripts), Ok(()));
        assert_eq!(r.coachees_for(Resource::Transcripts).map(|s| s.len()), Some(1));
        assert_eq!(r.coachee(mine, Resource::CoachNotes), Ok(()), "notes about an assigned coachee");
        assert_eq!(r.coachee(other, Resource::CoachNotes), Err(Refusal::Forbidden));
    }

    #[test]
    fn coach_reads_only_its_own_notes_about_assigned_coachees() {
        let (r, mine, other) = coach_reach();
        let me = r.me.expect("me");
        let colleague = Uuid::new_v4();
        for table in [ContentTable::CoachNotes, ContentTable::SessionPrivateNotes] {
            assert_eq!(r.read(table, &RowFacts::authored(mine, me)), Ok(Resource::CoachNotes));
            assert_eq!(r.read(table, &RowFacts::authored(mine, colleague)), Err(Refusal::Forbidden));
            assert_eq!(r.read(table, &RowFacts::authored(other, me)), Err(Refusal::Forbidden));
        }
    }

    #[test]
    fn ai_reads_follow_the_effective_level() {
        let c = Uuid::new_v4();
        let mut r = Reach { role: Some(Role::AiAgent), me: Some(Uuid::new_v4()), ..Reach::default() };
        r.ai.insert(c, AiReach { effective: Some(AiLevel::Observe), coach_levels: HashMap::new() });
        assert_eq!(r.coachee(c, Resource::SessionMetadata), Ok(()));
        assert_eq!(r.coachee(c, Resource::Transcripts), Ok(()));
        assert_eq!(r.coachee(c, Resource::Goals), Err(Refusal::ConsentRequired));
        assert_eq!(r.coachee(Uuid::new_v4(), Resource::SessionMetadata), Err(Refusal::Forbidden));
        // Evidence packs and drafts are create-only for the AI: never readable.
        assert_eq!(r.coachee(c, Resource::EvidencePacks), Err(Refusal::Forbidden));
        assert_eq!(r.read(ContentTable::Insights, &RowFacts::insight(c, false)), Err(Refusal::Forbidden));
        assert_eq!(
            r.read(ContentTable::CoachNotes, &RowFacts::authored(c, Uuid::new_v4())),
            Err(Refusal::ConsentRequired)
        );
    }

    #[test]
    fn ai_reads_notes_only_of_coaches_at_analyze_or_higher() {
        let (coachee, analyst, observer) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let assignments = [
            AssignmentFact { coach: analyst, coachee, ai_level: AiLevel::Analyze },
            AssignmentFact { coach: observer, coachee, ai_level: AiLevel::Act },
        ];
        let granted = [(coachee, ConsentKind::SashaAct)];
        let r = Reach::from_facts(Role::AiAgent, Uuid::new_v4(), &assignments, &granted, &[]);
        assert_eq!(r.ai[&coachee].effective, Some(AiLevel::Analyze));
        assert!(r.reads(ContentTable::CoachNotes, &RowFacts::authored(coachee, analyst)));
        assert!(r.reads(ContentTable::SessionPrivateNotes, &RowFacts::authored(coachee, observer)));
        assert_eq!(
            r.read(ContentTable::CoachNotes, &RowFacts::authored(coachee, Uuid::new_v4())),
            Err(Refusal::ConsentRequired),
            "a coach no longer assigned"
        );
    }

    #[test]
    fn coachee_reads_l1_evidence_only_once_approved_and_approved_insights_only() {
        let me = Uuid::new_v4();
        let r = Reach::from_facts(Role::Coachee, me, &[], &[], &[]);
        assert!(r.reads(ContentTable::EvidencePacks, &RowFacts::evidence(me, false, false)));
        assert!(r.reads(ContentTable::EvidencePacks, &RowFacts::evidence(me, true, true)));
        assert_eq!(r.read(ContentTable::EvidencePacks, &RowFacts::evidence(me, true, false)), Err(Refusal::Forbidden));
        assert!(r.reads(ContentTable::Insights, &RowFacts::insight(me, true)));
        assert!(!r.reads(ContentTable::Insights, &RowFacts::insight(me, false)));
        assert!(r.reads(ContentTable::SessionSummaries, &RowFacts::about(me)));
        assert!(!r.reads(ContentTable::SessionPrivateNotes, &RowFacts::authored(me, Uuid::new_v4())));
        assert!(!r.reads(ContentTable::Transcripts, &RowFacts::about(me)));
    }

    #[test]
    fn break_glass_opens_one_coachees_content_to_its_admin_read_only() {
        let (coachee, other, grant) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let mut admin = Reach { role: Some(Role::ProgramAdmin), me: Some(Uuid::new_v4()), ..Reach::default() };
        assert_eq!(admin.coachee(coachee, Resource::Goals), Err(Refusal::Forbidden), "no grant, no content");
        admin.break_glass.insert(coachee, grant);
        for resource in crate::authz::BREAK_GLASS_RESOURCES {
            assert_eq!(admin.coachee(coachee, resource), Ok(()), "{resource:?}");
        }
        assert!(admin.reads(ContentTable::CoachNotes, &RowFacts::authored(coachee, Uuid::new_v4())));
        assert!(admin.reads(ContentTable::EvidencePacks, &RowFacts::evidence(coachee, true, false)));
        assert!(admin.reads(ContentTable::Insights, &RowFacts::insight(coachee, false)));
        assert!(!admin.reads(ContentTable::Consents, &RowFacts::about(coachee)), "not coaching content");
        assert_eq!(admin.coachee(other, Resource::Goals), Err(Refusal::Forbidden), "another coachee");
        assert_eq!(admin.coachee(coachee, Resource::Consents), Err(Refusal::Forbidden), "not coaching content");
        assert_eq!(admin.may(coachee, Resource::Goals, Action::Update), Err(Refusal::Forbidden), "read-only");
        assert_eq!(admin.may(coachee, Resource::CoachNotes, Action::Create), Err(Refusal::Forbidden), "read-only");
        assert_eq!(admin.coachees_for(Resource::Goals), Some(HashSet::from([coachee])));
        assert_eq!(admin.coachees_for(Resource::SessionMetadata), None, "the admin's own tenant-wide right");
        assert_eq!(admin.break_glass_grant(coachee, Resource::Transcripts), Some(grant));
        assert_eq!(admin.break_glass_grant(coachee, Resource::SessionMetadata), None, "not opened by the grant");
        assert_eq!(admin.break_glass_grant(other, Resource::Transcripts), None);
        // The same facts open nothing to any other role.
        let coach = Reach { role: Some(Role::Coach), break_glass: admin.break_glass.clone(), ..Reach::default() };
        assert_eq!(coach.coachee(coachee, Resource::Goals), Err(Refusal::Forbidden));
        assert_eq!(coach.break_glass_grant(coachee, Resource::Goals), None);
    }

    #[test]
    fn coachee_reads_only_itself_and_admin_the_tenant() {
        let me = Uuid::new_v4();
        let r = Reach { role: Some(Role::Coachee), me: Some(me), ..Reach::default() };
        assert!(r.allows(me, Resource::Goals));
        assert!(!r.allows(Uuid::new_v4(), Resource::Goals));
        assert!(!r.allows(me, Resource::CoachNotes));
        let admin = Reach { role: Some(Role::ProgramAdmin), me: Some(me), ..Reach::default() };
        assert!(admin.allows(Uuid::new_v4(), Resource::SessionMetadata));
        assert!(!admin.allows(Uuid::new_v4(), Resource::Goals));
        assert_eq!(admin.coachees_for(Resource::SessionMetadata), None);
    }

    #[test]
    fn executive_and_system_admin_read_no_content_row() {
        let c = Uuid::new_v4();
        for role in [Role::Executive, Role::SystemAdmin] {
            let r = Reach::from_facts(role, Uuid::new_v4(), &[], &[], &[(c, Uuid::new_v4())]);
            for table in ContentTable::ALL {
                assert!(!r.reads(table, &RowFacts::authored(c, c)), "{role:?} {table:?}");
            }
        }
    }
}
