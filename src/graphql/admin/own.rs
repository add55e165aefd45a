//! The caller's own operational rows: `integrationTokens` (COACHEE, COACH), `aiAccessLog`
//! (COACHEE), `accessNotices` (COACHEE, COACH), `myConsents` (COACHEE).

use crate::graphql::decl::Ty;
use crate::graphql::decl::ty;
use async_graphql::Value;
use async_graphql::dynamic::{FieldFuture, FieldValue};

use crate::authz::{Access, Action, Resource, VisibilityTag};
use crate::domain::admin::{self, AccessNoticeView, AiAccessEntry, ConsentView, IntegrationTokenView};
use crate::domain::tokens;
use crate::graphql::decl::{Entry, FieldDecl, ObjectDecl};
use crate::graphql::mutation::{done, mutation, query};
use crate::graphql::paging::{Connection, Page, connection_decl};
use crate::graphql::schema::{Catalog, enum_value, leaf, resolver};
use crate::graphql::{datetime, uuid};
use crate::kinds::Role;

fn client_field<T: std::any::Any + Send + Sync>(
    name: &'static str,
    ty: Ty,
    resource: Resource,
    value: fn(&T) -> Value,
) -> FieldDecl {
    FieldDecl::tagged(
        name,
        ty,
        VisibilityTag::ClientVisible,
        Access::Resource(resource),
        leaf(move |_, v: &T| Ok(Some(value(v)))),
    )
}

fn string(s: &str) -> Value {
    Value::String(s.to_owned())
}

fn declare_integration_tokens(c: &mut Catalog) {
    const R: Resource = Resource::IntegrationTokens;
    c.object(
        ObjectDecl::new("IntegrationToken")
            .field(client_field("id", ty::req("ID"), R, |t: &IntegrationTokenView| uuid(t.id)))
            .field(client_field("name", ty::req("String"), R, |t: &IntegrationTokenView| string(&t.name)))
            .field(client_field("createdAt", ty::req("DateTime"), R, |t: &IntegrationTokenView| datetime(t.created_at)))
            .field(client_field("lastUsedAt", ty::opt("DateTime"), R, |t: &IntegrationTokenView| {
                t.last_used_at.map(datetime).unwrap_or(Value::Null)
            })),
    );
    c.query(
        FieldDecl::root(
            "integrationTokens",
            ty::list("IntegrationToken"),
            Entry::Matrix(Resource::IntegrationTokens, Action::Read),
            query(|ctx, _| async move {
                let tokens = admin::my_integration_tokens(&ctx).await?;
                Ok(Some(FieldValue::list(tokens.into_iter().map(FieldValue::owned_any))))
            }),
        )
        .describe("The caller's integration tokens that are not revoked, newest first."),
    );
    c.object(
        ObjectDecl::structural("NewIntegrationToken")
            .field(FieldDecl::structural(
                "token",
                ty::req("IntegrationToken"),
                resolver(|rc| {
                    FieldFuture::new(async move {
                        let v = rc.parent_value.try_downcast_ref::<NewToken>()?;
                        Ok(Some(FieldValue::owned_any(v.0.clone())))
                    })
                }),
            ))
            .field(
                FieldDecl::structural(
                    "secret",
                    ty::req("String"),
                    leaf(|_, v: &NewToken| Ok(Some(Value::String(v.1.clone())))),
                )
                .describe("Shown once; only a hash is stored."),
            ),
    );
    c.mutation(
        FieldDecl::root(
            "createIntegrationToken",
            ty::req("NewIntegrationToken"),
            Entry::Matrix(Resource::IntegrationTokens, Action::Create),
            mutation(|ctx, a| async move {
                let (token, secret) = tokens::create(&ctx, &a.text("name", tokens::MAX_NAME)?).await?;
                Ok(FieldValue::owned_any(NewToken(token, secret)))
            }),
        )
        .arg("name", ty::req("String"))
        .describe(
            "COACHEE, COACH: a token that acts with the caller's rights (Authorization: Bearer cgi_...); its \
             secret is shown once. Not available to a request authenticated by an integration token.",
        ),
    );
    c.mutation(
        FieldDecl::root(
            "revokeIntegrationToken",
            ty::req("Boolean"),
            Entry::Matrix(Resource::IntegrationTokens, Action::Delete),
            mutation(|ctx, a| async move {
                tokens::revoke(&ctx, a.id("id")?).await?;
                Ok(done())
            }),
        )
        .arg("id", ty::req("ID"))
        .describe("COACHEE, COACH: the caller's token stops working from the next request on."),
    );
}

