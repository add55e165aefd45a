//! Break-glass mutations (POLICY.md section 6): `requestBreakGlass`, `approveBreakGlass`,
//! `revokeBreakGlass`, PROGRAM_ADMIN only (the matrix's `CRUD(tenant; dual approval)`). They
//! answer the `BreakGlassRequest` type of [`super::admin`] (a [`BreakGlassView`]). The rules are
//! in [`crate::domain::breakglass`]; what a grant opens is the break-glass audience of
//! [`super::schema`].

use crate::graphql::decl::ty;
use async_graphql::dynamic::FieldValue;

use super::decl::{Entry, FieldDecl};
use super::mutation::mutation;
use super::schema::Catalog;
use crate::authz::{Action, Resource};
use crate::domain::admin::BreakGlassView;
use crate::domain::breakglass::{self, MAX_MINUTES, MAX_REASON_CHARS};

fn view(v: BreakGlassView) -> FieldValue<'static> {
    FieldValue::owned_any(v)
}

pub fn declare(c: &mut Catalog) {
    const R: Resource = Resource::BreakGlassRequests;
    c.mutation(
        FieldDecl::root(
            "requestBreakGlass",
            ty::req("BreakGlassRequest"),
            Entry::Matrix(R, Action::Create),
            mutation(|ctx, a| async move {
                let coachee = a.id("coacheeId")?;
                let reason = a.text("reason", MAX_REASON_CHARS)?;
                let minutes = a.int("minutes", 1..=MAX_MINUTES)?;
                Ok(view(breakglass::request(&ctx, coachee, reason, minutes).await?))
            }),
        )
        .arg("coacheeId", ty::req("ID"))
        .arg("reason", ty::req("String"))
        .arg("minutes", ty::req("Int"))
        .describe(
            "PROGRAM_ADMIN: asks for a read-only look at one coachee of its tenant, for 1 to 60 minutes, with a \
             reason of 10 to 500 characters. Another admin of the tenant must approve it.",
        ),
    );
    c.mutation(
        FieldDecl::root(
            "approveBreakGlass",
            ty::req("BreakGlassRequest"),
            Entry::Matrix(R, Action::Update),
            mutation(|ctx, a| async move { Ok(view(breakglass::approve(&ctx, a.id("id")?).await?)) }),
        )
        .arg("id", ty::req("ID"))
        .describe(
            "PROGRAM_ADMIN other than the requester: issues the grant (from now for the requested minutes) and \
             the coachee's access notice.",
        ),
    );
    c.mutation(
        FieldDecl::root(
            "revokeBreakGlass",
            ty::req("BreakGlassRequest"),
            Entry::Matrix(R, Action::Update),
            mutation(|ctx, a| async move { Ok(view(breakglass::revoke(&ctx, a.id("id")?).await?)) }),
        )
        .arg("id", ty::req("ID"))
        .describe("PROGRAM_ADMIN: ends a request and its grant; access stops with the next request."),
    );
}
