//! Root fields: typed arguments with clear errors ([`Args`], the one argument parser), and
//! two wrappers through which every root field resolves, so that its errors reach the one
//! masking boundary (`AppError::into_graphql`) in one place: [`query`], and [`mutation`],
//! which also runs inside its own savepoint, so a failed mutation leaves no partial write
//! while the request's audit events (denials included) are still recorded.

use std::sync::Arc;

use async_graphql::dynamic::{FieldFuture, FieldValue, ResolverContext};
use async_graphql::indexmap::IndexMap;
use async_graphql::{Lookahead, Name, Value};
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::decl::Resolver;
use super::schema::resolver;
use crate::ctx::Ctx;
use crate::domain::loaders::Loaders;
use crate::error::{AppError, AppResult};
use crate::identity::credential::CredentialGuard;
use crate::identity::token::TokenKeys;

/// Longest secret argument accepted (passwords are at most 128 characters).
pub const MAX_SECRET: usize = 1024;

/// A field's arguments, owned (so the resolver's future is `'static`), with what paging
/// needs besides them: the server's keys (cursors are sealed) and what of a connection the
/// selection asks for; and, for prefetching, the fields selected on the objects the field
/// returns and the request's loaders.
#[derive(Debug, Clone)]
pub struct Args {
    values: IndexMap<Name, Value>,
    keys: Option<Arc<TokenKeys>>,
    wants: Wants,
    selected: Vec<Selected>,
    loaders: Option<Arc<Loaders>>,
}

/// The parts of a connection that cost a statement or a row, selected or not.
#[derive(Debug, Clone, Copy, Default)]
pub struct Wants {
    pub total_count: bool,
    pub next_page: bool,
}

impl Wants {
    fn of(ahead: &Lookahead<'_>) -> Self {
        Wants {
            total_count: ahead.field("totalCount").exists(),
            next_page: ahead.field("pageInfo").field("hasNextPage").exists(),
        }
    }
}

/// A field selected on the objects a field returns (on its `nodes`, for a connection),
/// with that field's own arguments.
#[derive(Debug, Clone)]
pub struct Selected {
    pub name: String,
    pub args: Args,
}

impl Args {
    pub fn from_rc(rc: &ResolverContext<'_>) -> Self {
        let ahead = rc.look_ahead();
        let keys = rc.data::<Arc<TokenKeys>>().ok().cloned();
        let nodes = ahead.field("nodes");
        let objects = if nodes.exists() { nodes.selection_fields() } else { vec![rc.ctx.field()] };
        let selected = objects
            .iter()
            .flat_map(|object| object.selection_set())
            // A field under `@skip`/`@include` may not be resolved: not worth a read.
            .filter(|field| field.directives().is_ok_and(|d| d.is_empty()))
            .map(|field| Selected {
                name: field.name().to_owned(),
                args: Args {
                    // Arguments that do not resolve are left to the field, which reports them.
                    values: field.arguments().map(|a| a.into_iter().collect()).unwrap_or_default(),
                    keys: keys.clone(),
                    wants: Wants::of(&Lookahead::from(field)),
                    selected: Vec::new(),
                    loaders: None,
                },
            })
            .collect();
        Args {
            values: rc.args.as_index_map().clone(),
            keys,
            wants: Wants::of(&ahead),
            selected,
            loaders: rc.data::<Arc<Loaders>>().ok().cloned(),
        }
    }

    /// The fields selected on the objects this field returns.
    pub fn selected(&self) -> &[Selected] {
        &self.selected
    }

    /// The request's loaders (absent outside a request's execution).
    pub fn loaders(&self) -> Option<&Loaders> {
        self.loaders.as_deref()
    }

    pub fn loaders_required(&self) -> AppResult<&Loaders> {
        self.loaders().ok_or_else(|| AppError::internal("request without loaders"))
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.values.get(name).filter(|v| !matches!(v, Value::Null))
    }

    /// The server's keys (they seal paging cursors).
    pub fn keys(&self) -> AppResult<&TokenKeys> {
        self.keys.as_deref().ok_or_else(|| AppError::internal("request without token keys"))
    }

    pub fn wants(&self) -> Wants {
        self.wants
    }

