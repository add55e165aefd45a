//! `User` and the profile queries.

use async_graphql::Value;
use async_graphql::dynamic::{FieldFuture, FieldValue};
use sea_orm::EntityTrait;

use super::decl::{Entry, FieldDecl, ObjectDecl, ctx_of};
use super::schema::{Catalog, enum_value, leaf, resolver};
use super::uuid;
use crate::authz::{Access, Action, Resource, Scope, VisibilityTag, profile_fields};
use crate::ctx::Ctx;
use crate::db::entities::users;
use crate::error::{AppError, AppResult};

/// A user row together with how the viewer is related to it, which decides the
/// profile fields this row shows.
#[derive(Debug, Clone)]
pub struct UserView {
    pub model: users::Model,
    /// The grant scope the row was reached through; `Own` for the caller's own profile.
    pub scope: Scope,
}

/// Row-level check of a profile field: a scope with a field list shows only those fields.
fn profile_field(view: &UserView, field: &str) -> AppResult<()> {
    match profile_fields(view.scope) {
        Some(allowed) if !allowed.contains(&field) => Err(AppError::Forbidden),
        _ => Ok(()),
    }
}

fn profile_leaf(field: &'static str, value: fn(&users::Model) -> Value) -> FieldDecl {
    let ty = match field {
        "id" => "ID!",
        "role" => "Role!",
        _ => "String!",
    };
    FieldDecl::tagged(
        field,
        ty,
        VisibilityTag::ClientVisible,
        Access::Profile,
        leaf(move |_ctx: &Ctx, v: &UserView| {
            profile_field(v, field)?;
            Ok(Some(value(&v.model)))
        }),
    )
}

pub async fn load_own_profile(ctx: &Ctx) -> AppResult<Option<UserView>> {
    let p = ctx.require()?;
    let model = users::Entity::find_by_id(p.user_id)
        .one(&*ctx.db().conn().await?)
        .await?;
    Ok(model
        .filter(|m| m.tenant_id == p.tenant_id)
        .map(|model| UserView {
            model,
            scope: Scope::Own,
        }))
}

pub fn declare(c: &mut Catalog) {
    c.object(
        ObjectDecl::new("User")
            .field(profile_leaf("id", |u| uuid(u.id)))
            .field(profile_leaf("role", |u| enum_value(u.role.as_str())))
            .field(profile_leaf("displayName", |u| {
                Value::String(u.display_name.clone())
            }))
            .field(profile_leaf("email", |u| Value::String(u.email.clone()))),
    );
    c.query(
        FieldDecl::root(
            "me",
            "User",
            Entry::Matrix(Resource::OwnProfile, Action::Read),
            resolver(|rc| {
                FieldFuture::new(async move {
                    let ctx = ctx_of(&rc)?;
                    let me = load_own_profile(ctx)
                        .await
                        .map_err(AppError::into_graphql)?;
                    Ok(me.map(FieldValue::owned_any))
                })
            }),
        )
        .describe("Own profile (roles with R on own_profile)."),
    );
}