/// A new token and its secret (the answer of `createIntegrationToken`).
struct NewToken(IntegrationTokenView, String);

fn declare_ai_access_log(c: &mut Catalog) {
    const R: Resource = Resource::AiAccessLog;
    c.object(
        ObjectDecl::new("AiAccessLogEntry")
            .field(client_field("at", ty::req("DateTime"), R, |e: &AiAccessEntry| datetime(e.at)))
            .field(client_field("model", ty::req("String"), R, |e: &AiAccessEntry| string(&e.model)))
            .field(client_field("purpose", ty::req("String"), R, |e: &AiAccessEntry| string(&e.purpose)))
            .field(client_field("resource", ty::req("String"), R, |e: &AiAccessEntry| string(&e.resource))),
    );
    c.object(connection_decl::<AiAccessEntry>("AiAccessLogConnection", ty::list("AiAccessLogEntry")));
    c.query(
        FieldDecl::root(
            "aiAccessLog",
            ty::req("AiAccessLogConnection"),
            Entry::Matrix(Resource::AiAccessLog, Action::Read),
            query(|ctx, a| async move {
                let page = Page::from(&a, ctx.role(), "aiAccessLog")?;
                let skip = page.skip()?;
                let (rows, total) = admin::my_ai_access_log(&ctx, skip, page.limit).await?;
                Ok(Some(FieldValue::owned_any(Connection::positional(&page, skip, rows, total))))
            }),
        )
        .arg("first", ty::opt("Int"))
        .arg("after", ty::opt("String"))
        .describe("COACHEE: every AI read or write of the caller's data, newest first."),
    );
}

fn declare_access_notices(c: &mut Catalog) {
    const R: Resource = Resource::AccessNotices;
    c.object(
        ObjectDecl::new("AccessNotice")
            .field(client_field("at", ty::req("DateTime"), R, |n: &AccessNoticeView| datetime(n.at)))
            .field(client_field("actorRole", ty::req("Role"), R, |n: &AccessNoticeView| {
                enum_value(n.actor_role.as_str())
            }))
            .field(client_field("reason", ty::req("String"), R, |n: &AccessNoticeView| string(&n.reason))),
    );
    c.query(
        FieldDecl::root(
            "accessNotices",
            ty::list("AccessNotice"),
            Entry::Matrix(Resource::AccessNotices, Action::Read),
            query(|ctx, a| async move {
                let notices = admin::my_access_notices(&ctx, a.loaders_required()?).await?;
                Ok(Some(FieldValue::list(notices.into_iter().map(FieldValue::owned_any))))
            }),
        )
        .describe("Who read the caller's data under break-glass, when and why; newest first."),
    );
}

fn declare_consents(c: &mut Catalog) {
    const R: Resource = Resource::Consents;
    c.object(
        ObjectDecl::new("Consent")
            .field(client_field("kind", ty::req("ConsentKind"), R, |v: &ConsentView| {
                enum_value(crate::kinds::name(v.kind))
            }))
            .field(client_field("granted", ty::req("Boolean"), R, |v: &ConsentView| Value::Boolean(v.granted)))
            .field(client_field("changedAt", ty::req("DateTime"), R, |v: &ConsentView| datetime(v.changed_at))),
    );
    c.query(
        FieldDecl::root(
            "myConsents",
            ty::list("Consent"),
            // Own consents: the coachee's. (The coach's and the AI's consent reads are of
            // other people's consents, not "mine".)
            Entry::Roles(&[Role::Coachee]),
            query(|ctx, a| async move {
                let consents = admin::my_consents(&ctx, a.loaders_required()?).await?;
                Ok(Some(FieldValue::list(consents.into_iter().map(FieldValue::owned_any))))
            }),
        )
        .describe("COACHEE: every consent kind, granted or not, in a fixed order."),
    );
}

pub fn declare(c: &mut Catalog) {
    declare_integration_tokens(c);
    declare_ai_access_log(c);
    declare_access_notices(c);
    declare_consents(c);
}