    pub fn opt_id(&self, name: &str) -> AppResult<Option<Uuid>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => {
                Uuid::parse_str(s).map(Some).map_err(|_| AppError::bad_input(format!("{name} is not a valid ID")))
            }
            Some(_) => Err(AppError::bad_input(format!("{name} must be an ID"))),
        }
    }

    pub fn id(&self, name: &str) -> AppResult<Uuid> {
        self.opt_id(name)?.ok_or_else(|| AppError::bad_input(format!("{name} is required")))
    }

    /// A secret as given (a password, a token): not trimmed, at most [`MAX_SECRET`] bytes,
    /// without NUL (which PostgreSQL text cannot hold).
    pub fn secret(&self, name: &str) -> AppResult<String> {
        match self.get(name) {
            Some(Value::String(s)) if s.contains('\0') => {
                Err(AppError::bad_input(format!("{name} contains a NUL character")))
            }
            Some(Value::String(s)) if s.len() <= MAX_SECRET => Ok(s.clone()),
            Some(Value::String(_)) => Err(AppError::bad_input(format!("{name} is too long"))),
            Some(_) => Err(AppError::bad_input(format!("{name} must be a string"))),
            None => Err(AppError::bad_input(format!("{name} is required"))),
        }
    }

    /// A trimmed string of 1..=`max` characters.
    pub fn text(&self, name: &str, max: usize) -> AppResult<String> {
        self.opt_text(name, max)?.ok_or_else(|| AppError::bad_input(format!("{name} is required")))
    }

    pub fn opt_text(&self, name: &str, max: usize) -> AppResult<Option<String>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => {
                let s = s.trim();
                let len = s.chars().count();
                if len == 0 {
                    Err(AppError::bad_input(format!("{name} must not be empty")))
                } else if len > max {
                    Err(AppError::bad_input(format!("{name} must be at most {max} characters")))
                } else if s.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') {
                    Err(AppError::bad_input(format!("{name} contains control characters")))
                } else if s.chars().any(is_bidi_control) {
                    Err(AppError::bad_input(format!("{name} contains bidirectional control characters")))
                } else {
                    Ok(Some(s.to_owned()))
                }
            }
            Some(_) => Err(AppError::bad_input(format!("{name} must be a string"))),
        }
    }

    /// A string exactly as typed, of any length (a password checked against a hash: an
    /// oversized one is just a wrong one). NUL is refused.
    pub fn as_typed(&self, name: &str) -> AppResult<String> {
        match self.get(name) {
            Some(Value::String(s)) if s.contains('\0') => {
                Err(AppError::bad_input(format!("{name} contains a NUL character")))
            }
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(AppError::bad_input(format!("{name} must be a string"))),
            None => Err(AppError::bad_input(format!("{name} is required"))),
        }
    }

    /// An email address as typed for a login: one line, no control or bidirectional
    /// control characters, at most 254 bytes (trimmed and lower-cased later).
    pub fn email(&self, name: &str) -> AppResult<String> {
        let s = self.secret(name)?;
        if s.len() > 254 {
            return Err(AppError::bad_input(format!("{name} is too long")));
        }
        if s.chars().any(|c| c.is_control() || is_bidi_control(c)) {
            return Err(AppError::bad_input(format!("{name} contains control characters")));
        }
        Ok(s)
    }

    /// An integer within `range`.
    pub fn opt_int(&self, name: &str, range: std::ops::RangeInclusive<i64>) -> AppResult<Option<i64>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => {
                let v = n.as_i64().ok_or_else(|| AppError::bad_input(format!("{name} must be an integer")))?;
                if range.contains(&v) {
                    Ok(Some(v))
                } else {
                    Err(AppError::bad_input(format!("{name} must be between {} and {}", range.start(), range.end())))
                }
            }
            Some(_) => Err(AppError::bad_input(format!("{name} must be an integer"))),
        }
    }

    pub fn int(&self, name: &str, range: std::ops::RangeInclusive<i64>) -> AppResult<i64> {
        self.opt_int(name, range)?.ok_or_else(|| AppError::bad_input(format!("{name} is required")))
    }

    pub fn opt_bool(&self, name: &str) -> AppResult<Option<bool>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Boolean(b)) => Ok(Some(*b)),
            Some(_) => Err(AppError::bad_input(format!("{name} must be a boolean"))),
        }
    }

    pub fn bool(&self, name: &str) -> AppResult<bool> {
        self.opt_bool(name)?.ok_or_else(|| AppError::bad_input(format!("{name} is required")))
    }

    /// An enum argument, by its GraphQL name.
    pub fn opt_enum<T>(&self, name: &str, parse: impl Fn(&str) -> Option<T>) -> AppResult<Option<T>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Enum(e)) => {
                parse(e.as_str()).map(Some).ok_or_else(|| AppError::bad_input(format!("{name}: unknown value")))
            }
            Some(Value::String(s)) => {
                parse(s).map(Some).ok_or_else(|| AppError::bad_input(format!("{name}: unknown value")))
            }
            Some(_) => Err(AppError::bad_input(format!("{name} must be an enum value"))),
        }
    }

    pub fn enum_<T>(&self, name: &str, parse: impl Fn(&str) -> Option<T>) -> AppResult<T> {
        self.opt_enum(name, parse)?.ok_or_else(|| AppError::bad_input(format!("{name} is required")))
    }

    /// A `DateTime` (RFC 3339).
    pub fn opt_datetime(&self, name: &str) -> AppResult<Option<DateTime<Utc>>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => DateTime::parse_from_rfc3339(s)
                .map(|t| Some(crate::clock::micros(t.with_timezone(&Utc))))
                .map_err(|_| AppError::bad_input(format!("{name} must be an RFC 3339 date-time"))),
            Some(_) => Err(AppError::bad_input(format!("{name} must be a DateTime"))),
        }
    }

    pub fn datetime(&self, name: &str) -> AppResult<DateTime<Utc>> {
        self.opt_datetime(name)?.ok_or_else(|| AppError::bad_input(format!("{name} is required")))
    }

    /// A `Date` (YYYY-MM-DD).
    pub fn opt_date(&self, name: &str) -> AppResult<Option<NaiveDate>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(Some)
                .map_err(|_| AppError::bad_input(format!("{name} must be a date (YYYY-MM-DD)"))),
            Some(_) => Err(AppError::bad_input(format!("{name} must be a Date"))),
        }
    }

    /// An input object argument.
    pub fn object(&self, name: &str) -> AppResult<Args> {
        match self.get(name) {
            Some(Value::Object(map)) => Ok(Args {
                values: map.clone(),
                keys: self.keys.clone(),
                wants: Wants::default(),
                selected: Vec::new(),
                loaders: None,
            }),
            None => Err(AppError::bad_input(format!("{name} is required"))),
            Some(_) => Err(AppError::bad_input(format!("{name} must be an object"))),
        }
    }
}

