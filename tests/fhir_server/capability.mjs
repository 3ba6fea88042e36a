// The CapabilityStatement for what FhirRouter + MemoryRepository really do (see FHIR-SERVER.md).
import { readFileSync } from 'node:fs';

// MemoryRepository's matcher handles only these parameter types; number, quantity, composite and
// special parameters never match anything there, so they are not advertised.
const MATCHED_PARAM_TYPES = new Set(['reference', 'string', 'uri', 'token', 'date']);

const RESOURCE_INTERACTIONS = [
  'read',
  'vread',
  'update',
  'patch',
  'delete',
  'history-instance',
  'create',
  'search-type',
].map((code) => ({ code }));

function medplumVersion() {
  const url = new URL('./node_modules/@medplum/fhir-router/package.json', import.meta.url);
  return JSON.parse(readFileSync(url, 'utf8')).version;
}

/** Maps each resource type to the R4 search parameters MemoryRepository can evaluate. */
export function searchParamsByType(searchParameters, resourceTypes) {
  const byType = new Map([...resourceTypes].map((t) => [t, []]));
  for (const entry of searchParameters.entry ?? []) {
    const sp = entry.resource;
    if (sp?.resourceType !== 'SearchParameter' || !MATCHED_PARAM_TYPES.has(sp.type)) {
      continue;
    }
    const targets = sp.base.some((b) => b === 'Resource' || b === 'DomainResource')
      ? [...resourceTypes]
      : sp.base.filter((b) => byType.has(b));
    for (const type of targets) {
      byType.get(type).push({ name: sp.code, definition: sp.url, type: sp.type });
    }
  }
  return byType;
}

/** Builds the server's R4 CapabilityStatement. */
export function buildCapabilityStatement({ baseUrl, resourceTypes, paramsByType }) {
  const version = medplumVersion();
  const params = paramsByType;
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: new Date().toISOString(),
    kind: 'instance',
    software: { name: 'Medplum FhirRouter + MemoryRepository (DiaryBridge test adapter)', version },
    implementation: { description: 'In-memory FHIR R4 test server', url: baseUrl },
    fhirVersion: '4.0.1',
    format: ['json'],
    patchFormat: ['application/json-patch+json'],
    rest: [
      {
        mode: 'server',
        interaction: [{ code: 'transaction' }, { code: 'batch' }],
        searchParam: [
          { name: '_count', type: 'number' },
          { name: '_offset', type: 'number' },
          { name: '_sort', type: 'string' },
        ],
        resource: [...resourceTypes].sort().map((type) => ({
          type,
          interaction: RESOURCE_INTERACTIONS,
          versioning: 'versioned-update',
          readHistory: true,
          updateCreate: true,
          conditionalCreate: true,
          conditionalRead: 'not-supported',
          conditionalUpdate: true,
          conditionalDelete: 'single',
          searchParam: params.get(type),
        })),
      },
    ],
  };
}
