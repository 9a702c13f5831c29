// README's "Troubleshooting: install and first sync" names status types, provider reasons and Entra
// codes: each must be one the manager or provider-azure really reports, or one the Entra stand-in
// answers as the real service does (test/env/azure/entra.ts, with its sources).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REASONS as MANAGER_REASONS } from '../controller/src/reasons.js';
import { REASONS as PROVIDER_REASONS } from '../provider-azure/src/reasons.js';
import { repoRoot } from './env/control-plane.js';

const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
const start = readme.indexOf('\n## Troubleshooting: install and first sync\n');
const text = readme.slice(start, readme.indexOf('\n## ', start + 1));
const named = (re: RegExp) => [...new Set([...text.matchAll(re)].map((m) => m[1]!))];

test('the section exists and names the three areas the guide leaves out', () => {
  expect(start).toBeGreaterThan(0);
  for (const area of ['**Install and the pod.**', "**The provider's socket.**", '**Workload identity.**'])
    expect(text).toContain(area);
});

test('every status type it names is a reason the manager sets', () => {
  const types = named(/`((?:Create|Update)\w+|UserInputValidationFailed|Controller\w+|SecretPatch\w+)`/g);
  expect(types.length).toBeGreaterThan(2);
  for (const t of types) expect(Object.keys(MANAGER_REASONS)).toContain(t);
});

test("every provider reason it names is in provider-azure's catalog", () => {
  const reasons = named(/`((?:Forbidden|Vault|Entra|ManagedIdentity|Wrong)\w*)`/g);
  expect(reasons).toEqual(expect.arrayContaining(['WrongTenant', 'ForbiddenByRbac', 'ForbiddenByPolicy']));
  for (const r of reasons) expect(Object.keys(PROVIDER_REASONS)).toContain(r);
});

test('every Entra code it names is one the stand-in answers with, as Entra does', () => {
  const entra = readFileSync(join(repoRoot, 'test', 'env', 'azure', 'entra.ts'), 'utf8');
  const codes = named(/`(AADSTS\d+)`/g);
  expect(codes).toEqual(expect.arrayContaining(['AADSTS700211', 'AADSTS700213']));
  for (const code of codes) expect(entra).toContain(`aadsts: '${code}'`);
});
