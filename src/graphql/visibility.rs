//! Who sees what, for the development playground's schema view: each role's SDL, and for
//! every field the `@visibility` tag of `schema.graphql` and the roles whose schema has it.
//! Read off the same SDL that `export-schema` writes, so it cannot disagree with the goldens.

use std::collections::{BTreeMap, HashMap};

use async_graphql::Value as ConstValue;
use async_graphql::dynamic::SchemaError;
use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};
use serde::Serialize;

use super::schema::{Audience, Catalog, sdl};
use crate::kinds::Role;

#[derive(Debug, Clone, Serialize)]
pub struct FieldView {
    pub name: String,
    /// The field's GraphQL type, as SDL writes it (`[Goal!]!`).
    #[serde(rename = "type")]
    pub ty: String,
    /// From `@visibility(tag:)`; `None` for root and structural fields.
    pub tag: Option<&'static str>,
    /// `tagged`, `root` (Query/Mutation: who may call it is its entry rule) or `structural`.
    pub kind: &'static str,
    /// Every role whose schema has this field, in `Role::ALL` order.
    pub roles: Vec<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TypeView {
    pub name: String,
    /// `OBJECT`, `INPUT_OBJECT`, `ENUM` or `SCALAR`.
    pub kind: &'static str,
    pub fields: Vec<FieldView>,
}

/// One role's schema as the playground shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RoleSchemaView {
    pub role: &'static str,
    pub sdl: String,
    pub types: Vec<TypeView>,
}

type Fields = BTreeMap<String, Vec<(String, String, Option<&'static str>)>>;
/// Enums, scalars and input types: (name, kind).
type Others = Vec<(String, &'static str)>;

/// Object and input types -> (field, type, tag) of an SDL document.
fn fields_of(sdl: &str) -> Result<(Fields, Others), SchemaError> {
    let doc = async_graphql::parser::parse_schema(sdl).map_err(|e| SchemaError(e.to_string()))?;
    let mut out = Fields::new();
    let mut others = Vec::new();
    for def in doc.definitions {
        let TypeSystemDefinition::Type(t) = def else { continue };
        let t = t.node;
        let name = t.name.node.to_string();
        let fields: Vec<(String, String, Option<&'static str>)> = match &t.kind {
            TypeKind::Object(o) => o
                .fields
                .iter()
                .map(|f| {
                    let tag = f.node.directives.iter().find(|d| d.node.name.node == "visibility").and_then(|d| {
                        d.node.arguments.iter().find_map(|(arg, value)| match &value.node {
                            ConstValue::Enum(tag) if arg.node == "tag" => tag_name(tag.as_str()),
                            _ => None,
                        })
                    });
                    (f.node.name.node.to_string(), f.node.ty.node.to_string(), tag)
                })
                .collect(),
            TypeKind::InputObject(i) => {
                i.fields.iter().map(|f| (f.node.name.node.to_string(), f.node.ty.node.to_string(), None)).collect()
            }
            TypeKind::Enum(_) => {
                others.push((name, "ENUM"));
                continue;
            }
            TypeKind::Scalar => {
                others.push((name, "SCALAR"));
                continue;
            }
            _ => continue,
        };
        let kind = if matches!(t.kind, TypeKind::InputObject(_)) { "INPUT_OBJECT" } else { "OBJECT" };
        out.insert(name.clone(), fields);
        if kind == "INPUT_OBJECT" {
            others.push((name, kind));
        }
    }
    Ok((out, others))
}

fn tag_name(tag: &str) -> Option<&'static str> {
    crate::authz::VisibilityTag::ALL.iter().map(|t| t.as_str()).find(|t| *t == tag)
}

/// Every role's view, built once at start-up of the playground's endpoint.
pub fn role_views(catalog: &Catalog) -> Result<HashMap<Role, RoleSchemaView>, SchemaError> {
    let (contract, _) = fields_of(&sdl(catalog, Audience::Contract)?)?;
    let mut sdls = Vec::new();
    for role in Role::ALL {
        let text = sdl(catalog, Audience::Role(role))?;
        let (fields, others) = fields_of(&text)?;
        sdls.push((role, text, fields, others));
    }
    // (type, field) -> the roles whose schema has it.
    let mut seen_by: HashMap<(String, String), Vec<&'static str>> = HashMap::new();
    for (role, _, fields, _) in &sdls {
        for (ty, list) in fields {
            for (field, _, _) in list {
                seen_by.entry((ty.clone(), field.clone())).or_default().push(role.as_str());
            }
        }
    }
    let tag_of = |ty: &str, field: &str| {
        contract.get(ty).and_then(|fields| fields.iter().find(|(f, _, _)| f == field)).and_then(|(_, _, tag)| *tag)
    };
    let mut views = HashMap::new();
    for (role, text, fields, others) in sdls {
        let inputs: Vec<&String> = others.iter().filter(|(_, k)| *k == "INPUT_OBJECT").map(|(n, _)| n).collect();
        let mut types = Vec::new();
        for (ty, list) in &fields {
            let input = inputs.contains(&ty);
            let root = ty == "Query" || ty == "Mutation";
            let fields = list
                .iter()
                .map(|(field, gql_type, _)| {
                    let tag = if input { None } else { tag_of(ty, field) };
                    FieldView {
                        name: field.clone(),
                        ty: gql_type.clone(),
                        tag,
                        kind: match (tag, root) {
                            (Some(_), _) => "tagged",
                            (None, true) => "root",
                            (None, false) => "structural",
                        },
                        roles: seen_by.get(&(ty.clone(), field.clone())).cloned().unwrap_or_default(),
                    }
                })
                .collect();
            types.push(TypeView { name: ty.clone(), kind: if input { "INPUT_OBJECT" } else { "OBJECT" }, fields });
        }
        // Query and Mutation first, the way a reader starts.
        types.sort_by_key(|t| (t.name != "Query", t.name != "Mutation", t.kind == "INPUT_OBJECT", t.name.clone()));
        for (name, kind) in others.into_iter().filter(|(_, k)| *k != "INPUT_OBJECT") {
            types.push(TypeView { name, kind, fields: Vec::new() });
        }
        views.insert(role, RoleSchemaView { role: role.as_str(), sdl: text, types });
    }
    Ok(views)
}
