// The coachgraph playground. The page signs in with the cookie session and the CSRF token,
// like the coach dashboard; compare mode signs other accounts in with bearer tokens that
// live only in this page's memory, for the length of one comparison.
import './style.css';
import { EditorView, basicSetup } from 'codemirror';
import { EditorState } from '@codemirror/state';
import { keymap } from '@codemirror/view';
import { json } from '@codemirror/lang-json';
import { graphql as graphqlLang, updateSchema } from 'cm6-graphql';
import { buildClientSchema, getIntrospectionQuery, parse, print } from 'graphql';
import { cellOf, fitToSchema, flatten, pathKey, rowsOf } from './compare.js';

const $ = (id) => document.getElementById(id);
const CSRF_COOKIE = '__Host-coachgraph_csrf';
const AI_HEADERS = 'X-AI-Model: playground-demo\nX-AI-Purpose: exploration';
const LOGIN =
  'mutation Login($email: String!, $password: String!) { login(email: $email, password: $password) { token expiresAt viewer { id role tenantId displayName } } }';
const VIEWER = '{ viewer { id role tenantId displayName } }';

// ---- examples: the spec's workloads and one query per contract Query field
const workloads = import.meta.glob('../../docs/spec/workloads/*.graphql', { query: '?raw', import: 'default', eager: true });
const goldenQueries = import.meta.glob('../../tests/golden/answers/*/query.graphql', { query: '?raw', import: 'default', eager: true });
const goldenVariables = import.meta.glob('../../tests/golden/answers/*/variables.json', { query: '?raw', import: 'default', eager: true });
const examples = new Map();
function addExample(group, name, query, variables = '{}') {
  examples.set(`${group}/${name}`, { group, name, query: query.trim() + '\n', variables });
}
const starters = import.meta.glob('./examples/*.graphql', { query: '?raw', import: 'default', eager: true });
const starterNames = { viewer: 'viewer', 'compare-roles': 'compare: one query, three kinds of answer' };
for (const [path, text] of Object.entries(starters).sort()) {
  const name = path.split('/').pop().replace(/^\d+-/, '').replace('.graphql', '');
  addExample('Start', starterNames[name] || name, text);
}
const workloadRole = { client_app: 'COACHEE', coach_dashboard: 'COACH', exec_report: 'EXECUTIVE' };
for (const [path, text] of Object.entries(workloads)) {
  const name = path.split('/').pop().replace('.graphql', '');
  addExample('Workloads', `${name} (${workloadRole[name] || 'any'})`, text, name === 'exec_report' ? '{\n  "from": null,\n  "to": null\n}' : '{}');
}
for (const [path, text] of Object.entries(goldenQueries).sort()) {
  const dir = path.split('/').slice(-2)[0];
  const vars = goldenVariables[path.replace('query.graphql', 'variables.json')];
  addExample('Contract queries', dir.replace(/^\d+-/, ''), text, vars ? vars.trim() : '{}');
}

// ---- state
let accounts = { password: '', defaultIdleMinutes: 30, tenants: [] };
let session = null; // { email, viewer, expiresAt, idleMinutes, lastActivity }
let roleSchema = null; // the signed-in role's GraphQLSchema (introspected as that role)
let schemaView = null; // /playground/schema.json of the signed-in role

// ---- editors
const nonce = document.querySelector('meta[name="csp-nonce"]')?.content || '';
const common = [basicSetup, EditorView.cspNonce.of(nonce), EditorView.lineWrapping];
const runKeys = keymap.of([{ key: 'Mod-Enter', run: () => (run(), true) }]);
const queryView = new EditorView({
  parent: $('query'),
  state: EditorState.create({ doc: examples.values().next().value.query, extensions: [common, runKeys, graphqlLang()] }),
});
const variablesView = new EditorView({ parent: $('variables'), state: EditorState.create({ doc: '{}', extensions: [common, runKeys, json()] }) });
const text = (view) => view.state.doc.toString();
const setText = (view, value) => view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: value } });

