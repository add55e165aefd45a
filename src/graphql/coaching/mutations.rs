//! Coaching-content mutations. Inputs carry no tenant or owner: those come from the `Ctx`.

use crate::graphql::decl::ty;
use async_graphql::Value;
use async_graphql::dynamic::FieldValue;

use super::{GoalView, InsightView, ItemView, NoteView, PackView, SessionView, insight_facts, pack_facts};
use crate::authz::rows::Admitted;
use crate::authz::{Access, Action, ContentTable, Resource, RowFacts, VisibilityTag};
use crate::ctx::Ctx;
use crate::db::entities::{action_items, ai_feedback, coach_notes, coaching_sessions, goals, insights};
use crate::domain::access;
use crate::domain::content::{self, MAX_BODY, MAX_TITLE, MAX_TRANSCRIPT};
use crate::error::AppResult;
use crate::graphql::decl::{Entry, FieldDecl, ObjectDecl};
use crate::graphql::mutation::{done, mutation};
use crate::graphql::schema::{Catalog, leaf};
use crate::graphql::uuid;
use crate::kinds::{EvidenceLevel, InsightStatus, Role, SessionStatus};

#[derive(Debug, Clone)]
struct FeedbackView(Admitted<ai_feedback::Model>);

fn session_status(s: &str) -> Option<SessionStatus> {
    match s {
        "SCHEDULED" => Some(SessionStatus::Scheduled),
        "COMPLETED" => Some(SessionStatus::Completed),
        "CANCELLED" => Some(SessionStatus::Cancelled),
        _ => None,
    }
}

fn evidence_level(s: &str) -> Option<EvidenceLevel> {
    match s {
        "L0" => Some(EvidenceLevel::L0),
        "L1" => Some(EvidenceLevel::L1),
        _ => None,
    }
}

fn owned<T: Clone + Send + Sync + 'static>(v: T) -> FieldValue<'static> {
    FieldValue::owned_any(v)
}

/// The row the caller just wrote with `action`, admitted by that write's grant: the only
/// way a mutation's payload view is built (`Reach::admit_written`).
async fn written<T>(
    ctx: &Ctx,
    table: ContentTable,
    row: T,
    facts: fn(&T) -> RowFacts,
    action: Action,
) -> AppResult<Admitted<T>> {
    let resource = table.resource(&facts(&row));
    crate::domain::reach::of(ctx)
        .await?
        .admit_written(table, row, facts, action)
        .map_err(|refusal| access::refuse(ctx, action, resource, refusal))
}

fn session_facts(s: &coaching_sessions::Model) -> RowFacts {
    RowFacts::about(s.coachee_id)
}

fn item_facts(i: &action_items::Model) -> RowFacts {
    RowFacts::about(i.coachee_id)
}

fn goal_facts(g: &goals::Model) -> RowFacts {
    RowFacts::about(g.coachee_id)
}

fn note_facts(n: &coach_notes::Model) -> RowFacts {
    RowFacts::authored(n.coachee_id, n.coach_id)
}

fn feedback_facts(f: &ai_feedback::Model) -> RowFacts {
    RowFacts::about(f.coachee_id)
}

/// Approving or rejecting writes a draft: the grant that allows it is the draft's.
fn approved_draft_facts(i: &insights::Model) -> RowFacts {
    RowFacts::insight(i.coachee_id, false)
}

