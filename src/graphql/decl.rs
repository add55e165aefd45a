//! Field declarations: every output field is declared once, here in data, with its tag
//! and the matrix resource it belongs to. From that one declaration come the role's
//! schema (the field exists or not), the `@visibility` directive in the SDL, and the
//! runtime guard wrapped around its resolver.

use std::sync::Arc;

use async_graphql::dynamic::{FieldFuture, ResolverContext, TypeRef};
use async_graphql::{ErrorExtensions, Value};

use crate::authz::{self, Access, Action, Resource, VisibilityTag};
use crate::ctx::Ctx;
use crate::error::{AppError, AppResult};
use crate::kinds::Role;

pub type Resolver = Arc<dyn for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync>;

/// Who may see a root (Query or Mutation) field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// Only unauthenticated callers (login).
    Anonymous,
    /// Every authenticated principal (viewer, logout, changePassword).
    Authenticated,
    /// Roles the matrix grants this action on this resource.
    Matrix(Resource, Action),
    /// Exactly these roles (entry points whose rule is in POLICY.md prose, not a matrix cell).
    Roles(&'static [Role]),
}

impl Entry {
    pub fn admits(self, role: Option<Role>) -> bool {
        match (self, role) {
            (Entry::Anonymous, None) => true,
            (Entry::Anonymous, Some(_)) | (_, None) => false,
            (Entry::Authenticated, Some(_)) => true,
            (Entry::Matrix(resource, action), Some(role)) => authz::may(role, resource, action),
            (Entry::Roles(roles), Some(role)) => roles.contains(&role),
        }
    }
}

#[derive(Clone)]
pub struct ArgDecl {
    pub name: &'static str,
    pub ty: Ty,
    /// The value an omitted argument takes (an enum value's name, e.g. `BROWSER`).
    pub default_enum: Option<&'static str>,
}

#[derive(Clone)]
pub struct FieldDecl {
    pub name: &'static str,
    /// GraphQL type, e.g. `ty::req("String")`, `ty::list("Goal")`.
    pub ty: Ty,
    /// `None` only on structural types (POLICY.md section 3) and root fields.
    pub tag: Option<VisibilityTag>,
    pub access: Option<Access>,
    pub entry: Option<Entry>,
    pub args: Vec<ArgDecl>,
    pub description: Option<&'static str>,
    pub resolve: Resolver,
}

impl FieldDecl {
    /// A tagged field of a data type.
    pub fn tagged(name: &'static str, ty: Ty, tag: VisibilityTag, access: Access, resolve: Resolver) -> Self {
        Self {
            name,
            ty,
            tag: Some(tag),
            access: Some(access),
            entry: None,
            args: Vec::new(),
            description: None,
            resolve,
        }
    }

    /// A field of a structural type (identity of the caller, paging): no tag of its own.
    pub fn structural(name: &'static str, ty: Ty, resolve: Resolver) -> Self {
        Self { name, ty, tag: None, access: None, entry: None, args: Vec::new(), description: None, resolve }
    }

    /// A Query or Mutation field.
    pub fn root(name: &'static str, ty: Ty, entry: Entry, resolve: Resolver) -> Self {
        Self { name, ty, tag: None, access: None, entry: Some(entry), args: Vec::new(), description: None, resolve }
    }

    pub fn arg(mut self, name: &'static str, ty: Ty) -> Self {
        self.args.push(ArgDecl { name, ty, default_enum: None });
        self
    }

    /// An optional enum argument with a default value.
    pub fn enum_arg(mut self, name: &'static str, ty: Ty, default: &'static str) -> Self {
        self.args.push(ArgDecl { name, ty, default_enum: Some(default) });
        self
    }

    pub fn describe(mut self, text: &'static str) -> Self {
        self.description = Some(text);
        self
    }

    /// Whether the field exists in the schema of `role` (`None` = the full contract).
    pub fn in_schema_of(&self, role: Option<Role>, structural_owner: bool) -> bool {
        let Some(role) = role else { return true };
        if let Some(entry) = self.entry {
            return entry.admits(Some(role));
        }
        match (self.tag, self.access) {
            (Some(tag), Some(access)) => authz::field_in_schema(role, tag, access, self.name),
            _ => structural_owner,
        }
    }
}

#[derive(Clone)]
pub struct ObjectDecl {
    pub name: &'static str,
    pub description: Option<&'static str>,
    /// Structural types carry no tags (Viewer, AuthPayload, PageInfo, connections, ...).
    pub structural: bool,
    pub fields: Vec<FieldDecl>,
}

