//! Per-role schemas. Each role gets its own `dynamic::Schema` holding only the fields its
//! clearance and matrix rows allow: a hidden field is not merely invisible, it does not
//! exist, so validation rejects it exactly like a misspelled one through any path (alias,
//! fragment, nested relation, mutation payload), and suggestions are off.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use async_graphql::dynamic::{
    Enum, EnumItem, Field, FieldFuture, InputObject, InputValue, Object, ResolverContext, Scalar, Schema, SchemaError,
};
use async_graphql::resolver_utils::EnumType;
use async_graphql::{Name, Value};

use super::decl::{FieldDecl, ObjectDecl, Resolver, Ty, ctx_of, guarded};
use crate::authz::{self, VisibilityTag};
use crate::error::{AppError, AppResult};
use crate::kinds::Role;

pub const MAX_DEPTH: usize = 16;
pub const MAX_COMPLEXITY: usize = 5_000;

/// Which schema to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Audience {
    /// Everything: the contract, written to `schema.graphql`. Never served.
    Contract,
    /// Unauthenticated callers: login only.
    Anonymous,
    Role(Role),
    /// A PROGRAM_ADMIN holding an active break-glass grant (POLICY.md section 6): its own
    /// schema plus the coaching content a grant opens ([`authz::field_in_break_glass_schema`]).
    /// Which coachee's rows those fields show is the request's `Reach`'s business.
    BreakGlass,
}

impl Audience {
    fn role(self) -> Option<Role> {
        match self {
            Audience::Role(r) => Some(r),
            _ => None,
        }
    }
}

#[derive(Clone)]
pub struct EnumDecl {
    pub name: &'static str,
    pub items: Vec<&'static str>,
    pub description: Option<&'static str>,
}

#[derive(Clone)]
pub struct InputDecl {
    pub name: &'static str,
    pub fields: Vec<(&'static str, Ty)>,
}

/// Everything the API declares.
#[derive(Default, Clone)]
pub struct Catalog {
    pub objects: Vec<ObjectDecl>,
    pub query: Vec<FieldDecl>,
    pub mutation: Vec<FieldDecl>,
    pub enums: Vec<EnumDecl>,
    pub inputs: Vec<InputDecl>,
    pub scalars: Vec<&'static str>,
}

impl Catalog {
    pub fn object(&mut self, o: ObjectDecl) {
        self.objects.push(o);
    }
    pub fn query(&mut self, f: FieldDecl) {
        self.query.push(f);
    }
    pub fn mutation(&mut self, f: FieldDecl) {
        self.mutation.push(f);
    }
    pub fn enum_type<T: EnumType>(&mut self, name: &'static str) {
        self.enums.push(EnumDecl { name, items: T::items().iter().map(|i| i.name).collect(), description: None });
    }
    pub fn described_enum<T: EnumType>(&mut self, name: &'static str, description: &'static str) {
        self.enum_type::<T>(name);
        if let Some(e) = self.enums.last_mut() {
            e.description = Some(description);
        }
    }
    pub fn input(&mut self, i: InputDecl) {
        self.inputs.push(i);
    }
}

/// Builds a resolver from a closure; the bound makes the compiler infer its lifetimes.
pub fn resolver<F>(f: F) -> Resolver
where
    F: for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static,
{
    Arc::new(f)
}

/// A leaf field computed from the parent object (and the `Ctx`, for row-level checks).
pub fn leaf<T, F>(f: F) -> Resolver
where
    T: Any + Send + Sync,
    F: Fn(&crate::ctx::Ctx, &T) -> AppResult<Option<Value>> + Send + Sync + Copy + 'static,
{
    // Computed on the spot: a leaf needs no future of its own (the executor boxes one per
    // field already), which matters on answers of thousands of fields.
    resolver(move |rc| {
        let value = super::decl::ctx_ref(&rc).and_then(|ctx| {
            let parent = rc.parent_value.try_downcast_ref::<T>()?;
            f(ctx, parent).map_err(AppError::into_graphql)
        });
        match value {
            Ok(value) => FieldFuture::from_value(value),
            Err(e) => FieldFuture::new(async move { Err::<Option<Value>, _>(e) }),
        }
    })
}

pub fn enum_value(name: &str) -> Value {
    Value::Enum(Name::new(name))
}

struct Plan<'c> {
    objects: BTreeMap<&'static str, (&'c ObjectDecl, Vec<&'c FieldDecl>)>,
    query: Vec<&'c FieldDecl>,
    mutation: Vec<&'c FieldDecl>,
}