pub fn declare(c: &mut Catalog) {
    use Action::{Create, Delete, Update};
    use Resource as R;

    let feedback = |name, ty, value: fn(&ai_feedback::Model) -> Option<Value>| {
        FieldDecl::tagged(
            name,
            ty,
            VisibilityTag::ClientVisible,
            Access::Resource(R::AiFeedback),
            leaf(move |_: &Ctx, f: &FeedbackView| Ok(value(&f.0))),
        )
    };
    c.object(
        ObjectDecl::new("AiFeedback")
            .field(feedback("id", ty::req("ID"), |f| Some(uuid(f.id))))
            .field(feedback("helpful", ty::req("Boolean"), |f| Some(Value::Boolean(f.helpful))))
            .field(feedback("comment", ty::opt("String"), |f| f.comment.clone().map(Value::String))),
    );

    // Sessions.
    c.mutation(
        FieldDecl::root(
            "createSession",
            ty::req("CoachingSession"),
            Entry::Matrix(R::SessionMetadata, Create),
            mutation(|ctx, a| async move {
                let s = content::create_session(
                    &ctx,
                    a.id("coacheeId")?,
                    a.datetime("scheduledAt")?,
                    a.int("durationMinutes", i64::MIN..=i64::MAX)?,
                )
                .await?;
                Ok(owned(SessionView(written(&ctx, ContentTable::CoachingSessions, s, session_facts, Create).await?)))
            }),
        )
        .arg("coacheeId", ty::req("ID"))
        .arg("scheduledAt", ty::req("DateTime"))
        .arg("durationMinutes", ty::req("Int")),
    );
    c.mutation(
        FieldDecl::root(
            "updateSession",
            ty::req("CoachingSession"),
            Entry::Matrix(R::SessionMetadata, Update),
            mutation(|ctx, a| async move {
                let s = content::update_session(
                    &ctx,
                    a.id("id")?,
                    a.opt_datetime("scheduledAt")?,
                    a.opt_enum("status", session_status)?,
                    a.opt_text("privateNotes", MAX_BODY)?,
                )
                .await?;
                Ok(owned(SessionView(written(&ctx, ContentTable::CoachingSessions, s, session_facts, Update).await?)))
            }),
        )
        .arg("id", ty::req("ID"))
        .arg("scheduledAt", ty::opt("DateTime"))
        .arg("status", ty::opt("SessionStatus"))
        .arg("privateNotes", ty::opt("String")),
    );
    c.mutation(
        FieldDecl::root(
            "deleteSession",
            ty::req("Boolean"),
            Entry::Matrix(R::SessionMetadata, Delete),
            mutation(|ctx, a| async move {
                content::delete_session(&ctx, a.id("id")?).await?;
                Ok(done())
            }),
        )
        .arg("id", ty::req("ID")),
    );
    c.mutation(
        FieldDecl::root(
            "attachTranscript",
            ty::req("Boolean"),
            Entry::Roles(&[Role::Coach]),
            mutation(|ctx, a| async move {
                content::attach_transcript(&ctx, a.id("sessionId")?, a.text("text", MAX_TRANSCRIPT)?).await?;
                Ok(done())
            }),
        )
        .arg("sessionId", ty::req("ID"))
        .arg("text", ty::req("String")),
    );

    // Insights.
    c.mutation(
        FieldDecl::root(
            "createInsight",
            ty::req("Insight"),
            Entry::Matrix(R::DraftInsights, Create),
            mutation(|ctx, a| async move {
                let i = content::create_insight(&ctx, a.id("sessionId")?, a.text("body", MAX_BODY)?).await?;
                Ok(owned(InsightView(written(&ctx, ContentTable::Insights, i, insight_facts, Create).await?)))
            }),
        )
        .arg("sessionId", ty::req("ID"))
        .arg("body", ty::req("String")),
    );
    c.mutation(
        FieldDecl::root(
            "updateInsight",
            ty::req("Insight"),
            Entry::Matrix(R::DraftInsights, Update),
            mutation(|ctx, a| async move {
                let i = content::update_insight(&ctx, a.id("id")?, a.text("body", MAX_BODY)?).await?;
                Ok(owned(InsightView(written(&ctx, ContentTable::Insights, i, insight_facts, Update).await?)))
            }),
        )
        .arg("id", ty::req("ID"))
        .arg("body", ty::req("String")),
    );
    for (name, status) in [("approveInsight", InsightStatus::Approved), ("rejectInsight", InsightStatus::Rejected)] {
        let resolve = match status {
            InsightStatus::Approved => mutation(|ctx, a| async move {
                let i = content::set_insight_status(&ctx, a.id("id")?, InsightStatus::Approved).await?;
                Ok(owned(InsightView(written(&ctx, ContentTable::Insights, i, approved_draft_facts, Update).await?)))
            }),
            _ => mutation(|ctx, a| async move {
                let i = content::set_insight_status(&ctx, a.id("id")?, InsightStatus::Rejected).await?;
                Ok(owned(InsightView(written(&ctx, ContentTable::Insights, i, approved_draft_facts, Update).await?)))
            }),
        };
        c.mutation(
            FieldDecl::root(name, ty::req("Insight"), Entry::Matrix(R::DraftInsights, Update), resolve)
                .arg("id", ty::req("ID")),
        );
    }
    c.mutation(
        FieldDecl::root(
            "deleteInsight",
            ty::req("Boolean"),
            Entry::Matrix(R::DraftInsights, Delete),
            mutation(|ctx, a| async move {
                content::delete_insight(&ctx, a.id("id")?).await?;
                Ok(done())
            }),
        )
        .arg("id", ty::req("ID")),
    );

    // Evidence packs.
    c.mutation(
        FieldDecl::root(
            "createEvidencePack",
            ty::req("EvidencePack"),
            Entry::Matrix(R::EvidencePacks, Create),
            mutation(|ctx, a| async move {
                let p = content::create_evidence_pack(
                    &ctx,
                    a.id("sessionId")?,
                    a.enum_("level", evidence_level)?,
                    a.text("content", MAX_BODY)?,
                )
                .await?;
                Ok(owned(PackView(written(&ctx, ContentTable::EvidencePacks, p, pack_facts, Create).await?)))
            }),
        )
        .arg("sessionId", ty::req("ID"))
        .arg("level", ty::req("EvidenceLevel"))
        .arg("content", ty::req("String")),
    );
    c.mutation(
        FieldDecl::root(
            "approveEvidencePack",
            ty::req("EvidencePack"),
            Entry::Matrix(R::EvidencePacks, Update),
            mutation(|ctx, a| async move {
                let p = content::approve_evidence_pack(&ctx, a.id("id")?).await?;
                Ok(owned(PackView(written(&ctx, ContentTable::EvidencePacks, p, pack_facts, Update).await?)))
            }),
        )
        .arg("id", ty::req("ID")),
    );

    // Action items and goals.
    c.mutation(
        FieldDecl::root(
            "createActionItem",
            ty::req("ActionItem"),
            Entry::Matrix(R::ActionItems, Create),
            mutation(|ctx, a| async move {
                let i = content::create_action_item(
                    &ctx,
                    a.id("coacheeId")?,
                    a.text("title", MAX_TITLE)?,
                    a.opt_date("dueOn")?,
                )
                .await?;
                Ok(owned(ItemView(written(&ctx, ContentTable::ActionItems, i, item_facts, Create).await?)))
            }),
        )
        .arg("coacheeId", ty::req("ID"))
        .arg("title", ty::req("String"))
        .arg("dueOn", ty::opt("Date")),
    );
    c.mutation(
        FieldDecl::root(
            "completeActionItem",
            ty::req("ActionItem"),
            Entry::Matrix(R::ActionItems, Update),
            mutation(|ctx, a| async move {
                let i = content::complete_action_item(&ctx, a.id("id")?).await?;
                Ok(owned(ItemView(written(&ctx, ContentTable::ActionItems, i, item_facts, Update).await?)))
            }),
        )
        .arg("id", ty::req("ID")),
    );
    c.mutation(
        FieldDecl::root(
            "createGoal",
            ty::req("Goal"),
            Entry::Matrix(R::Goals, Create),
            mutation(|ctx, a| async move {
                let g = content::create_goal(&ctx, a.id("coacheeId")?, a.text("title", MAX_TITLE)?).await?;
                Ok(owned(GoalView(written(&ctx, ContentTable::Goals, g, goal_facts, Create).await?)))
            }),
        )
        .arg("coacheeId", ty::req("ID"))
        .arg("title", ty::req("String")),
    );
    c.mutation(
        FieldDecl::root(
            "updateGoalProgress",
            ty::req("Goal"),
            Entry::Matrix(R::Goals, Update),
            mutation(|ctx, a| async move {
                let g =
                    content::update_goal_progress(&ctx, a.id("id")?, a.int("progressPercent", i64::MIN..=i64::MAX)?)
                        .await?;
                Ok(owned(GoalView(written(&ctx, ContentTable::Goals, g, goal_facts, Update).await?)))
            }),
        )
        .arg("id", ty::req("ID"))
        .arg("progressPercent", ty::req("Int")),
    );

    // Coach notes: the author's alone.
    c.mutation(
        FieldDecl::root(
            "addCoachNote",
            ty::req("CoachNote"),
            Entry::Matrix(R::CoachNotes, Create),
            mutation(|ctx, a| async move {
                let n = content::add_coach_note(&ctx, a.id("coacheeId")?, a.text("body", MAX_BODY)?).await?;
                Ok(owned(NoteView(written(&ctx, ContentTable::CoachNotes, n, note_facts, Create).await?)))
            }),
        )
        .arg("coacheeId", ty::req("ID"))
        .arg("body", ty::req("String")),
    );
    c.mutation(
        FieldDecl::root(
            "updateCoachNote",
            ty::req("CoachNote"),
            Entry::Matrix(R::CoachNotes, Update),
            mutation(|ctx, a| async move {
                let n = content::update_coach_note(&ctx, a.id("id")?, a.text("body", MAX_BODY)?).await?;
                Ok(owned(NoteView(written(&ctx, ContentTable::CoachNotes, n, note_facts, Update).await?)))
            }),
        )
        .arg("id", ty::req("ID"))
        .arg("body", ty::req("String")),
    );
    c.mutation(
        FieldDecl::root(
            "deleteCoachNote",
            ty::req("Boolean"),
            Entry::Matrix(R::CoachNotes, Delete),
            mutation(|ctx, a| async move {
                content::delete_coach_note(&ctx, a.id("id")?).await?;
                Ok(done())
            }),
        )
        .arg("id", ty::req("ID")),
    );

    // AI feedback by the coachee.
    c.mutation(
        FieldDecl::root(
            "giveAiFeedback",
            ty::req("AiFeedback"),
            Entry::Matrix(R::AiFeedback, Create),
            mutation(|ctx, a| async move {
                let f = content::give_ai_feedback(
                    &ctx,
                    a.id("insightId")?,
                    a.bool("helpful")?,
                    a.opt_text("comment", crate::domain::content::MAX_TITLE * 4)?,
                )
                .await?;
                Ok(owned(FeedbackView(written(&ctx, ContentTable::AiFeedback, f, feedback_facts, Create).await?)))
            }),
        )
        .arg("insightId", ty::req("ID"))
        .arg("helpful", ty::req("Boolean"))
        .arg("comment", ty::opt("String")),
    );
}