// ---- HTTP
function csrfToken() {
  const pair = document.cookie.split('; ').find((c) => c.startsWith(`${CSRF_COOKIE}=`));
  return pair ? decodeURIComponent(pair.slice(CSRF_COOKIE.length + 1)) : null;
}

function userHeaders() {
  const out = {};
  for (const line of $('headers').value.split('\n')) {
    const at = line.indexOf(':');
    if (at > 0) out[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return out;
}

/** POST /graphql. `token`: a bearer token; `omit`: anonymous (neither sends nor keeps cookies);
 * otherwise the cookie session with its CSRF token. */
async function gql(query, variables = {}, { token = null, omit = false, headers = userHeaders() } = {}) {
  const h = { ...headers, 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' };
  if (token) h.authorization = `Bearer ${token}`;
  else if (!omit && csrfToken()) h['x-csrf-token'] = csrfToken();
  const started = performance.now();
  const res = await fetch('/graphql', {
    method: 'POST',
    headers: h,
    credentials: token || omit ? 'omit' : 'same-origin',
    body: JSON.stringify({ query, variables }),
  });
  const ms = Math.round(performance.now() - started);
  let body;
  try {
    body = await res.json();
  } catch {
    body = { errors: [{ message: `not JSON (HTTP ${res.status})` }] };
  }
  if (!token && !omit && session && res.ok) session.lastActivity = Date.now();
  if (!token && !omit && res.status === 401) signedOut('the session ended (idle timeout, expiry or revocation)');
  return { status: res.status, ms, body };
}

const codeOf = (e) => e?.extensions?.code || 'UNCODED';

// ---- accounts and session
function fillAccounts() {
  const sel = $('account');
  sel.replaceChildren();
  const none = new Option('Choose a demo account…', '');
  sel.append(none);
  const box = $('compare-accounts');
  box.replaceChildren();
  for (const t of accounts.tenants) {
    const byRole = new Map();
    for (const a of t.accounts) byRole.set(a.role, [...(byRole.get(a.role) || []), a]);
    const fs = document.createElement('fieldset');
    fs.append(Object.assign(document.createElement('legend'), { textContent: t.name }));
    for (const [role, list] of byRole) {
      const group = document.createElement('optgroup');
      group.label = `${t.name} · ${role}`;
      const line = document.createElement('div');
      line.className = 'role-line';
      line.append(Object.assign(document.createElement('span'), { className: 'role', textContent: role }));
      for (const a of list) {
        group.append(new Option(a.email, a.email));
        const label = document.createElement('label');
        const cb = Object.assign(document.createElement('input'), { type: 'checkbox', value: a.email });
        cb.checked = ['coach1@acme.test', 'coachee1@acme.test'].includes(a.email);
        cb.addEventListener('change', showChosen);
        label.append(cb, a.email.split('@')[0]);
        label.title = a.email;
        line.append(label);
      }
      sel.append(group);
      fs.append(line);
    }
    box.append(fs);
  }
  sel.append(new Option('Other (type an email)…', '*'));
  showChosen();
}

function accountOf(email) {
  for (const t of accounts.tenants) for (const a of t.accounts) if (a.email === email) return { ...a, tenant: t.name };
  return null;
}

function chosenForCompare() {
  return [...$('compare-accounts').querySelectorAll('input:checked')].map((c) => c.value);
}
function showChosen() {
  const chosen = chosenForCompare();
  $('compare-chosen').textContent = chosen.length ? chosen.join(', ') : 'none (pick two or more)';
}

function showWho() {
  const who = $('who');
  if (!session) {
    who.replaceChildren('not signed in: only ', Object.assign(document.createElement('code'), { textContent: 'login' }), ' exists');
    return;
  }
  const v = session.viewer;
  const left = Math.max(0, session.idleMinutes * 60 - Math.floor((Date.now() - session.lastActivity) / 1000));
  const mmss = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')}`;
  const tenant = accountOf(session.email)?.tenant || (v.tenantId ? `tenant ${v.tenantId.slice(0, 8)}` : 'platform');
  who.replaceChildren(
    Object.assign(document.createElement('b'), { textContent: session.email || v.displayName }),
    ` · ${v.role} · ${tenant} · idle timeout in ${mmss}`,
  );
  who.title = `${v.displayName}; cookie session (HttpOnly) with its CSRF token; session expires at ${session.expiresAt || '?'}; idle limit ${session.idleMinutes} min (${session.idleSource})`;
}
setInterval(showWho, 1000);

function signedOut(why) {
  if (!session) return;
  session = null;
  sessionStorage.removeItem('coachgraph-playground-email');
  showWho();
  setStatus(why);
  loadSchema();
}

async function signOut() {
  // Any state: a live session, an expired one (401 clears the cookies) or none at all.
  if (csrfToken() || session) {
    try {
      await gql('mutation Logout { logout }', {}, { headers: {} });
    } catch {
      /* the cookies are cleared by the answer either way */
    }
  }
  session = null;
  sessionStorage.removeItem('coachgraph-playground-email');
  showWho();
}

async function signIn(email, password) {
  setStatus(`signing in as ${email}…`);
  await signOut();
  let { status, ms, body } = await gql(LOGIN, { email, password }, { headers: {} });
  // A session cookie the page did not know of and that no longer works: that answer (401)
  // cleared it, so the second try goes out anonymous.
  if (status === 401) ({ status, ms, body } = await gql(LOGIN, { email, password }, { headers: {} }));
  const login = body?.data?.login;
  if (!login) {
    showResult(status, ms, body);
    await loadSchema();
    return false;
  }
  session = {
    email,
    viewer: login.viewer,
    expiresAt: login.expiresAt,
    idleMinutes: accounts.defaultIdleMinutes,
    idleSource: 'default',
    lastActivity: Date.now(),
  };
  sessionStorage.setItem('coachgraph-playground-email', email);
  if (login.viewer.role === 'AI_AGENT' && !/x-ai-model/i.test($('headers').value)) {
    $('headers').value = [$('headers').value.trim(), AI_HEADERS].filter(Boolean).join('\n');
    showSub('headers');
  }
  showWho();
  await loadSchema();
  setStatus(`signed in as ${email} (${login.viewer.role}) in ${ms} ms`);
  return true;
}

async function loadSchema() {
  const { body } = await gql(getIntrospectionQuery(), {});
  roleSchema = body?.data ? buildClientSchema(body.data) : null;
  updateSchema(queryView, roleSchema || undefined);
  schemaView = null;
  if (session) {
    const res = await fetch('/playground/schema.json', { credentials: 'same-origin', headers: userHeaders() });
    schemaView = res.ok ? await res.json() : null;
    // The idle limit: the tenant's setting where this role may read it.
    if (roleSchema?.getQueryType()?.getFields().tenantSettings) {
      const s = await gql('{ tenantSettings { sessionTimeoutMinutes } }');
      const minutes = s.body?.data?.tenantSettings?.sessionTimeoutMinutes;
      if (minutes) Object.assign(session, { idleMinutes: minutes, idleSource: "the tenant's setting" });
    }
  }
  renderSchema();
}

// ---- run
function setStatus(message) {
  $('status').textContent = message;
}

function showResult(status, ms, body) {
  const errors = body?.errors || [];
  $('status').replaceChildren(
    Object.assign(document.createElement('span'), { className: status < 300 ? 'ok' : 'bad', textContent: `HTTP ${status}` }),
    ` · ${ms} ms · ${errors.length} error${errors.length === 1 ? '' : 's'}`,
  );
  const tbody = $('errors').querySelector('tbody');
  tbody.replaceChildren(
    ...errors.map((e) => {
      const tr = document.createElement('tr');
      for (const t of [codeOf(e), e.path ? pathKey(e.path) : '—', e.message]) tr.append(Object.assign(document.createElement('td'), { textContent: t }));
      return tr;
    }),
  );
  $('errors').hidden = errors.length === 0;
  $('result').textContent = JSON.stringify(body, null, 2);
}

function variables() {
  const raw = text(variablesView).trim();
  return raw ? JSON.parse(raw) : {};
}

async function run() {
  let vars;
  try {
    vars = variables();
  } catch (e) {
    showTab('result');
    setStatus(`variables are not JSON: ${e.message}`);
    return;
  }
  if (!$('tab-compare').hidden) return compare();
  showTab('result');
  setStatus('running…');
  try {
    const { status, ms, body } = await gql(text(queryView), vars);
    showResult(status, ms, body);
  } catch (e) {
    setStatus(`request failed: ${e.message}`);
  }
}

// ---- compare mode
async function runAs(email, docText, vars) {
  const account = accountOf(email);
  const headers = userHeaders();
  if (account?.role === 'AI_AGENT' && !Object.keys(headers).some((h) => /^x-ai-model$/i.test(h))) Object.assign(headers, { 'X-AI-Model': 'playground-demo', 'X-AI-Purpose': 'exploration' });
  const login = await gql(LOGIN, { email, password: accounts.password }, { omit: true, headers: {} });
  const token = login.body?.data?.login?.token;
  if (!token) return { email, role: account?.role, removed: [], data: new Map(), errors: [], refused: codeOf(login.body?.errors?.[0]) };
  try {
    const intro = await gql(getIntrospectionQuery(), {}, { token, headers });
    if (!intro.body?.data) return { email, role: account?.role, removed: [], data: new Map(), errors: [], refused: codeOf(intro.body?.errors?.[0]) };
    const fitted = fitToSchema(parse(docText), buildClientSchema(intro.body.data));
    const base = { email, role: account?.role, removed: fitted.removed, data: new Map(), errors: [], refused: null };
    if (!fitted.runnable) return base;
    const used = Object.fromEntries(Object.entries(vars).filter(([k]) => fitted.variables.has(k)));
    const res = await gql(print(fitted.doc), used, { token, headers });
    if (!('data' in (res.body || {})) || res.body.data === undefined) return { ...base, refused: `${codeOf(res.body?.errors?.[0])} (HTTP ${res.status})` };
    return {
      ...base,
      data: flatten(res.body.data || {}),
      errors: (res.body.errors || []).map((e) => ({ key: pathKey(e.path), code: codeOf(e) })),
    };
  } finally {
    await gql('mutation Logout { logout }', {}, { token, headers }).catch(() => {});
  }
}

async function compare() {
  const chosen = chosenForCompare();
  const out = $('compare-out');
  let doc;
  try {
    doc = text(queryView);
    parse(doc);
  } catch (e) {
    out.textContent = `The query does not parse: ${e.message}`;
    return;
  }
  if (chosen.length === 0) {
    out.textContent = 'Pick at least one account.';
    return;
  }
  out.textContent = `running as ${chosen.length} account(s)…`;
  const vars = variables();
  const runs = [];
  for (const email of chosen) runs.push(await runAs(email, doc, vars)); // one login at a time
  renderCompare(runs);
}

function renderCompare(runs) {
  const rows = rowsOf(runs);
  const table = document.createElement('table');
  table.className = 'compare';
  const head = document.createElement('tr');
  head.append(Object.assign(document.createElement('th'), { textContent: 'path' }));
  for (const r of runs) {
    const th = document.createElement('th');
    th.append(r.email, document.createElement('br'), Object.assign(document.createElement('small'), { textContent: r.role || '' }));
    head.append(th);
  }
  table.append(Object.assign(document.createElement('thead'), {}));
  table.tHead.append(head);
  const body = document.createElement('tbody');
  const limit = 500;
  for (const key of rows.slice(0, limit)) {
    const cells = runs.map((r) => cellOf(r, key));
    const tr = document.createElement('tr');
    if (new Set(cells.map((c) => c.text)).size > 1) tr.className = 'diff';
    tr.append(Object.assign(document.createElement('td'), { className: 'path', textContent: key }));
    for (const c of cells) tr.append(Object.assign(document.createElement('td'), { className: `cell-${c.kind}`, textContent: c.text, title: c.text }));
    body.append(tr);
  }
  table.append(body);
  const out = $('compare-out');
  out.replaceChildren(table);
  if (rows.length > limit) out.append(Object.assign(document.createElement('p'), { textContent: `${rows.length - limit} more rows not shown` }));
}

// ---- schema view
const TAG_ORDER = ['CLIENT_VISIBLE', 'COACH_ONLY', 'ADMIN_AGGREGATE', 'SYSTEM_INTERNAL'];
function renderSchema() {
  const out = $('schema-out');
  if (!schemaView) {
    out.textContent = session ? 'The schema view could not be loaded.' : "Sign in to see your role's schema.";
    return;
  }
  const filter = $('schema-filter').value.trim().toLowerCase();
  const frag = document.createDocumentFragment();
  frag.append(
    Object.assign(document.createElement('p'), {
      className: 'hint',
      textContent: `${schemaView.role}: ${schemaView.types.length} types. Tags come from the @visibility of schema.graphql; "roles" lists every role whose schema has the field. Root and structural fields carry no tag.`,
    }),
  );
  for (const t of schemaView.types) {
    const fields = t.fields.filter((f) => !filter || t.name.toLowerCase().includes(filter) || f.name.toLowerCase().includes(filter));
    if (fields.length === 0) continue;
    const box = document.createElement('details');
    box.open = t.name !== 'Mutation'; // the long list of operations; the data types follow
    box.className = 'type';
    box.append(Object.assign(document.createElement('summary'), { textContent: `${t.kind === 'OBJECT' ? 'type' : t.kind.toLowerCase()} ${t.name}` }));
    const table = document.createElement('table');
    for (const f of fields) {
      const tr = document.createElement('tr');
      tr.append(Object.assign(document.createElement('td'), { className: 'fname', textContent: `${f.name}: ${f.type}` }));
      const tag = document.createElement('td');
      if (f.tag) tag.append(Object.assign(document.createElement('span'), { className: `tag tag-${TAG_ORDER.indexOf(f.tag)}`, textContent: f.tag }));
      else tag.append(Object.assign(document.createElement('span'), { className: 'tag untagged', textContent: f.kind }));
      tr.append(tag);
      const roles = document.createElement('td');
      roles.className = 'roles';
      roles.textContent = f.roles.join(' ');
      tr.append(roles);
      table.append(tr);
    }
    box.append(table);
    frag.append(box);
  }
  out.replaceChildren(frag);
}

function downloadSdl() {
  if (!schemaView) return;
  const url = URL.createObjectURL(new Blob([schemaView.sdl], { type: 'text/plain' }));
  const a = Object.assign(document.createElement('a'), { href: url, download: `${schemaView.role.toLowerCase()}.graphql` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// ---- copy as curl
function shellQuote(s) {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
function curlText() {
  const base = location.origin;
  const email = session?.email || $('email').value || 'coach1@acme.test';
  const demo = accountOf(email);
  const password = demo ? accounts.password : '<password>';
  let vars = {};
  try {
    vars = variables();
  } catch {
    /* sent as {} */
  }
  const login = JSON.stringify({ query: LOGIN, variables: { email, password } });
  const query = JSON.stringify({ query: text(queryView), variables: vars });
  const headers = Object.entries(userHeaders()).map(([k, v]) => ` \\\n  -H ${shellQuote(`${k}: ${v}`)}`).join('');
  return (
    `TOKEN=$(curl -sS ${base}/graphql -H 'content-type: application/json' \\\n  -d ${shellQuote(login)} | jq -r .data.login.token)\n` +
    `curl -sS ${base}/graphql -H 'content-type: application/json' -H "authorization: Bearer $TOKEN"${headers} \\\n  -d ${shellQuote(query)}\n`
  );
}

// ---- tabs and wiring
function showTab(name) {
  for (const b of document.querySelectorAll('[data-tab]')) b.classList.toggle('active', b.dataset.tab === name);
  for (const t of ['result', 'compare', 'schema']) $(`tab-${t}`).hidden = t !== name;
  document.body.classList.toggle('wide', name === 'compare');
}
function showSub(name) {
  for (const b of document.querySelectorAll('[data-sub]')) b.classList.toggle('active', b.dataset.sub === name);
  $('variables').hidden = name !== 'variables';
  $('headers').hidden = name !== 'headers';
}

function fillExamples() {
  const sel = $('example');
  const groups = new Map();
  for (const [id, ex] of examples) {
    if (!groups.has(ex.group)) {
      const g = document.createElement('optgroup');
      g.label = ex.group;
      groups.set(ex.group, g);
      sel.append(g);
    }
    groups.get(ex.group).append(new Option(ex.name, id));
  }
}

async function start() {
  fillExamples();
  $('example').addEventListener('change', () => {
    const ex = examples.get($('example').value);
    setText(queryView, ex.query);
    setText(variablesView, ex.variables);
  });
  $('account').addEventListener('change', () => {
    const v = $('account').value;
    if (v && v !== '*') {
      $('email').value = v;
      $('password').value = accounts.password;
    } else if (v === '*') {
      $('email').value = '';
      $('password').value = '';
      $('email').focus();
    }
  });
  $('signin').addEventListener('click', () => signIn($('email').value.trim(), $('password').value));
  $('password').addEventListener('keydown', (e) => e.key === 'Enter' && signIn($('email').value.trim(), $('password').value));
  $('signout').addEventListener('click', async () => {
    await signOut();
    await loadSchema();
    setStatus('signed out');
  });
  $('run').addEventListener('click', run);
  $('compare-run').addEventListener('click', compare);
  $('ai-headers').addEventListener('click', () => {
    if (!/x-ai-model/i.test($('headers').value)) $('headers').value = [$('headers').value.trim(), AI_HEADERS].filter(Boolean).join('\n');
    showSub('headers');
  });
  $('schema-filter').addEventListener('input', renderSchema);
  $('sdl-download').addEventListener('click', downloadSdl);
  $('curl').addEventListener('click', async () => {
    const t = curlText();
    $('curl-text').value = t;
    $('curl-dialog').showModal();
    try {
      await navigator.clipboard.writeText(t);
    } catch {
      /* the dialog shows it */
    }
  });
  $('curl-close').addEventListener('click', () => $('curl-dialog').close());
  for (const b of document.querySelectorAll('[data-tab]')) b.addEventListener('click', () => showTab(b.dataset.tab));
  for (const b of document.querySelectorAll('[data-sub]')) b.addEventListener('click', () => showSub(b.dataset.sub));

  const res = await fetch('/playground/accounts.json');
  if (res.ok) accounts = await res.json();
  fillAccounts();
  // A session that survived a reload: the cookie still works.
  if (csrfToken()) {
    const { body } = await gql(VIEWER);
    const viewer = body?.data?.viewer;
    if (viewer) {
      session = {
        email: sessionStorage.getItem('coachgraph-playground-email') || viewer.displayName,
        viewer,
        expiresAt: null,
        idleMinutes: accounts.defaultIdleMinutes,
        idleSource: 'default',
        lastActivity: Date.now(),
      };
    }
  }
  showWho();
  await loadSchema();
  document.body.dataset.ready = 'true';
}

start();