fn plan(catalog: &Catalog, audience: Audience) -> Plan<'_> {
    let role = audience.role();
    let in_schema = |f: &FieldDecl, structural: bool| match audience {
        Audience::Contract => true,
        Audience::Anonymous => f.tag.is_none() && f.entry.is_none_or(|e| e.admits(None)),
        Audience::Role(_) => f.in_schema_of(role, structural),
        Audience::BreakGlass => match (f.entry, f.tag, f.access) {
            (Some(entry), _, _) => entry.admits(Some(Role::ProgramAdmin)),
            (None, Some(tag), Some(access)) => authz::field_in_break_glass_schema(tag, access, f.name),
            _ => structural,
        },
    };
    let mut objects: BTreeMap<&'static str, (&ObjectDecl, Vec<&FieldDecl>)> = catalog
        .objects
        .iter()
        .map(|o| (o.name, (o, o.fields.iter().filter(|f| in_schema(f, o.structural)).collect())))
        .collect();
    let mut query: Vec<&FieldDecl> = catalog.query.iter().filter(|f| in_schema(f, false)).collect();
    let mut mutation: Vec<&FieldDecl> = catalog.mutation.iter().filter(|f| in_schema(f, false)).collect();
    // A root field may be declared once per kind of caller (e.g. `viewer` for anonymous
    // callers answers UNAUTHENTICATED); the contract lists each name once.
    let mut seen = BTreeSet::new();
    query.retain(|f| seen.insert(f.name));
    let mut seen = BTreeSet::new();
    mutation.retain(|f| seen.insert(f.name));

    // A field whose object type ended up empty goes too, until nothing changes.
    let declared: BTreeSet<&str> = objects.keys().copied().collect();
    loop {
        let present: BTreeSet<&str> =
            objects.iter().filter(|(_, (_, fields))| !fields.is_empty()).map(|(n, _)| *n).collect();
        let dangling = |f: &&FieldDecl| {
            let t = f.ty.name();
            !declared.contains(t) || present.contains(t)
        };
        let mut changed = false;
        for (decl, fields) in objects.values_mut() {
            let before = fields.len();
            fields.retain(dangling);
            // A connection without its nodes is no connection: drop the whole type.
            if decl.structural
                && decl.fields.iter().any(|f| f.name == "nodes")
                && !fields.iter().any(|f| f.name == "nodes")
            {
                fields.clear();
            }
            changed |= fields.len() != before;
        }
        let (q, m) = (query.len(), mutation.len());
        query.retain(dangling);
        mutation.retain(dangling);
        changed |= q != query.len() || m != mutation.len();
        if !changed {
            break;
        }
    }

    // Keep only object types reachable from the roots.
    let mut reachable = BTreeSet::new();
    let mut queue: VecDeque<&str> = query.iter().chain(&mutation).map(|f| f.ty.name()).collect();
    while let Some(t) = queue.pop_front() {
        if let Some((_, fields)) = objects.get(t)
            && reachable.insert(t)
        {
            queue.extend(fields.iter().map(|f| f.ty.name()));
        }
    }
    objects.retain(|name, (_, fields)| reachable.contains(name) && !fields.is_empty());
    Plan { objects, query, mutation }
}

/// The source of the stand-in error a failed non-null field hands the executor after
/// [`with_error_paths`] recorded the real one; [`execute`] drops it. A private type, so no
/// error of any other origin is taken for one.
#[derive(Debug)]
struct Reported;

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("internal error")
    }
}

/// Runs `request` on `schema`: the one way the server executes GraphQL. DataLoader batches
/// wait for the executor's pass ([`crate::telemetry::executor_passes`]), and the stand-ins of
/// errors already reported with their path are left out.
pub async fn execute(schema: &Schema, request: async_graphql::Request) -> async_graphql::Response {
    let mut response = crate::telemetry::executor_passes(schema.execute(request)).await;
    response.errors.retain(|e| e.source::<Reported>().is_none());
    response
}

