// Compare mode's pure parts: fit a query to one role's schema (recording what was cut: the
// field refusals), flatten an answer into rows, and decide what each cell shows.
import { Kind, TypeInfo, visit, visitWithTypeInfo } from 'graphql';

/** The document with every field the schema lacks removed; `removed` holds their response
 * paths without list indices ("coachees.nodes.coachNotes"). `runnable` is false when
 * nothing is left to ask. */
export function fitToSchema(doc, schema) {
  const typeInfo = new TypeInfo(schema);
  const removed = [];
  const stack = [];
  let pruned = visit(
    doc,
    visitWithTypeInfo(typeInfo, {
      Field: {
        enter(node) {
          const key = (node.alias || node.name).value;
          if (!typeInfo.getFieldDef()) {
            removed.push([...stack, key].join('.'));
            return null;
          }
          stack.push(key);
          return undefined;
        },
        leave() {
          stack.pop();
        },
      },
    }),
  );
  // A field whose whole selection was cut goes too (an empty selection is invalid).
  for (let changed = true; changed; ) {
    changed = false;
    pruned = visit(pruned, {
      enter(node) {
        if ((node.kind === Kind.FIELD || node.kind === Kind.INLINE_FRAGMENT) && node.selectionSet && node.selectionSet.selections.length === 0) {
          changed = true;
          return null;
        }
        return undefined;
      },
    });
  }
  // Variables no longer used would fail validation ("never used").
  pruned = visit(pruned, {
    OperationDefinition(op) {
      const used = new Set();
      visit(op.selectionSet, { Variable: (v) => void used.add(v.name.value) });
      return { ...op, variableDefinitions: (op.variableDefinitions || []).filter((d) => used.has(d.variable.name.value)) };
    },
  });
  const runnable = pruned.definitions.some((d) => d.kind === Kind.OPERATION_DEFINITION && d.selectionSet.selections.length > 0);
  const variables = new Set();
  visit(pruned, { VariableDefinition: (d) => void variables.add(d.variable.name.value) });
  return { doc: pruned, removed, runnable, variables };
}

/** `{a: {b: [1, 2]}}` -> Map { "a.b[0]" => 1, "a.b[1]" => 2 }. */
export function flatten(value, prefix = '', out = new Map()) {
  if (Array.isArray(value)) {
    if (value.length === 0) out.set(prefix, []);
    value.forEach((v, i) => flatten(v, `${prefix}[${i}]`, out));
  } else if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value);
    if (keys.length === 0) out.set(prefix, {});
    for (const k of keys) flatten(value[k], prefix ? `${prefix}.${k}` : k, out);
  } else {
    out.set(prefix, value);
  }
  return out;
}

/** ["coachees", "nodes", 0, "email"] -> "coachees.nodes[0].email" */
export function pathKey(path) {
  return (path || []).reduce((acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc ? `${acc}.${p}` : String(p)), '');
}

const shape = (key) => key.replace(/\[\d+\]/g, '');
const within = (key, prefix) => key === prefix || key.startsWith(`${prefix}.`) || key.startsWith(`${prefix}[`);

/** One account's run: { removed, data: Map, errors: [{key, code}], refused: code|null }.
 * What its cell for row `key` shows: { kind: value|row|field|absent|request, text }. */
export function cellOf(run, key) {
  if (run.refused) return { kind: 'request', text: `refused · ${run.refused}` };
  const s = shape(key);
  if (run.removed.some((r) => within(s, r))) return { kind: 'field', text: "not in this role's schema" };
  const exact = run.errors.find((e) => e.key === key);
  if (run.data.has(key)) {
    const v = run.data.get(key);
    if (v === null && exact) return { kind: 'row', text: `null · ${exact.code}` };
    return { kind: 'value', text: v === null ? 'null' : typeof v === 'object' ? JSON.stringify(v) : String(v) };
  }
  const above = run.errors.find((e) => e.key && within(key, e.key));
  if (above) return { kind: 'row', text: `null · ${above.code}` };
  return { kind: 'absent', text: '—' };
}

/** The rows of a comparison: every answered path of any account, then field refusals no
 * account answered, in first-seen order. */
export function rowsOf(runs) {
  const rows = [];
  const seen = new Set();
  const add = (k) => {
    if (k && !seen.has(k)) {
      seen.add(k);
      rows.push(k);
    }
  };
  for (const run of runs) {
    for (const k of run.data.keys()) add(k);
    for (const e of run.errors) add(e.key);
  }
  for (const run of runs) {
    for (const r of run.removed) if (!rows.some((k) => within(shape(k), r))) add(r);
  }
  return rows;
}
