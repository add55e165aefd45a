//! Reach: which coachees the request's principal is related to, and how. Loaded once per
//! request (a constant number of statements, whatever the data size), never cached across
//! requests, so a withdrawn consent or an ended assignment counts from the next request.
//! The predicates over it are pure functions.

use std::collections::{HashMap, HashSet};

use sea_orm::{ColumnTrait, QueryFilter};
use uuid::Uuid;

use crate::authz::{Action, Resource, Scope, matrix};
use crate::ctx::Ctx;
use crate::db::entities::{coach_assignments, consents};
use crate::db::scoped;
use crate::domain::kinds::{AiLevel, ConsentKind, Role};
use crate::error::{AppError, AppResult};

/// Why a coachee's data is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No relationship that grants this resource.
    Forbidden,
    /// The relationship exists; a consent gate is closed.
    ConsentRequired,
}

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
    /// AI_AGENT: per coachee, the effective AI level and each coach's own level.
    pub ai: HashMap<Uuid, AiReach>,
    /// PROGRAM_ADMIN: the coachees of my active break-glass grants -> the grant (POLICY.md
    /// section 6). Opens reads of [`crate::authz::BREAK_GLASS_RESOURCES`] about them.
    pub break_glass: HashMap<Uuid, Uuid>,
}

#[derive(Debug, Clone, Default)]
pub struct AiReach {
    pub effective: Option<AiLevel>,
    pub coach_levels: HashMap<Uuid, AiLevel>,
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
        Some(coach) => consented.min(coach),
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

impl Reach {
    /// May the principal read `resource` about `coachee`? Pure: decided on the loaded facts.
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
            && crate::authz::break_glass_opens(resource)
        {
            return Ok(());
        }
        let Some(grant) = matrix::grant(role, resource, action) else { return Err(Refusal::Forbidden) };
        match grant.scope {
            // A coach's own notes are notes it wrote about its assigned coachees; whose
            // notes they are is checked per row (author).
            Scope::Own if role == Role::Coach && resource == Resource::CoachNotes => {
                self.assigned.contains_key(&coachee).then_some(()).ok_or(Refusal::Forbidden)
            }
            Scope::Own => (Some(coachee) == self.me).then_some(()).ok_or(Refusal::Forbidden),
            Scope::Assigned => {
                if !self.assigned.contains_key(&coachee) {
                    return Err(Refusal::Forbidden);
                }
                if resource == Resource::Transcripts && !self.transcript_sharing.contains(&coachee) {
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

    /// AI reads of a coach's private notes also need that coach's own level >= ANALYZE.
    pub fn ai_may_read_notes_of(&self, coachee: Uuid, coach: Uuid) -> bool {
        self.allows(coachee, Resource::CoachNotes)
            && self
                .ai
                .get(&coachee)
                .and_then(|r| r.coach_levels.get(&coach))
                .is_some_and(|level| *level >= AiLevel::Analyze)
    }

    /// The coachees whose `resource` rows the principal may list; `None` means the whole tenant.
    pub fn coachees_for(&self, resource: Resource) -> Option<HashSet<Uuid>> {
        let role = self.role?;
        let scope = matrix::grant(role, resource, Action::Read).map(|g| g.scope);
        if role == Role::ProgramAdmin && scope.is_none() && crate::authz::break_glass_opens(resource) {
            return Some(self.break_glass.keys().copied().collect());
        }
        match scope {
            Some(Scope::Tenant) => None,
            Some(Scope::Own) if role == Role::Coach && resource == Resource::CoachNotes => {
                Some(self.assigned.keys().copied().collect())
            }
            Some(Scope::Own) => Some(self.me.into_iter().collect()),
            Some(Scope::Assigned) => {
                Some(self.assigned.keys().copied().filter(|c| self.allows(*c, resource)).collect())
            }
            Some(Scope::Consented) => Some(self.ai.keys().copied().filter(|c| self.allows(*c, resource)).collect()),
            _ => Some(HashSet::new()),
        }
    }

    /// The break-glass grant a read of `resource` about `coachee` happens under: `Some` only
    /// for a program admin holding an active grant for that coachee, and only for what the
    /// grant opens beyond the admin's own rights (the reads audited with the grant id).
    pub fn break_glass_grant(&self, coachee: Uuid, resource: Resource) -> Option<Uuid> {
        let opened = self.role == Some(Role::ProgramAdmin)
            && crate::authz::break_glass_opens(resource)
            && !matrix::allows(Role::ProgramAdmin, resource, Action::Read);
        if opened { self.break_glass.get(&coachee).copied() } else { None }
    }
}

/// Loads the facts for the principal of `ctx` (called through `Ctx::reach`).
pub async fn load(ctx: &Ctx) -> AppResult<Reach> {
    let Some(p) = ctx.principal().copied() else { return Ok(Reach::default()) };
    let mut reach = Reach { role: Some(p.role), me: Some(p.user_id), ..Reach::default() };
    let Some(tenant) = p.tenant_id else { return Ok(reach) };
    let active = scoped::select::<coach_assignments::Entity>(tenant).filter(coach_assignments::Column::Active.eq(true));
    match p.role {
        Role::Coach => {
            let rows =
                active.filter(coach_assignments::Column::CoachId.eq(p.user_id)).all(&*ctx.db().conn().await?).await?;
            reach.assigned = rows.iter().map(|a| (a.coachee_id, a.ai_level)).collect();
            let shared = scoped::select::<consents::Entity>(tenant)
                .filter(consents::Column::Kind.eq(ConsentKind::TranscriptSharing))
                .filter(consents::Column::Granted.eq(true))
                .filter(consents::Column::CoacheeId.is_in(reach.assigned.keys().copied().collect::<Vec<_>>()))
                .all(&*ctx.db().conn().await?)
                .await?;
            reach.transcript_sharing = shared.into_iter().map(|c| c.coachee_id).collect();
        }
        Role::Coachee => {
            let rows =
                active.filter(coach_assignments::Column::CoacheeId.eq(p.user_id)).all(&*ctx.db().conn().await?).await?;
            reach.my_coaches = rows.into_iter().map(|a| a.coach_id).collect();
        }
        Role::AiAgent => {
            let rows = active.all(&*ctx.db().conn().await?).await?;
            let granted = scoped::select::<consents::Entity>(tenant)
                .filter(consents::Column::Granted.eq(true))
                .all(&*ctx.db().conn().await?)
                .await?;
            let mut kinds: HashMap<Uuid, HashSet<ConsentKind>> = HashMap::new();
            for c in granted {
                kinds.entry(c.coachee_id).or_default().insert(c.kind);
            }
            for a in rows {
                reach.ai.entry(a.coachee_id).or_default().coach_levels.insert(a.coach_id, a.ai_level);
            }
            for (coachee, r) in reach.ai.iter_mut() {
                let consented = consented_level(kinds.get(coachee).unwrap_or(&HashSet::new()));
                let level = effective_level(consented, r.coach_levels.values().copied());
                r.effective = (level > AiLevel::Off).then_some(level);
            }
        }
        Role::ProgramAdmin => {
            // Break-glass: the request's clock for the database's policies, then my grants.
            let now = ctx.now();
            ctx.db().set_clock(now).await?;
            reach.break_glass = crate::domain::breakglass::active_grants(ctx, tenant, p.user_id, now).await?;
        }
        _ => {}
    }
    Ok(reach)
}

impl Refusal {
    pub fn into_error(self, ctx: &Ctx, resource: Resource) -> AppError {
        match self {
            Refusal::Forbidden => super::access::forbidden(ctx, resource, "no relationship grants this row"),
            Refusal::ConsentRequired => super::access::consent_required(ctx, resource, "consent gate closed"),
        }
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
}
