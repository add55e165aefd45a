//! Consent mutations (POLICY.md section 5): `grantConsent`, `withdrawConsent` (COACHEE),
//! `setAiLevel` (COACH), `proposeAiAction` (AI_AGENT), `confirmAiAction` (COACHEE), and the
//! `AiActionProposal` type. The rules are in [`crate::domain::consent`].
//!
//! `AiActionProposal` belongs to the `consents` resource: a proposal exists only under the
//! coachee's SASHA_ACT consent, and that resource is the one both its readers hold a read
//! grant on (the coachee its own, the AI "its own grants"), while program admins, executives
//! and system administrators hold none, with or without break-glass. The type is reached only
//! through these mutations, which check the row first.

use crate::graphql::decl::Ty;
use crate::graphql::decl::ty;
use async_graphql::Value;
use async_graphql::dynamic::FieldValue;

use super::decl::{Entry, FieldDecl, ObjectDecl};
use super::mutation::{done, mutation};
use super::schema::{Catalog, leaf};
use super::{datetime, uuid};
use crate::authz::{Access, Action, Resource, VisibilityTag};
use crate::ctx::Ctx;
use crate::db::entities::ai_action_proposals;
use crate::domain::consent::{self, MAX_PAYLOAD};
use crate::kinds::Role;

/// `AiActionProposal`.
#[derive(Debug, Clone)]
pub struct ProposalView(pub ai_action_proposals::Model);

fn proposal_field(name: &'static str, ty: Ty, value: fn(&ai_action_proposals::Model) -> Value) -> FieldDecl {
    FieldDecl::tagged(
        name,
        ty,
        VisibilityTag::ClientVisible,
        Access::Resource(Resource::Consents),
        leaf(move |_: &Ctx, p: &ProposalView| Ok(Some(value(&p.0)))),
    )
}

pub fn declare(c: &mut Catalog) {
    c.object(
        ObjectDecl::new("AiActionProposal")
            .describe("An action the AI proposes; it runs only after the coachee confirms it.")
            .field(proposal_field("id", ty::req("ID"), |p| uuid(p.id)))
            .field(proposal_field("kind", ty::req("String"), |p| Value::String(p.kind.clone())))
            .field(proposal_field("payload", ty::req("String"), |p| Value::String(p.payload.clone())))
            .field(
                proposal_field("confirmedAt", ty::opt("DateTime"), |p| {
                    p.confirmed_at.map(datetime).unwrap_or(Value::Null)
                })
                .describe("Null until the coachee confirms the proposal."),
            ),
    );

    for (name, granted) in [("grantConsent", true), ("withdrawConsent", false)] {
        let resolve = if granted {
            mutation(|ctx, a| async move {
                let kind = a.enum_("kind", consent::parse_kind)?;
                Ok(FieldValue::owned_any(consent::set_consent(&ctx, kind, true).await?))
            })
        } else {
            mutation(|ctx, a| async move {
                let kind = a.enum_("kind", consent::parse_kind)?;
                Ok(FieldValue::owned_any(consent::set_consent(&ctx, kind, false).await?))
            })
        };
        c.mutation(
            FieldDecl::root(name, ty::req("Consent"), Entry::Matrix(Resource::Consents, Action::Update), resolve)
                .arg("kind", ty::req("ConsentKind"))
                .describe(if granted {
                    "COACHEE: grants one of its own consents."
                } else {
                    "COACHEE: withdraws one of its own consents, from the next request on; withdrawing a SASHA \
                     level withdraws the levels above it too."
                }),
        );
    }
    c.mutation(
        FieldDecl::root(
            "setAiLevel",
            ty::req("Boolean"),
            Entry::Roles(&[Role::Coach]),
            mutation(|ctx, a| async move {
                consent::set_ai_level(&ctx, a.id("coacheeId")?, a.enum_("level", consent::parse_level)?).await?;
                Ok(done())
            }),
        )
        .arg("coacheeId", ty::req("ID"))
        .arg("level", ty::req("AiLevel"))
        .describe(
            "COACH: its own AI level for an assigned coachee; the AI's effective level is the lower of this and \
             the coachee's consent.",
        ),
    );
    c.mutation(
        FieldDecl::root(
            "proposeAiAction",
            ty::req("AiActionProposal"),
            Entry::Matrix(Resource::AiActionProposals, Action::Create),
            mutation(|ctx, a| async move {
                let kind = a.text("kind", 64)?;
                let payload = a.text("payload", MAX_PAYLOAD)?;
                let proposal = consent::propose(&ctx, a.id("coacheeId")?, &kind, payload).await?;
                Ok(FieldValue::owned_any(ProposalView(proposal)))
            }),
        )
        .arg("coacheeId", ty::req("ID"))
        .arg("kind", ty::req("String"))
        .arg("payload", ty::req("String"))
        .describe(
            "AI_AGENT: proposes an action (SCHEDULE_SESSION or SEND_MESSAGE) for a coachee whose effective AI \
             level is ACT. Nothing runs until the coachee confirms it.",
        ),
    );
    c.mutation(
        FieldDecl::root(
            "confirmAiAction",
            ty::req("AiActionProposal"),
            Entry::Matrix(Resource::AiActionProposals, Action::Update),
            mutation(|ctx, a| async move {
                Ok(FieldValue::owned_any(ProposalView(consent::confirm(&ctx, a.id("id")?).await?)))
            }),
        )
        .arg("id", ty::req("ID"))
        .describe("COACHEE: confirms a proposal about itself, once, while its effective AI level is ACT."),
    );
}