impl ObjectDecl {
    pub fn new(name: &'static str) -> Self {
        Self { name, description: None, structural: false, fields: Vec::new() }
    }

    pub fn structural(name: &'static str) -> Self {
        Self { name, description: None, structural: true, fields: Vec::new() }
    }

    pub fn describe(mut self, text: &'static str) -> Self {
        self.description = Some(text);
        self
    }

    pub fn field(mut self, field: FieldDecl) -> Self {
        self.fields.push(field);
        self
    }
}

/// A GraphQL type reference, built by [`ty::req`], [`ty::opt`] and [`ty::list`] instead of
/// parsed from SDL text. The API uses three shapes: `T`, `T!` and `[T!]!`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ty {
    name: &'static str,
    shape: Shape,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Nullable,
    NonNull,
    ListOfNonNull,
}

impl Ty {
    /// The named type, without list or non-null markers (`[Goal!]!` -> `Goal`).
    pub fn name(self) -> &'static str {
        self.name
    }

    pub fn is_nullable(self) -> bool {
        self.shape == Shape::Nullable
    }

    /// `[T!]!`: the query cost pass multiplies what is selected under it.
    pub fn is_list(self) -> bool {
        self.shape == Shape::ListOfNonNull
    }

    pub fn type_ref(self) -> TypeRef {
        match self.shape {
            Shape::Nullable => TypeRef::named(self.name),
            Shape::NonNull => TypeRef::named_nn(self.name),
            Shape::ListOfNonNull => TypeRef::named_nn_list_nn(self.name),
        }
    }
}

/// The type constructors: `ty::req("Goal")` is `Goal!`, `ty::opt("Goal")` is `Goal`,
/// `ty::list("Goal")` is `[Goal!]!`.
pub mod ty {
    use super::{Shape, Ty};

    pub const fn req(name: &'static str) -> Ty {
        Ty { name, shape: Shape::NonNull }
    }

    pub const fn opt(name: &'static str) -> Ty {
        Ty { name, shape: Shape::Nullable }
    }

    pub const fn list(name: &'static str) -> Ty {
        Ty { name, shape: Shape::ListOfNonNull }
    }
}

/// The request's `Ctx`, from a resolver: the one way a resolver reaches it (an owned
/// handle, so that a resolver's future may keep it).
pub fn ctx_of(rc: &ResolverContext<'_>) -> Result<Arc<Ctx>, async_graphql::Error> {
    rc.data::<Arc<Ctx>>().cloned().map_err(|_| AppError::internal("request without Ctx").into_graphql())
}

/// The request's `Ctx`, borrowed: for resolvers that answer without a future.
pub fn ctx_ref<'a>(rc: &ResolverContext<'a>) -> Result<&'a Arc<Ctx>, async_graphql::Error> {
    rc.data::<Arc<Ctx>>().map_err(|_| AppError::internal("request without Ctx").into_graphql())
}

/// The runtime guard derived from the declaration: even if a field were reachable in a
/// schema it should not be in, it refuses to resolve for a role the policy excludes.
pub fn guard(ctx: &Ctx, tag: Option<VisibilityTag>, access: Option<Access>, field: &str) -> AppResult<()> {
    if let (Some(tag), Some(access)) = (tag, access) {
        let role = ctx.role().ok_or(AppError::Unauthenticated)?;
        if !authz::field_in_schema(role, tag, access, field) {
            return Err(AppError::Forbidden);
        }
    }
    Ok(())
}

/// Wraps a declared resolver with its guard.
pub fn guarded(decl: &FieldDecl) -> Resolver {
    let inner = decl.resolve.clone();
    let (tag, access, name) = (decl.tag, decl.access, decl.name);
    if tag.is_none() {
        return inner;
    }
    Arc::new(move |rc: ResolverContext<'_>| {
        let allowed = ctx_ref(&rc).and_then(|ctx| guard(ctx, tag, access, name).map_err(AppError::into_graphql));
        match allowed {
            Ok(()) => inner(rc),
            Err(e) => FieldFuture::new(async move { Err::<Option<Value>, _>(e) }),
        }
    })
}

/// An `extensions.code` error without going through `AppError` (tests, helpers).
pub fn coded(message: &str, code: &'static str) -> async_graphql::Error {
    async_graphql::Error::new(message).extend_with(|_, e| e.set("code", code))
}
