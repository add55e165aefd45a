//! `deleteMyAccount` and `deleteCoachee` ([`crate::domain::rights`]).

use crate::authz::{Action, Resource};
use crate::domain::rights;
use crate::graphql::decl::ty;
use crate::graphql::decl::{Entry, FieldDecl, Resolver};
use crate::graphql::mutation::{credential_mutation, done, mutation};
use crate::graphql::schema::Catalog;
use crate::kinds::Role;

/// Like [`mutation`], but the password is taken exactly as typed (`Args::text` would trim
/// it); a wrong or oversized one is INVALID_CREDENTIALS like any other wrong password.
fn delete_my_account() -> Resolver {
    credential_mutation(|ctx, _, guard, a| async move {
        rights::delete_my_account(&ctx, &guard, &a.as_typed("password")?).await?;
        Ok(done())
    })
}

pub fn declare(c: &mut Catalog) {
    c.mutation(
        FieldDecl::root(
            "deleteMyAccount",
            ty::req("Boolean"),
            // COACHEE and COACH: the D of own_profile.
            Entry::Matrix(Resource::OwnProfile, Action::Delete),
            delete_my_account(),
        )
        .arg("password", ty::req("String"))
        .describe(
            "COACHEE and COACH: deletes the caller's account and every row about it, at once. \
             The password is asked again.",
        ),
    );
    c.mutation(
        FieldDecl::root(
            "deleteCoachee",
            ty::req("Boolean"),
            // POLICY.md section 10 ("a coach can delete a coachee it coaches"): no matrix cell.
            Entry::Roles(&[Role::Coach]),
            mutation(|ctx, args| async move {
                rights::delete_coachee(&ctx, args.id("id")?).await?;
                Ok(done())
            }),
        )
        .arg("id", ty::req("ID"))
        .describe("COACH: deletes a coachee actively assigned to it and every row about it, at once."),
    );
}