/// async-graphql's dynamic executor reports a field's error without a path. Every field
/// error must say where it is (a response whose errors all lack a path is a request error:
/// nothing ran; see `http::graphql`), and POLICY.md section 8 wants a refused nullable field
/// present as `null` with its coded error. So a field records its own error, with its
/// path: a nullable field then resolves to null; a non-null field still fails, with a
/// stand-in error (its key is absent; nothing of the value is returned either way) that
/// [`execute`] leaves out. Done per resolver rather than by an extension, which
/// would wrap every field of every answer in another boxed future.
fn with_error_paths(resolve: Resolver, nullable: bool) -> Resolver {
    Arc::new(move |rc: ResolverContext<'_>| {
        let gctx = rc.ctx;
        match resolve(rc) {
            FieldFuture::Future(fut) => FieldFuture::new(async move {
                match fut.await {
                    Ok(value) => Ok(value),
                    Err(e) => {
                        gctx.add_error(gctx.set_error_path(e.into_server_error(gctx.item.pos)));
                        if nullable { Ok(None) } else { Err(reported()) }
                    }
                }
            }),
            value => value,
        }
    })
}

/// Coded INTERNAL too, should one ever reach a response.
fn reported() -> async_graphql::Error {
    use async_graphql::ErrorExtensions;
    async_graphql::Error::new_with_source(Reported).extend_with(|_, e| e.set("code", "INTERNAL"))
}

/// The runtime guard of the break-glass schema, derived like [`guarded`] from the same
/// predicate that built the schema: a program admin's request, a field a grant may show.
fn break_glass_guarded(decl: &FieldDecl) -> Resolver {
    let inner = decl.resolve.clone();
    let (Some(tag), Some(access), name) = (decl.tag, decl.access, decl.name) else { return inner };
    Arc::new(move |rc: ResolverContext<'_>| {
        let allowed = ctx_of(&rc).and_then(|ctx| {
            if ctx.role() == Some(Role::ProgramAdmin) && authz::field_in_break_glass_schema(tag, access, name) {
                Ok(())
            } else {
                Err(AppError::Forbidden.into_graphql())
            }
        });
        match allowed {
            Ok(()) => inner(rc),
            Err(e) => FieldFuture::new(async move { Err::<Option<Value>, _>(e) }),
        }
    })
}

fn dynamic_field(decl: &FieldDecl, with_directive: bool, audience: Audience) -> Field {
    let guard = if audience == Audience::BreakGlass { break_glass_guarded(decl) } else { guarded(decl) };
    let resolve = with_error_paths(guard, decl.ty.is_nullable());
    let mut field = Field::new(decl.name, decl.ty.type_ref(), move |rc| resolve(rc));
    for arg in &decl.args {
        let mut input = InputValue::new(arg.name, arg.ty.type_ref());
        if let Some(default) = arg.default_enum {
            input = input.default_value(enum_value(default));
        }
        field = field.argument(input);
    }
    if let Some(d) = decl.description {
        field = field.description(d);
    }
    if with_directive && let Some(tag) = decl.tag {
        field = field
            .directive(async_graphql::dynamic::Directive::new("visibility").argument("tag", enum_value(tag.as_str())));
    }
    field
}

/// What a served schema allows beyond its fields (from the server's configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaOptions {
    /// `__schema` and `__type` answer; off, the schema itself refuses them.
    pub introspection: bool,
    /// Deepest field nesting, enforced again by the executor after the perimeter's check.
    pub max_depth: usize,
}

impl Default for SchemaOptions {
    fn default() -> Self {
        Self { introspection: true, max_depth: MAX_DEPTH }
    }
}

