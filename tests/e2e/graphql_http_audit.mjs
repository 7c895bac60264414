#!/usr/bin/env node
/*
 * GraphQL over HTTP conformance: runs the audit suite of the npm package graphql-http (the GraphQL
 * Foundation's reference implementation of the spec) against a running server.
 *
 *   node tests/e2e/graphql_http_audit.mjs http://127.0.0.1:8000/graphql
 *
 * Prints one line per audit, with the reason and the response status for every audit that did not
 * pass, then a summary. Exit status: 0 when no audit ended in 'error' (warnings and notices are
 * recommendations and optional features, printed but allowed), 1 when one did, 2 on bad usage.
 * graphql-http resolves from the repository's node_modules (installed by `npm ci`).
 */
import process from 'node:process';

import { serverAudits } from 'graphql-http';

const REQUEST_TIMEOUT_MS = 10_000;
// After this many fatal failures in a row (refused connections, timeouts) the server is taken to
// be down or hung, and the remaining audits are not run: they would only repeat the same failure.
const MAX_CONSECUTIVE_FATAL = 3;

function usage(message) {
  process.stderr.write(`graphql_http_audit: ${message}\nusage: node graphql_http_audit.mjs URL\n`);
  process.exit(2);
}

function parseUrl(argv) {
  if (argv.length !== 1) usage('expected exactly one argument, the GraphQL endpoint URL');
  let url;
  try {
    url = new URL(argv[0]);
  } catch {
    usage(`not a URL: ${argv[0]}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') usage(`not an http(s) URL: ${argv[0]}`);
  return url.toString();
}

// Every request gets a deadline, so a server that hangs fails the audit instead of the test run.
function fetchWithTimeout(input, init = {}) {
  return fetch(input, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
}

async function describeResponse(response) {
  if (!response) return '';
  let body = '';
  try {
    body = response.bodyUsed ? '(body already read)' : (await response.text()).slice(0, 300);
  } catch (err) {
    body = `(body unreadable: ${err.message})`;
  }
  const type = response.headers.get('content-type') ?? '(none)';
  return `HTTP ${response.status}, content-type ${type}, body ${JSON.stringify(body)}`;
}

// An audit throws only on a fatal problem (connection refused, a body that is not JSON where
// JSON is required...); that is a failed requirement too, so it is reported as an error.
async function runAudit(audit) {
  try {
    return await audit.fn();
  } catch (err) {
    const cause = err?.cause ? ` (${err.cause.message ?? err.cause})` : '';
    const reason = `fatal: ${err?.message ?? err}${cause}`;
    return { id: audit.id, name: audit.name, status: 'error', reason, fatal: true };
  }
}

async function main() {
  const url = parseUrl(process.argv.slice(2));
  const audits = serverAudits({ url, fetchFn: fetchWithTimeout });
  const counts = { ok: 0, notice: 0, warn: 0, error: 0 };
  let fatalInARow = 0;
  process.stdout.write(`graphql-http audit of ${url}: ${audits.length} audits\n`);
  for (const audit of audits) {
    if (fatalInARow >= MAX_CONSECUTIVE_FATAL) {
      const skipped = audits.length - (counts.ok + counts.notice + counts.warn + counts.error);
      process.stdout.write(`stopped: ${fatalInARow} fatal failures in a row, ${skipped} audits not run\n`);
      break;
    }
    const result = await runAudit(audit);
    fatalInARow = result.fatal ? fatalInARow + 1 : 0;
    counts[result.status] += 1;
    process.stdout.write(`${result.status.padEnd(6)} ${result.id} ${result.name}\n`);
    if (result.status !== 'ok') {
      process.stdout.write(`         reason: ${result.reason}\n`);
      const response = await describeResponse(result.response);
      if (response) process.stdout.write(`         response: ${response}\n`);
    }
  }
  process.stdout.write(
    `summary: ${audits.length} audits, ${counts.ok} ok, ${counts.warn} warnings, ` +
      `${counts.notice} notices, ${counts.error} errors\n`,
  );
  process.exit(counts.error > 0 || audits.length === 0 ? 1 : 0);
}

await main();
