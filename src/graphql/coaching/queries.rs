//! Root queries over people and coaching content: coachees, users, user, session,
//! sessions, actionItems, goals.

use crate::graphql::decl::ty;
use async_graphql::dynamic::FieldValue;

use super::{GoalView, ItemView, SessionView, prefetch_session_relations};
use crate::authz::{Action, Resource, Scope};
use crate::ctx::Ctx;
use crate::db::entities::users;
use crate::domain::paging::{Listed, SortKey};
use crate::domain::reads;
use crate::graphql::decl::{Entry, FieldDecl};
use crate::graphql::mutation::Args;
use crate::graphql::mutation::query;
use crate::graphql::paging::{Connection, Page, connection_decl};
use crate::graphql::schema::Catalog;
use crate::graphql::users::{UserView, prefetch_relations};

/// The relations the selection asks of these profiles, prefetched.
async fn prefetch_user_relations(ctx: &Ctx, args: &Args, profiles: &[users::Profile]) {
    let ids: Vec<_> = profiles.iter().map(|p| p.id).collect();
    prefetch_relations(ctx, args, &ids).await;
}
use crate::kinds::Role;

fn people(page: &Page, listed: (Listed<users::Profile>, Scope)) -> Connection<UserView> {
    let (listed, scope) = listed;
    let nodes = listed.rows.into_iter().map(|model| UserView { model, scope }).collect();
    Connection::keyset(page, nodes, listed.has_next, listed.total, |u: &UserView| {
        SortKey::Named(u.model.display_name.clone(), u.model.id)
    })
}

fn connection<T: Clone + Send + Sync + 'static>(c: Connection<T>) -> Option<FieldValue<'static>> {
    Some(FieldValue::owned_any(c))
}

pub fn declare(c: &mut Catalog) {
    c.object(connection_decl::<UserView>("UserConnection", ty::list("User")));
    c.object(connection_decl::<SessionView>("CoachingSessionConnection", ty::list("CoachingSession")));
    c.object(connection_decl::<ItemView>("ActionItemConnection", ty::list("ActionItem")));

    c.query(
        FieldDecl::root(
            "coachees",
            ty::req("UserConnection"),
            Entry::Roles(&[Role::Coach, Role::ProgramAdmin]),
            query(|ctx, a| async move {
                let page = Page::from(&a, ctx.role(), "coachees")?;
                let listed = reads::coachees(&ctx, &page.window()?).await?;
                prefetch_user_relations(&ctx, &a, &listed.0.rows).await;
                Ok(connection(people(&page, listed)))
            }),
        )
        .arg("first", ty::opt("Int"))
        .arg("after", ty::opt("String"))
        .describe("COACH: assigned coachees. PROGRAM_ADMIN: all coachees of the tenant."),
    );
    c.query(
        FieldDecl::root(
            "users",
            ty::req("UserConnection"),
            Entry::Roles(&[Role::ProgramAdmin, Role::Executive]),
            query(|ctx, a| async move {
                let role = a.opt_enum("role", Role::parse)?;
                let page = Page::from(&a, ctx.role(), "users")?;
                let listed = reads::users(&ctx, role, &page.window()?).await?;
                prefetch_user_relations(&ctx, &a, &listed.0.rows).await;
                Ok(connection(people(&page, listed)))
            }),
        )
        .arg("role", ty::opt("Role"))
        .arg("first", ty::opt("Int"))
        .arg("after", ty::opt("String"))
        .describe("PROGRAM_ADMIN and EXECUTIVE: users of the tenant."),
    );
    c.query(
        FieldDecl::root(
            "user",
            ty::opt("User"),
            Entry::Matrix(Resource::OtherUserProfiles, Action::Read),
            query(|ctx, a| async move {
                let (model, scope) = reads::user(&ctx, a.id("id")?).await?;
                prefetch_user_relations(&ctx, &a, std::slice::from_ref(&model)).await;
                Ok(Some(FieldValue::owned_any(UserView { model, scope })))
            }),
        )
        .arg("id", ty::req("ID")),
    );
    c.query(
        FieldDecl::root(
            "session",
            ty::opt("CoachingSession"),
            Entry::Matrix(Resource::SessionMetadata, Action::Read),
            query(|ctx, a| async move {
                let session = reads::session(&ctx, a.id("id")?).await?;
                prefetch_session_relations(&ctx, &a, &[(session.id, session.coachee_id)]).await;
                Ok(Some(FieldValue::owned_any(SessionView(session))))
            }),
        )
        .arg("id", ty::req("ID")),
    );
    c.query(
        FieldDecl::root(
            "sessions",
            ty::req("CoachingSessionConnection"),
            Entry::Matrix(Resource::SessionMetadata, Action::Read),
            query(|ctx, a| async move {
                let page = Page::from(&a, ctx.role(), "sessions")?;
                let listed = reads::sessions(&ctx, a.opt_id("coacheeId")?, &page.window()?).await?;
                let sessions: Vec<_> = listed.rows.iter().map(|s| (s.id, s.coachee_id)).collect();
                prefetch_session_relations(&ctx, &a, &sessions).await;
                Ok(connection(super::session_connection(&page, listed)))
            }),
        )
        .arg("coacheeId", ty::opt("ID"))
        .arg("first", ty::opt("Int"))
        .arg("after", ty::opt("String")),
    );
    c.query(
        FieldDecl::root(
            "actionItems",
            ty::req("ActionItemConnection"),
            Entry::Matrix(Resource::ActionItems, Action::Read),
            query(|ctx, a| async move {
                let page = Page::from(&a, ctx.role(), "actionItems")?;
                let listed = reads::action_items(&ctx, a.opt_id("coacheeId")?, &page.window()?).await?;
                Ok(connection(super::item_connection(&page, listed)))
            }),
        )
        .arg("coacheeId", ty::opt("ID"))
        .arg("first", ty::opt("Int"))
        .arg("after", ty::opt("String")),
    );
    c.query(
        FieldDecl::root(
            "goals",
            ty::list("Goal"),
            Entry::Matrix(Resource::Goals, Action::Read),
            query(|ctx, a| async move {
                let rows = reads::goals(&ctx, a.opt_id("coacheeId")?).await?;
                Ok(Some(FieldValue::list(rows.into_iter().map(|g| FieldValue::owned_any(GoalView(g))))))
            }),
        )
        .arg("coacheeId", ty::opt("ID")),
    );
}
