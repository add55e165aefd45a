//! Onboarding (POLICY.md section 11): `createTenant` (SYSTEM_ADMIN), `issueInvitation`
//! (PROGRAM_ADMIN) and `acceptInvitation` (anonymous), with the `Invitation` and
//! `TenantProvisioning` payloads. The payloads are structural: they exist only as the answer
//! to the mutation that made them, once.

use async_graphql::Value;
use async_graphql::dynamic::{FieldFuture, FieldValue};

use super::decl::{Entry, FieldDecl, ObjectDecl};
use super::identity::AuthPayloadView;
use super::mutation::{credential_mutation, mutation};
use super::schema::{Catalog, leaf, resolver};
use super::{datetime, uuid};
use crate::authz::{Action, Resource};
use crate::domain::onboarding::{self, IssuedInvitation, NewTenant, ProvisionedTenant};
use crate::domain::operations::{MAX_DISPLAY_NAME_LEN, MAX_EMAIL_LEN};
use crate::graphql::decl::ty;
use crate::identity::invitation;
use crate::kinds::{ClientKind, Role};

fn string(s: &str) -> Value {
    Value::String(s.to_owned())
}

pub fn declare(c: &mut Catalog) {
    c.object(
        ObjectDecl::structural("Invitation")
            .field(FieldDecl::structural(
                "userId",
                ty::req("ID"),
                leaf(|_, v: &IssuedInvitation| Ok(Some(uuid(v.user_id)))),
            ))
            .field(FieldDecl::structural(
                "email",
                ty::req("String"),
                leaf(|_, v: &IssuedInvitation| Ok(Some(string(&v.email)))),
            ))
            .field(
                FieldDecl::structural(
                    "token",
                    ty::req("String"),
                    leaf(|_, v: &IssuedInvitation| Ok(Some(string(&v.token)))),
                )
                .describe("One-time secret for acceptInvitation; shown once, only a hash is stored."),
            )
            .field(FieldDecl::structural(
                "expiresAt",
                ty::req("DateTime"),
                leaf(|_, v: &IssuedInvitation| Ok(Some(datetime(v.expires_at)))),
            )),
    );
    c.object(
        ObjectDecl::structural("TenantProvisioning")
            .field(FieldDecl::structural(
                "tenantId",
                ty::req("ID"),
                leaf(|_, v: &ProvisionedTenant| Ok(Some(uuid(v.tenant_id)))),
            ))
            .field(FieldDecl::structural(
                "slug",
                ty::req("String"),
                leaf(|_, v: &ProvisionedTenant| Ok(Some(string(&v.slug)))),
            ))
            .field(FieldDecl::structural(
                "invitation",
                ty::req("Invitation"),
                resolver(|rc| {
                    FieldFuture::new(async move {
                        let v = rc.parent_value.try_downcast_ref::<ProvisionedTenant>()?;
                        Ok(Some(FieldValue::owned_any(v.invitation.clone())))
                    })
                }),
            )),
    );

    c.mutation(
        FieldDecl::root(
            "createTenant",
            ty::req("TenantProvisioning"),
            Entry::Matrix(Resource::Tenants, Action::Create),
            mutation(|ctx, args| async move {
                let new = NewTenant {
                    slug: args.text("slug", *onboarding::SLUG_LEN.end())?,
                    name: args.text("name", onboarding::MAX_TENANT_NAME_LEN)?,
                    admin_email: args.text("adminEmail", MAX_EMAIL_LEN)?,
                    admin_display_name: args.text("adminDisplayName", MAX_DISPLAY_NAME_LEN)?,
                };
                Ok(FieldValue::owned_any(onboarding::create_tenant(&ctx, new).await?))
            }),
        )
        .arg("slug", ty::req("String"))
        .arg("name", ty::req("String"))
        .arg("adminEmail", ty::req("String"))
        .arg("adminDisplayName", ty::req("String"))
        .describe(
            "SYSTEM_ADMIN: create a tenant and invite its first program admin. slug: 3 to 40 of a-z, 0-9 and '-', \
             starting with a letter.",
        ),
    );
    c.mutation(
        FieldDecl::root(
            "issueInvitation",
            ty::req("Invitation"),
            Entry::Roles(&[Role::ProgramAdmin]),
            mutation(|ctx, args| async move {
                Ok(FieldValue::owned_any(onboarding::issue_invitation(&ctx, args.id("userId")?).await?))
            }),
        )
        .arg("userId", ty::req("ID"))
        .describe(
            "PROGRAM_ADMIN: a new one-time invitation for an invited user of its tenant, or a password reset for an \
             active one (ends its sessions). Older invitations of that user stop working. Valid for 7 days.",
        ),
    );
    c.mutation(
        FieldDecl::root(
            "acceptInvitation",
            ty::req("AuthPayload"),
            Entry::Anonymous,
            credential_mutation(|ctx, keys, guard, a| async move {
                let token = a.secret("token")?;
                let password = a.as_typed("password")?;
                let client = a.opt_enum("client", ClientKind::parse)?.unwrap_or_default();
                let (outcome, _) = invitation::accept(&ctx, &keys, &guard, &token, &password, client).await?;
                Ok(FieldValue::owned_any(AuthPayloadView::of(&ctx, outcome).await?))
            }),
        )
        .arg("token", ty::req("String"))
        .arg("password", ty::req("String"))
        .enum_arg("client", ty::opt("ClientKind"), "BROWSER")
        .describe(
            "Anonymous: set the password of an invited (or reset) account with its one-time invitation token, and \
             sign in. Passwords: 12 to 128 characters, not the email address.",
        ),
    );
}