/// The resolver of a mutation: `run(ctx, args)` inside a savepoint of the request's
/// transaction; its errors go through the one masking boundary.
pub fn mutation<F, Fut>(run: F) -> Resolver
where
    F: Fn(Arc<Ctx>, Args) -> Fut + Send + Sync + Copy + 'static,
    Fut: Future<Output = AppResult<FieldValue<'static>>> + Send + 'static,
{
    resolver(move |rc| {
        FieldFuture::new(async move {
            let ctx =
                rc.data::<Arc<Ctx>>().cloned().map_err(|_| AppError::internal("request without Ctx").into_graphql())?;
            let args = Args::from_rc(&rc);
            let tx_ctx = ctx.clone();
            let value = tx_ctx.db().atomic(run(ctx, args)).await.map_err(AppError::into_graphql)?;
            Ok(Some(value))
        })
    })
}

/// The resolver of a root query: `run(ctx, args)`, its errors through the one masking
/// boundary (a query needs no savepoint: it writes nothing but the request's audit events).
pub fn query<F, Fut>(run: F) -> Resolver
where
    F: Fn(Arc<Ctx>, Args) -> Fut + Send + Sync + Copy + 'static,
    Fut: Future<Output = AppResult<Option<FieldValue<'static>>>> + Send + 'static,
{
    resolver(move |rc| {
        FieldFuture::new(async move {
            let ctx =
                rc.data::<Arc<Ctx>>().cloned().map_err(|_| AppError::internal("request without Ctx").into_graphql())?;
            run(ctx, Args::from_rc(&rc)).await.map_err(AppError::into_graphql)
        })
    })
}

/// The resolver of a mutation that handles credentials (`login`, `logout`,
/// `changePassword`, `deleteMyAccount`): like [`mutation`], but outside a savepoint, on
/// purpose: a password check pauses the request's transaction while it hashes, and what a
/// failed check records (failure counters, blocks, its audit events) must stay whatever the
/// request does next. It gets the server's token keys and credential guard.
pub fn credential_mutation<F, Fut>(run: F) -> Resolver
where
    F: Fn(Arc<Ctx>, Arc<crate::identity::token::TokenKeys>, Arc<CredentialGuard>, Args) -> Fut
        + Send
        + Sync
        + Copy
        + 'static,
    Fut: Future<Output = AppResult<FieldValue<'static>>> + Send + 'static,
{
    resolver(move |rc| {
        FieldFuture::new(async move {
            let ctx =
                rc.data::<Arc<Ctx>>().cloned().map_err(|_| AppError::internal("request without Ctx").into_graphql())?;
            let keys = rc
                .data::<Arc<crate::identity::token::TokenKeys>>()
                .cloned()
                .map_err(|_| AppError::internal("request without token keys").into_graphql())?;
            let guard = rc
                .data::<Arc<CredentialGuard>>()
                .cloned()
                .map_err(|_| AppError::internal("request without credential guard").into_graphql())?;
            let value = run(ctx, keys, guard, Args::from_rc(&rc)).await.map_err(AppError::into_graphql)?;
            Ok(Some(value))
        })
    })
}

/// Characters that reorder how text is displayed (Trojan Source, spoofed names): refused in
/// text inputs, which other people will read.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `true` as a mutation answer.
pub fn done() -> FieldValue<'static> {
    FieldValue::value(Value::Boolean(true))
}
