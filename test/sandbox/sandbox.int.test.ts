// `npm run sandbox -- --once` is the README's main command: it must replay the guide, print its
// outputs, say what it stops, and leave nothing running. The interactive sandbox takes the guide's
// `az` commands from another terminal. (Both with --no-build: npm test has built the bundles, and
// rebuilding them would pull them from under the tests running beside this one.)
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../env/control-plane.js';
import { createCa } from '../env/pki.js';
import { toEnv, type StackInfo } from '../env/stack.js';

test('the sandbox walks through the guide and prints Hello2 and Hello!', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sss-sandbox-'));
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', join(repoRoot, 'test', 'sandbox', 'sandbox.ts'), '--once', '--no-build'],
    {
      cwd: repoRoot,
      encoding: 'utf8',
      env: { ...process.env, SSS_SANDBOX_DIR: dir },
      timeout: 180_000,
    },
  );
  if (r.status !== 0) throw new Error(`sandbox exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  expect(r.stdout).toMatch(/key0}" \| base64 -d\nHello2\n/);
  expect(r.stdout).toMatch(/key1}" \| base64 -d\nHello!\n/);
  expect(r.stdout).toContain('secret-sync-name   Opaque   2');
  expect(r.stdout).toMatch(/Reason:\s+CreateSucceeded/);
  // Change events are on: the queue, the vault's subscription into it, the provider's queue role.
  expect(r.stdout).toContain('--endpoint-type storagequeue');
  expect(r.stdout).toContain('--role "Storage Queue Data Message Processor"');
  // It says what it stops, part by part, and when it is done.
  expect(r.stdout).toMatch(
    /== Stopping the sandbox\n {2}stopped the manager \(.*\n {2}stopped provider-azure \(.*\n {2}stopped the stack .*\nStopped in [\d.]+ s; nothing of the sandbox is left running\.\n$/,
  );
  // Everything it started is gone: no process still holds files in its folder.
  const left = spawnSync('bash', ['-c', `ps -eo args | grep -F -- '${dir}' | grep -v grep || true`], {
    encoding: 'utf8',
  }).stdout.trim();
  expect(left).toBe('');
});

describe("the interactive sandbox: the guide's az commands in another terminal, then Ctrl-C", () => {
  const dir = mkdtempSync(join(tmpdir(), 'sss-sandbox-'));
  const env = { ...process.env, SSS_SANDBOX_DIR: dir };
  const kubeEnv = { ...env, KUBECONFIG: join(dir, 'control-plane', 'kubeconfig') };
  let sandbox: ChildProcess;
  let exited: Promise<number | null>;
  let out = '';

  /** `npm run sandbox -- <args>` in another terminal. */
  const command = (...args: string[]) => {
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', join(repoRoot, 'test', 'sandbox', 'sandbox.ts'), ...args],
      {
        cwd: repoRoot,
        env,
        encoding: 'utf8',
      },
    );
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    return r.stdout;
  };
  const kubectl = (args: string[], input?: string) =>
    spawnSync('kubectl', args, { env: kubeEnv, encoding: 'utf8', ...(input ? { input } : {}) });
  const read = (secret: string, key: string) =>
    Buffer.from(
      kubectl(['get', 'secret', secret, '-n', 'my-namespace', '-o', `jsonpath={.data.${key.replace(/\./g, '\\.')}}`])
        .stdout,
      'base64',
    ).toString();
  /**
   * A version of my-secret as the SDK reads it from the sandbox's vault (as `az keyvault secret show`
   * would), in a process of its own: the test preload routes vault names by its process's
   * environment, which is the test stack's here.
   */
  function secretVersion(version: string): { value: string; expiresOn?: string } {
    const info = JSON.parse(readFileSync(join(dir, 'stack.json'), 'utf8')) as StackInfo;
    const script = `
      const { AzureStack } = await import(${JSON.stringify(join(repoRoot, 'test', 'env', 'azure', 'client.ts'))});
      const info = JSON.parse(process.env.SANDBOX_STACK);
      const s = await new AzureStack(info).secrets('my-kv').getSecret('my-secret', { version: process.env.VERSION });
      console.log(JSON.stringify({ value: s.value, expiresOn: s.properties.expiresOn }));`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: repoRoot,
      encoding: 'utf8',
      env: { ...process.env, ...toEnv(info), SANDBOX_STACK: JSON.stringify(info), VERSION: version },
    });
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    return JSON.parse(r.stdout) as { value: string; expiresOn?: string };
  }
  async function until(what: string, check: () => boolean, timeoutMs = 40_000) {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  beforeAll(async () => {
    sandbox = spawn(
      process.execPath,
      ['--import', 'tsx', join(repoRoot, 'test', 'sandbox', 'sandbox.ts'), '--no-build'],
      {
        cwd: repoRoot,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    sandbox.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    exited = new Promise<number | null>((r) => sandbox.once('exit', (code) => r(code)));
    const deadline = Date.now() + 120_000;
    while (!out.includes('The sandbox is running')) {
      if (Date.now() > deadline || sandbox.exitCode !== null) throw new Error(`sandbox did not come up:\n${out}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }, 180_000);

  afterAll(async () => {
    sandbox.kill('SIGINT');
    expect(await exited).toBe(0);
    const left = spawnSync('bash', ['-c', `ps -eo args | grep -F -- '${dir}' | grep -v grep || true`], {
      encoding: 'utf8',
    }).stdout.trim();
    expect(left).toBe('');
  }, 120_000);

  test("rotate: with polling hourly, Key Vault's event brings the new version; the previous one moves to key1", async () => {
    expect(command('rotate', 'Hello3')).toContain(
      'az keyvault secret set --vault-name "my-kv" --name "my-secret" --value \'Hello3\'',
    );
    await until('the rotation', () => read('secret-sync-name', 'my-secret-data-key0') === 'Hello3');
    expect(read('secret-sync-name', 'my-secret-data-key1')).toBe('Hello2');
  });

  test("expire: the current version's expiry is set in the vault", () => {
    const before = Date.now();
    const out = command('expire', '5d');
    const [, version, at] =
      /az keyvault secret set-attributes --vault-name "my-kv" --name "my-secret" --version (\w+) --expires (\S+)\n/.exec(
        out,
      ) ?? [];
    const days5 = 5 * 86_400_000;
    expect(Date.parse(at!)).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + days5);
    expect(Date.parse(at!)).toBeLessThanOrEqual(Date.now() + days5);
    expect(secretVersion(version!)).toEqual({ value: 'Hello3', expiresOn: at!.replace('Z', '.000Z') });
  });

  test('disable: the current version leaves the history, the two newest enabled ones stay', async () => {
    const said = command('disable');
    expect(said).toMatch(
      /az keyvault secret set-attributes --vault-name "my-kv" --name "my-secret" --version \w+ --enabled false\n/,
    );
    // Key Vault sends no event for a disable and polling is hourly: the printed forceSynchronization.
    const [, patch] =
      /kubectl patch secretsync secret-sync-name -n my-namespace --type merge -p '(.*)'\n/.exec(said) ?? [];
    expect(
      kubectl(['patch', 'secretsync', 'secret-sync-name', '-n', 'my-namespace', '--type', 'merge', '-p', patch!])
        .status,
    ).toBe(0);
    await until(
      'the history without the disabled version',
      () => read('secret-sync-name', 'my-secret-data-key0') === 'Hello2',
    );
    expect(read('secret-sync-name', 'my-secret-data-key1')).toBe('Hello!');
  });

  test('import-cert: a generated or a given certificate lands in the vault and syncs as the guide shows', async () => {
    expect(command('import-cert')).toContain(
      'az keyvault certificate import --vault-name "my-kv" --name "my-cert" --file my-cert.pem',
    );
    const own = createCa('my-own-cert', 365);
    const file = join(mkdtempSync(join(tmpdir(), 'sss-cert-')), 'mine.pem');
    writeFileSync(file, `${own.key}${own.cert}`);
    const imported = command('import-cert', file);
    expect(imported).toContain(`az keyvault certificate import --vault-name "my-kv" --name "my-cert" --file ${file}`);
    // The lines the command says to add, added to the guide's files (a class and a SecretSync of their own).
    const spc = readFileSync(join(dir, 'spc.yaml'), 'utf8')
      .replace('secret-provider-class-name', 'cert-class')
      .replace(/ {8}- \|\n[^]*?(?=\n {4}tenantID)/, imported.split('\n').slice(2, 5).join('\n'));
    const ss = readFileSync(join(dir, 'ss.yaml'), 'utf8')
      .replace('name: secret-sync-name', 'name: cert-sync')
      .replace('secretProviderClassName: secret-provider-class-name', 'secretProviderClassName: cert-class')
      .replace(/ {4}- sourcePath:[^]*$/, imported.split('\n').slice(6, 8).join('\n') + '\n');
    for (const yaml of [spc, ss]) expect(kubectl(['apply', '-f', '-'], yaml).status).toBe(0);
    // PEM bodies compared without line breaks (node-forge writes CRLF).
    const der = (pem: string) => pem.replace(/-----[^-]+-----|\s/g, '');
    await until('the certificate to sync', () => der(read('cert-sync', 'my-cert.pem')).includes(der(own.cert)));
    expect(read('cert-sync', 'my-cert.pem')).toContain('PRIVATE KEY');
  });
});
