//! `programMetrics(from, to): ProgramMetrics!` (PROGRAM_ADMIN, EXECUTIVE). The anonymity
//! rule and its reasoning are documented on [`crate::domain::metrics`].

use crate::graphql::decl::Ty;
use crate::graphql::decl::ty;
use async_graphql::Value;
use async_graphql::dynamic::FieldValue;

use crate::authz::{Access, Action, Resource, VisibilityTag};
use crate::domain::metrics::{self, ProgramMetrics};
use crate::graphql::decl::{Entry, FieldDecl, ObjectDecl};
use crate::graphql::mutation::query;
use crate::graphql::schema::{Catalog, leaf};

const ACCESS: Access = Access::Resource(Resource::ProgramMetrics);

fn figure(name: &'static str, ty: Ty, value: fn(&ProgramMetrics) -> Value) -> FieldDecl {
    FieldDecl::tagged(
        name,
        ty,
        VisibilityTag::AdminAggregate,
        ACCESS,
        leaf(move |_, m: &ProgramMetrics| Ok(Some(value(m)))),
    )
}

fn opt_int(v: Option<i64>) -> Value {
    v.map(Value::from).unwrap_or(Value::Null)
}

fn opt_float(v: Option<f64>) -> Value {
    v.map(Value::from).unwrap_or(Value::Null)
}

pub fn declare(c: &mut Catalog) {
    c.object(
        ObjectDecl::new("ProgramMetrics")
            .field(
                figure("activeCoachees", ty::opt("Int"), |m| opt_int(m.active_coachees))
                    .describe("Null when suppressed: fewer than 5 coachees behind the figure."),
            )
            .field(figure("sessionsCompleted", ty::opt("Int"), |m| opt_int(m.sessions_completed)))
            .field(figure("actionItemCompletionRate", ty::opt("Float"), |m| opt_float(m.action_item_completion_rate)))
            .field(figure("averageSatisfaction", ty::opt("Float"), |m| opt_float(m.average_satisfaction)))
            .field(figure("suppressed", ty::req("Boolean"), |m| Value::Boolean(m.suppressed))),
    );
    c.query(
        FieldDecl::root(
            "programMetrics",
            ty::req("ProgramMetrics"),
            Entry::Matrix(Resource::ProgramMetrics, Action::Read),
            query(|ctx, a| async move {
                let (from, to) = (a.opt_datetime("from")?, a.opt_datetime("to")?);
                Ok(Some(FieldValue::owned_any(metrics::program_metrics(&ctx, from, to).await?)))
            }),
        )
        .arg("from", ty::opt("DateTime"))
        .arg("to", ty::opt("DateTime"))
        .describe(
            "Tenant-level figures over whole UTC months (from and to are widened to their \
             months); suppressed when any month has 1-4 coachees behind a figure or the range \
             fewer than 5.",
        ),
    );
}
