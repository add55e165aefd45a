//! `programMetrics(from, to): ProgramMetrics!` (PROGRAM_ADMIN, EXECUTIVE). The anonymity
//! rule and its reasoning are documented on [`crate::domain::metrics`].

use async_graphql::Value;
use async_graphql::dynamic::{FieldFuture, FieldValue};

use super::datetime_arg;
use crate::authz::{Access, Action, Resource, VisibilityTag};
use crate::domain::metrics::{self, ProgramMetrics};
use crate::error::AppError;
use crate::graphql::decl::{Entry, FieldDecl, ObjectDecl, ctx_of};
use crate::graphql::schema::{Catalog, leaf, resolver};

const ACCESS: Access = Access::Resource(Resource::ProgramMetrics);

fn figure(name: &'static str, ty: &'static str, value: fn(&ProgramMetrics) -> Value) -> FieldDecl {
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
                figure("activeCoachees", "Int", |m| opt_int(m.active_coachees))
                    .describe("Null when suppressed: fewer than 5 coachees behind the figure."),
            )
            .field(figure("sessionsCompleted", "Int", |m| opt_int(m.sessions_completed)))
            .field(figure("actionItemCompletionRate", "Float", |m| opt_float(m.action_item_completion_rate)))
            .field(figure("averageSatisfaction", "Float", |m| opt_float(m.average_satisfaction)))
            .field(figure("suppressed", "Boolean!", |m| Value::Boolean(m.suppressed))),
    );
    c.query(
        FieldDecl::root(
            "programMetrics",
            "ProgramMetrics!",
            Entry::Matrix(Resource::ProgramMetrics, Action::Read),
            resolver(|rc| {
                FieldFuture::new(async move {
                    let ctx = ctx_of(&rc)?;
                    let from = datetime_arg(&rc, "from").map_err(AppError::into_graphql)?;
                    let to = datetime_arg(&rc, "to").map_err(AppError::into_graphql)?;
                    let m = metrics::program_metrics(ctx, from, to).await.map_err(AppError::into_graphql)?;
                    Ok(Some(FieldValue::owned_any(m)))
                })
            }),
        )
        .arg("from", "DateTime")
        .arg("to", "DateTime")
        .describe(
            "Tenant-level figures over whole UTC months (from and to are widened to their \
             months); suppressed when any month has 1-4 coachees behind a figure or the range \
             fewer than 5.",
        ),
    );
}
