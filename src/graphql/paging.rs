//! Relay-style connections: `first`/`after`, `nodes`, `pageInfo`, `totalCount`, with a
//! maximum page size (smaller for the AI principal, whose list queries are capped).

use crate::graphql::decl::Ty;
use crate::graphql::decl::ty;
use std::any::Any;

use async_graphql::Value;
use async_graphql::dynamic::{FieldFuture, FieldValue, ResolverContext};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::decl::{FieldDecl, ObjectDecl};
use super::mutation::Args;
use super::schema::{leaf, resolver};
use crate::error::{AppError, AppResult};
use crate::kinds::Role;

pub const DEFAULT_PAGE: u64 = 20;
pub const MAX_PAGE: u64 = 100;
/// POLICY.md section 5: the AI principal's list queries are capped.
pub const MAX_PAGE_AI: u64 = 25;

/// Longest cursor accepted (ours are far shorter).
const MAX_CURSOR: usize = 200;

/// A validated page request: rows `offset .. offset + limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub offset: u64,
    pub limit: u64,
}

impl Page {
    pub fn new(first: Option<i64>, after: Option<&str>, role: Option<Role>) -> AppResult<Page> {
        let max = if role == Some(Role::AiAgent) { MAX_PAGE_AI } else { MAX_PAGE };
        let limit = match first {
            None => DEFAULT_PAGE.min(max),
            Some(n) if n < 0 => return Err(AppError::bad_input("first must not be negative")),
            Some(n) if n as u64 > max => {
                return Err(AppError::bad_input(format!("first must be at most {max}")));
            }
            Some(n) => n as u64,
        };
        let offset = match after {
            None => 0,
            Some(cursor) => {
                decode_cursor(cursor).ok_or_else(|| AppError::bad_input("after is not a valid cursor"))? + 1
            }
        };
        Ok(Page { offset, limit })
    }

    /// Reads `first` and `after` from a resolver's arguments.
    pub fn from_args(rc: &ResolverContext<'_>, role: Option<Role>) -> AppResult<Page> {
        Page::from(&Args::from_rc(rc), role)
    }

    /// `first` and `after` of a field's arguments.
    pub fn from(args: &Args, role: Option<Role>) -> AppResult<Page> {
        let first = args.opt_int("first", i64::MIN..=i64::MAX)?;
        let after = args.opt_text("after", MAX_CURSOR)?;
        Page::new(first, after.as_deref(), role)
    }

    /// Slices an in-memory list (already filtered and ordered) into a connection.
    pub fn slice<T>(self, all: Vec<T>) -> Connection<T> {
        let total = all.len() as u64;
        let nodes: Vec<T> = all.into_iter().skip(self.offset as usize).take(self.limit as usize).collect();
        Connection::new(nodes, self, Some(total))
    }
}

pub fn encode_cursor(position: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("o:{position}"))
}

fn decode_cursor(cursor: &str) -> Option<u64> {
    let raw = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    std::str::from_utf8(&raw).ok()?.strip_prefix("o:")?.parse().ok()
}

/// One page of rows.
#[derive(Debug, Clone)]
pub struct Connection<T> {
    pub nodes: Vec<T>,
    pub has_next_page: bool,
    pub end_cursor: Option<String>,
    pub total_count: Option<u64>,
}

impl<T> Connection<T> {
    /// `nodes` is the page as loaded; with `total` known, `has_next_page` follows from it.
    pub fn new(nodes: Vec<T>, page: Page, total: Option<u64>) -> Self {
        let end = page.offset + nodes.len() as u64;
        Self {
            has_next_page: total.is_some_and(|t| end < t),
            end_cursor: (!nodes.is_empty()).then(|| encode_cursor(end - 1)),
            nodes,
            total_count: total,
        }
    }
}

#[derive(Debug, Clone)]
struct PageInfoView {
    has_next_page: bool,
    end_cursor: Option<String>,
}

pub fn declare_page_info(c: &mut super::Catalog) {
    c.object(
        ObjectDecl::structural("PageInfo")
            .field(FieldDecl::structural(
                "hasNextPage",
                ty::req("Boolean"),
                leaf(|_, p: &PageInfoView| Ok(Some(Value::Boolean(p.has_next_page)))),
            ))
            .field(FieldDecl::structural(
                "endCursor",
                ty::opt("String"),
                leaf(|_, p: &PageInfoView| Ok(p.end_cursor.clone().map(Value::String))),
            )),
    );
}

/// Declares `<Name>Connection { nodes: [<Node>!]! pageInfo totalCount }` for node values of
/// Rust type `T` (each node is passed on as `FieldValue::owned_any(T)`).
pub fn connection_decl<T: Any + Clone + Send + Sync>(name: &'static str, nodes_ty: Ty) -> ObjectDecl {
    ObjectDecl::structural(name)
        .field(FieldDecl::structural(
            "nodes",
            nodes_ty,
            resolver(|rc| {
                FieldFuture::new(async move {
                    let c = rc.parent_value.try_downcast_ref::<Connection<T>>()?;
                    Ok(Some(FieldValue::list(c.nodes.iter().cloned().map(FieldValue::owned_any))))
                })
            }),
        ))
        .field(FieldDecl::structural(
            "pageInfo",
            ty::req("PageInfo"),
            resolver(|rc| {
                FieldFuture::new(async move {
                    let c = rc.parent_value.try_downcast_ref::<Connection<T>>()?;
                    Ok(Some(FieldValue::owned_any(PageInfoView {
                        has_next_page: c.has_next_page,
                        end_cursor: c.end_cursor.clone(),
                    })))
                })
            }),
        ))
        .field(FieldDecl::structural(
            "totalCount",
            ty::opt("Int"),
            leaf(|_, c: &Connection<T>| Ok(c.total_count.map(|t| Value::from(t as i64)))),
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_pages_follow_each_other() {
        let all: Vec<u32> = (0..45).collect();
        let first = Page::new(Some(20), None, None).expect("page").slice(all.clone());
        assert_eq!(first.nodes.len(), 20);
        assert!(first.has_next_page);
        let second = Page::new(Some(20), first.end_cursor.as_deref(), None).expect("page").slice(all.clone());
        assert_eq!(second.nodes[0], 20);
        let third = Page::new(Some(20), second.end_cursor.as_deref(), None).expect("page").slice(all);
        assert_eq!(third.nodes.len(), 5);
        assert!(!third.has_next_page);
        assert_eq!(third.total_count, Some(45));
    }

    #[test]
    fn page_size_is_capped_and_lower_for_the_ai() {
        assert!(Page::new(Some(101), None, Some(Role::Coach)).is_err());
        assert!(Page::new(Some(100), None, Some(Role::Coach)).is_ok());
        assert!(Page::new(Some(26), None, Some(Role::AiAgent)).is_err());
        assert!(Page::new(Some(-1), None, None).is_err());
        assert!(Page::new(None, Some("garbage"), None).is_err());
    }
}