/// What a custom scalar's strings are, and the specification it points to (`@specifiedBy`).
fn scalar_spec(name: &str) -> Option<(&'static str, &'static str)> {
    match name {
        // RFC 3339 `date-time`, written in UTC with microseconds ("2025-03-01T09:30:00.000000Z");
        // any RFC 3339 date-time is read. (scalars.graphql.org's date-time asks for exactly
        // three fraction digits, which these are not.)
        "DateTime" => Some((
            "An instant: an RFC 3339 date-time, written in UTC (2025-03-01T09:30:00.000000Z).",
            "https://www.rfc-editor.org/rfc/rfc3339#section-5.6",
        )),
        // A calendar day without a time zone, YYYY-MM-DD (RFC 3339 `full-date`).
        "Date" => Some((
            "A calendar date without a time zone: YYYY-MM-DD (RFC 3339 full-date).",
            "https://scalars.graphql.org/andimarek/local-date",
        )),
        _ => None,
    }
}

pub fn build(catalog: &Catalog, audience: Audience) -> Result<Schema, SchemaError> {
    build_with(catalog, audience, SchemaOptions::default())
}

pub fn build_with(catalog: &Catalog, audience: Audience, options: SchemaOptions) -> Result<Schema, SchemaError> {
    let plan = plan(catalog, audience);
    let mutation_name = (!plan.mutation.is_empty()).then_some("Mutation");
    // Depth and complexity bounds keep a nested query (user -> sessions -> coach -> ...) from
    // becoming a denial of service; the standard introspection query fits within them. They
    // back up the list-aware perimeter (`super::perimeter`), which refuses before any SQL.
    let mut builder = Schema::build("Query", mutation_name, None)
        .disable_suggestions()
        .limit_depth(options.max_depth)
        .limit_complexity(MAX_COMPLEXITY);
    if !options.introspection {
        builder = builder.disable_introspection();
    }
    let mut used: BTreeSet<&str> = BTreeSet::new();
    let mut note = |f: &FieldDecl| {
        used.insert(f.ty.name());
        for a in &f.args {
            used.insert(a.ty.name());
        }
    };

    let mut query = Object::new("Query");
    for f in &plan.query {
        note(f);
        query = query.field(dynamic_field(f, true, audience));
    }
    builder = builder.register(query);
    if !plan.mutation.is_empty() {
        let mut mutation = Object::new("Mutation");
        for f in &plan.mutation {
            note(f);
            mutation = mutation.field(dynamic_field(f, true, audience));
        }
        builder = builder.register(mutation);
    }
    for (decl, fields) in plan.objects.values() {
        let mut obj = Object::new(decl.name);
        if let Some(d) = decl.description {
            obj = obj.description(d);
        }
        for f in fields {
            note(f);
            obj = obj.field(dynamic_field(f, true, audience));
        }
        builder = builder.register(obj);
    }
    // Inputs referenced by arguments may reference further leaf types.
    for input in &catalog.inputs {
        if used.contains(input.name) {
            let mut obj = InputObject::new(input.name);
            for (name, ty) in &input.fields {
                used.insert(ty.name());
                obj = obj.field(InputValue::new(*name, ty.type_ref()));
            }
            builder = builder.register(obj);
        }
    }
    for e in &catalog.enums {
        if used.contains(e.name) || e.name == "VisibilityTag" {
            let mut en = Enum::new(e.name);
            if let Some(d) = e.description {
                en = en.description(d);
            }
            for item in &e.items {
                en = en.item(EnumItem::new(*item));
            }
            builder = builder.register(en);
        }
    }
    for s in &catalog.scalars {
        if used.contains(s) {
            let mut scalar = Scalar::new(*s);
            if let Some((description, url)) = scalar_spec(s) {
                scalar = scalar.description(description).specified_by_url(url);
            }
            builder = builder.register(scalar);
        }
    }
    builder.finish()
}

/// The schemas the server serves: one per role and one for anonymous callers.
#[derive(Clone)]
pub struct Schemas {
    by_role: HashMap<Role, Schema>,
    anonymous: Schema,
    /// A PROGRAM_ADMIN's while it holds an active break-glass grant.
    break_glass: Schema,
    /// Every field of the contract: (type, field) -> the resource it belongs to, to tell a
    /// probe for a hidden field (audited) from a typo (not a denial).
    contract_fields: HashMap<(String, String), &'static str>,
    /// Every type's fields and list shapes, for the perimeter's cost pass.
    index: super::perimeter::TypeIndex,
}

impl std::fmt::Debug for Schemas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Schemas")
    }
}

