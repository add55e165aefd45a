// The GraphQL-over-HTTP conformance audit of graphql-http (https://github.com/graphql/graphql-http),
// run against a live coachgraph server: once anonymously, once with a bearer token.
//
//   node audit.mjs <url of /graphql> [bearer token]
//
// Prints every audit's result and, per run, the MUST failures, SHOULD warnings, MAY notices
// and passes. Exits 1 on any MUST failure or SHOULD warning not listed in TOLERATED (a MAY
// notice is optional behaviour and only reported).
import { serverAudits } from 'graphql-http';

// SHOULD audits the server may fail on purpose: id -> the (security) reason. Empty: every
// SHOULD holds, anonymously and with a token.
const TOLERATED = new Map([]);

const [url, token] = process.argv.slice(2);
if (!url) {
  console.error('usage: node audit.mjs <url of /graphql> [bearer token]');
  process.exit(2);
}

function withBearer(bearer) {
  return (input, init = {}) => {
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${bearer}`);
    return fetch(input, { ...init, headers });
  };
}

async function bodyOf(response) {
  try {
    const text = await response.clone().text();
    return text.length > 300 ? `${text.slice(0, 300)}...` : text;
  } catch {
    return '(body already read)';
  }
}

async function run(label, fetchFn) {
  const audits = serverAudits({ url, fetchFn });
  // One at a time: the output is in the audits' order and the server sees no burst.
  const results = [];
  for (const audit of audits) {
    results.push(await audit.fn());
  }
  const counts = { error: 0, warn: 0, notice: 0, ok: 0 };
  let failing = 0;
  console.log(`\n== ${label}: ${url}`);
  for (const result of results) {
    counts[result.status] += 1;
    const tolerated = TOLERATED.get(result.id);
    let line = `${result.status.toUpperCase().padEnd(6)} ${result.id} ${result.name}`;
    if (result.status !== 'ok') {
      const response = result.response;
      const status = response ? `HTTP ${response.status} ${response.headers.get('content-type') ?? ''}` : '';
      line += `\n         ${result.reason}; ${status} ${response ? await bodyOf(response) : ''}`;
      if ((result.status === 'error' || result.status === 'warn') && !tolerated) {
        failing += 1;
      }
      if (tolerated) {
        line += `\n         tolerated: ${tolerated}`;
      }
    }
    console.log(line);
  }
  console.log(
    `== ${label}: ${counts.error} MUST failures, ${counts.warn} SHOULD warnings, ` +
      `${counts.notice} MAY notices, ${counts.ok} passes (${results.length} audits)`,
  );
  return failing;
}

let failing = await run('anonymous', fetch);
if (token) {
  failing += await run('bearer', withBearer(token));
}
if (failing > 0) {
  console.error(`\n${failing} MUST failures or SHOULD warnings (not tolerated)`);
  process.exit(1);
}
console.log('\nconformant: no MUST failure, no SHOULD warning');
