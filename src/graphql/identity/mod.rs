//! Viewer, login, logout, changePassword.

use crate::graphql::decl::ty;
use async_graphql::Value;
use async_graphql::dynamic::{FieldFuture, FieldValue};
use uuid::Uuid;

use super::decl::{Entry, FieldDecl, ObjectDecl};
use super::mutation::{credential_mutation, done, query};
use super::schema::{Catalog, enum_value, leaf, resolver};
use super::{datetime, uuid};
use crate::ctx::{AuditRecord, Ctx, Principal};
use crate::error::{AppError, AppResult};
use crate::identity::{device, login};
use crate::kinds::{AuditOutcome, ClientKind, Role};

/// `Viewer`: the caller's own identity (a structural type: no tags).
#[derive(Debug, Clone)]
pub struct ViewerView {
    pub id: Uuid,
    pub role: Role,
    pub tenant_id: Option<Uuid>,
    pub display_name: String,
}

pub struct AuthPayloadView {
    token: String,
    csrf_token: String,
    expires_at: chrono::DateTime<chrono::Utc>,
    refresh_token: Option<String>,
    viewer: ViewerView,
}

impl AuthPayloadView {
    /// The answer of a sign-in (`login`, `refreshSession`, `acceptInvitation`).
    pub async fn of(ctx: &Ctx, outcome: login::LoginOutcome) -> AppResult<Self> {
        let viewer = load_viewer(ctx, &outcome.principal).await?;
        Ok(Self {
            token: outcome.token,
            csrf_token: outcome.csrf_token,
            expires_at: outcome.expires_at,
            refresh_token: outcome.refresh_token,
            viewer,
        })
    }
}

pub async fn load_viewer(ctx: &Ctx, p: &Principal) -> AppResult<ViewerView> {
    let user = crate::domain::reads::principal_user(ctx, p.user_id).await?;
    Ok(ViewerView { id: user.id, role: user.role, tenant_id: user.tenant_id, display_name: user.display_name })
}

pub fn declare(c: &mut Catalog) {
    c.object(
        ObjectDecl::structural("Viewer")
            .field(FieldDecl::structural("id", ty::req("ID"), leaf(|_, v: &ViewerView| Ok(Some(uuid(v.id))))))
            .field(FieldDecl::structural(
                "role",
                ty::req("Role"),
                leaf(|_, v: &ViewerView| Ok(Some(enum_value(v.role.as_str())))),
            ))
            .field(FieldDecl::structural(
                "tenantId",
                ty::opt("ID"),
                leaf(|_, v: &ViewerView| Ok(v.tenant_id.map(uuid))),
            ))
            .field(FieldDecl::structural(
                "displayName",
                ty::req("String"),
                leaf(|_, v: &ViewerView| Ok(Some(Value::String(v.display_name.clone())))),
            )),
    );
    c.object(
        ObjectDecl::structural("AuthPayload")
            .field(FieldDecl::structural(
                "token",
                ty::req("String"),
                leaf(|_, v: &AuthPayloadView| Ok(Some(Value::String(v.token.clone())))),
            ))
            .field(FieldDecl::structural(
                "expiresAt",
                ty::req("DateTime"),
                leaf(|_, v: &AuthPayloadView| Ok(Some(datetime(v.expires_at)))),
            ))
            .field(FieldDecl::structural(
                "csrfToken",
                ty::req("String"),
                leaf(|_, v: &AuthPayloadView| Ok(Some(Value::String(v.csrf_token.clone())))),
            ))
            .field(
                FieldDecl::structural(
                    "refreshToken",
                    ty::opt("String"),
                    leaf(|_, v: &AuthPayloadView| Ok(v.refresh_token.clone().map(Value::String))),
                )
                .describe("DEVICE sessions only; shown once."),
            )
            .field(FieldDecl::structural(
                "viewer",
                ty::req("Viewer"),
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
            ty::req("Viewer"),
            Entry::Authenticated,
            query(|ctx, _| async move {
                let p = *ctx.require()?;
                Ok(Some(FieldValue::owned_any(load_viewer(&ctx, &p).await?)))
            }),
        )
        .describe("Who is calling; every authenticated principal may read it."),
    );
    // The anonymous schema needs a Query type too; `viewer` there answers UNAUTHENTICATED.
    c.query(
        FieldDecl::root(
            "viewer",
            ty::req("Viewer"),
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
            ty::req("AuthPayload"),
            Entry::Anonymous,
            credential_mutation(|ctx, keys, guard, a| async move {
                let email = a.email("email").inspect_err(|_| {
                    ctx.audit(
                        AuditRecord::by(&ctx, "LOGIN_FAILED", "auth", AuditOutcome::Denied).reason("malformed email"),
                    )
                })?;
                let password = a.secret("password")?;
                let tenant = a.opt_text("tenant", *crate::domain::onboarding::SLUG_LEN.end())?;
                let client = a.opt_enum("client", ClientKind::parse)?.unwrap_or_default();
                let outcome = login::login(&ctx, &keys, &guard, &email, &password, tenant.as_deref(), client).await?;
                Ok(FieldValue::owned_any(AuthPayloadView::of(&ctx, outcome).await?))
            }),
        )
        .arg("email", ty::req("String"))
        .arg("password", ty::req("String"))
        .arg("tenant", ty::opt("String"))
        .enum_arg("client", ty::opt("ClientKind"), "BROWSER")
        .describe(
            "tenant: the tenant's slug. Without it, an email with accounts in several tenants signs in only where \
             the password matches exactly one of them.",
        ),
    );
    c.mutation(
        FieldDecl::root(
            "refreshSession",
            ty::req("AuthPayload"),
            Entry::Anonymous,
            credential_mutation(|ctx, keys, _, a| async move {
                let outcome = device::refresh(&ctx, &keys, &a.secret("refreshToken")?).await?;
                Ok(FieldValue::owned_any(AuthPayloadView::of(&ctx, outcome).await?))
            }),
        )
        .arg("refreshToken", ty::req("String"))
        .describe(
            "DEVICE sessions: trade a refresh token for a new token and refresh token. Each refresh token works \
             once; reusing one ends the session.",
        ),
    );
    c.mutation(FieldDecl::root(
        "logout",
        ty::req("Boolean"),
        Entry::Authenticated,
        credential_mutation(|ctx, _, _, _| async move {
            login::logout(&ctx).await?;
            Ok(done())
        }),
    ));
    c.mutation(
        FieldDecl::root(
            "changePassword",
            ty::req("Boolean"),
            Entry::Authenticated,
            credential_mutation(|ctx, _, guard, a| async move {
                login::change_password(&ctx, &guard, &a.secret("currentPassword")?, &a.secret("newPassword")?).await?;
                Ok(done())
            }),
        )
        .arg("currentPassword", ty::req("String"))
        .arg("newPassword", ty::req("String")),
    );
}