impl Schemas {
    pub fn build(catalog: &Catalog) -> Result<Self, SchemaError> {
        Self::build_with(catalog, SchemaOptions::default())
    }

    pub fn build_with(catalog: &Catalog, options: SchemaOptions) -> Result<Self, SchemaError> {
        let mut by_role = HashMap::new();
        for role in Role::ALL {
            by_role.insert(role, build_with(catalog, Audience::Role(role), options)?);
        }
        let mut contract_fields = HashMap::new();
        let resource_of = |f: &FieldDecl| match (f.access, f.entry) {
            (Some(crate::authz::Access::Resource(r)), _) => r.as_str(),
            (Some(crate::authz::Access::Profile), _) => "other_user_profiles",
            (_, Some(super::decl::Entry::Matrix(r, _))) => r.as_str(),
            _ => "api",
        };
        for o in &catalog.objects {
            for f in &o.fields {
                contract_fields.insert((o.name.to_owned(), f.name.to_owned()), resource_of(f));
            }
        }
        for (ty, fields) in [("Query", &catalog.query), ("Mutation", &catalog.mutation)] {
            for f in fields {
                contract_fields.insert((ty.to_owned(), f.name.to_owned()), resource_of(f));
            }
        }
        Ok(Self {
            by_role,
            anonymous: build_with(catalog, Audience::Anonymous, options)?,
            break_glass: build_with(catalog, Audience::BreakGlass, options)?,
            contract_fields,
            index: super::perimeter::TypeIndex::of(catalog),
        })
    }

    /// For an "Unknown field" validation error: the resource, if the field exists in the
    /// contract (so the caller asked for something its role cannot see).
    pub fn hidden_field(&self, message: &str) -> Option<(String, &'static str)> {
        let rest = message.strip_prefix("Unknown field \"")?;
        let (field, rest) = rest.split_once("\" on type \"")?;
        let ty = rest.strip_suffix("\".")?;
        let resource = self.contract_fields.get(&(ty.to_owned(), field.to_owned()))?;
        Some((format!("{ty}.{field}"), resource))
    }

    /// The types and list shapes the perimeter measures documents with.
    pub fn index(&self) -> &super::perimeter::TypeIndex {
        &self.index
    }

    pub fn for_role(&self, role: Option<Role>) -> &Schema {
        role.and_then(|r| self.by_role.get(&r)).unwrap_or(&self.anonymous)
    }

    /// Served only to a PROGRAM_ADMIN request whose principal holds an active grant.
    pub fn break_glass(&self) -> &Schema {
        &self.break_glass
    }
}

/// The SDL of an audience, as checked in: the directive definition first, then the types.
pub fn sdl(catalog: &Catalog, audience: Audience) -> Result<String, SchemaError> {
    let schema = build(catalog, audience)?;
    let body = schema.sdl_with_options(
        async_graphql::SDLExportOptions::new()
            .sorted_fields()
            .sorted_enum_items()
            .prefer_single_line_descriptions()
            .include_specified_by(),
    );
    let header = match audience {
        Audience::Contract => "# The full contract of coachgraph (every field, every tag). Generated by\n# `coachgraph export-schema`; do not edit. A test fails when it is stale.\n".to_owned(),
        Audience::Anonymous => "# What an unauthenticated caller sees. Generated by `coachgraph export-schema`.\n".to_owned(),
        Audience::BreakGlass => "# What a PROGRAM_ADMIN sees while it holds an active break-glass grant (POLICY.md\n# section 6): its own schema plus the coaching content a grant opens, read-only; the\n# rows are those of the one coachee the grant names. Generated by `coachgraph export-schema`;\n# review every change to this file as a change of what this role can read.\n".to_owned(),
        Audience::Role(r) => format!(
            "# What a {} sees: its whole API. Generated by `coachgraph export-schema`;\n# review every change to this file as a change of what this role can read.\n",
            r.as_str()
        ),
    };
    let directive = format!(
        "directive @visibility(tag: VisibilityTag!) on FIELD_DEFINITION\n# VisibilityTag: {}\n\n",
        VisibilityTag::ALL.map(|t| t.as_str()).join(" ")
    );
    Ok(format!("{header}\n{directive}{body}"))
}
