//! Viewer, login, logout, changePassword.

use std::sync::Arc;

use async_graphql::Value;
use async_graphql::dynamic::{FieldFuture, FieldValue};
use uuid::Uuid;

use super::decl::{Entry, FieldDecl, ObjectDecl, ctx_of};
use super::schema::{Catalog, enum_value, leaf, resolver};
use super::{datetime, uuid};
use crate::ctx::{Ctx, Principal};
use crate::error::{AppError, AppResult};
use crate::identity::login;
use crate::identity::token::TokenKeys;
use crate::kinds::Role;

/// `Viewer`: the caller's own identity (a structural type: no tags).
#[derive(Debug, Clone)]
pub struct ViewerView {
    pub id: Uuid,
    pub role: Role,
    pub tenant_id: Option<Uuid>,
    pub display_name: String,
}

struct AuthPayloadView {
    token: String,
    csrf_token: String,
    expires_at: chrono::DateTime<chrono::Utc>,
    viewer: ViewerView,
}

pub async fn load_viewer(ctx: &Ctx, p: &Principal) -> AppResult<ViewerView> {
    let user = crate::domain::reads::principal_user(ctx, p.user_id).await?;
    Ok(ViewerView { id: user.id, role: user.role, tenant_id: user.tenant_id, display_name: user.display_name })
}

pub fn declare(c: &mut Catalog) {
    c.object(
        ObjectDecl::structural("Viewer")
            .field(FieldDecl::structural("id", "ID!", leaf(|_, v: &ViewerView| Ok(Some(uuid(v.id))))))
            .field(FieldDecl::structural(
                "role",
                "Role!",
                leaf(|_, v: &ViewerView| Ok(Some(enum_value(v.role.as_str())))),
            ))
            .field(FieldDecl::structural("tenantId", "ID", leaf(|_, v: &ViewerView| Ok(v.tenant_id.map(uuid)))))
            .field(FieldDecl::structural(
                "displayName",
                "String!",
                leaf(|_, v: &ViewerView| Ok(Some(Value::String(v.display_name.clone())))),
            )),
    );
    c.object(
        ObjectDecl::structural("AuthPayload")
            .field(FieldDecl::structural(
                "token",
                "String!",
                leaf(|_, v: &AuthPayloadView| Ok(Some(Value::String(v.token.clone())))),
            ))
            .field(FieldDecl::structural(
                "expiresAt",
                "DateTime!",
                leaf(|_, v: &AuthPayloadView| Ok(Some(datetime(v.expires_at)))),
            ))
            .field(FieldDecl::structural(
                "csrfToken",
                "String!",
                leaf(|_, v: &AuthPayloadView| Ok(Some(Value::String(v.csrf_token.clone())))),
            ))
            .field(FieldDecl::structural(
                "viewer",
                "Viewer!",
                resolver(|rc| {
                    FieldFuture::new(async move {
                        let v = rc.parent_value.try_downcast_ref::<AuthPayloadView>()?;
                        Ok(Some(FieldValue::owned_any(v.viewer.clone())))
                    })
                }),
            )),
    );

    c.query(
        FieldDecl::root(
            "viewer",
            "Viewer!",
            Entry::Authenticated,
            resolver(|rc| {
                FieldFuture::new(async move {
                    let ctx = ctx_of(&rc)?;
                    let p = ctx.require().map_err(AppError::into_graphql)?;
                    let viewer = load_viewer(ctx, p).await.map_err(AppError::into_graphql)?;
                    Ok(Some(FieldValue::owned_any(viewer)))
                })
            }),
        )
        .describe("Who is calling; every authenticated principal may read it."),
    );
    // The anonymous schema needs a Query type too; `viewer` there answers UNAUTHENTICATED.
    c.query(
        FieldDecl::root(
            "viewer",
            "Viewer!",
            Entry::Anonymous,
            resolver(|_| {
                FieldFuture::new(async move { Err::<Option<Value>, _>(AppError::Unauthenticated.into_graphql()) })
            }),
        )
        .describe("Who is calling; every authenticated principal may read it."),
    );

    c.mutation(
        FieldDecl::root(
            "login",
            "AuthPayload!",
            Entry::Anonymous,
            resolver(|rc| {
                FieldFuture::new(async move {
                    let ctx = ctx_of(&rc)?;
                    let keys = rc.data::<Arc<TokenKeys>>()?;
                    let email = rc.args.try_get("email")?.string()?.to_owned();
                    let password = rc.args.try_get("password")?.string()?.to_owned();
                    let outcome = login::login(ctx, keys, &email, &password).await.map_err(AppError::into_graphql)?;
                    let viewer = load_viewer(ctx, &outcome.principal).await.map_err(AppError::into_graphql)?;
                    Ok(Some(FieldValue::owned_any(AuthPayloadView {
                        token: outcome.token,
                        csrf_token: outcome.csrf_token,
                        expires_at: outcome.expires_at,
                        viewer,
                    })))
                })
            }),
        )
        .arg("email", "String!")
        .arg("password", "String!"),
    );
    c.mutation(FieldDecl::root(
        "logout",
        "Boolean!",
        Entry::Authenticated,
        resolver(|rc| {
            FieldFuture::new(async move {
                let ctx = ctx_of(&rc)?;
                login::logout(ctx).await.map_err(AppError::into_graphql)?;
                Ok(Some(Value::Boolean(true)))
            })
        }),
    ));
    c.mutation(
        FieldDecl::root(
            "changePassword",
            "Boolean!",
            Entry::Authenticated,
            resolver(|rc| {
                FieldFuture::new(async move {
                    let ctx = ctx_of(&rc)?;
                    let current = rc.args.try_get("currentPassword")?.string()?.to_owned();
                    let new = rc.args.try_get("newPassword")?.string()?.to_owned();
                    login::change_password(ctx, &current, &new).await.map_err(AppError::into_graphql)?;
                    Ok(Some(Value::Boolean(true)))
                })
            }),
        )
        .arg("currentPassword", "String!")
        .arg("newPassword", "String!"),
    );
}
