// The queue front's Azure RBAC model: which queue operation each built-in queue role allows, at
// which scope, as "Permissions for Queue service operations" and the built-in roles document it.
import { ARM_RESOURCE_GROUP, Directory } from './directory.js';
import { requiredPermissions } from './queue-front.js';

const ACCOUNT = 'acct';
const accountScope = `${ARM_RESOURCE_GROUP}/providers/Microsoft.Storage/storageAccounts/${ACCOUNT}`;

/** Whether `role` at `scope` lets a principal make the request `method path?query`. */
function allows(role: string, scope: string, request: string): boolean {
  const directory = new Directory('00000000-0000-0000-0000-00000000000a');
  const id = directory.createIdentity({ name: 'reader' });
  directory.assignRole({ role, assignee: id.clientId, scope });
  const [method, target] = request.split(' ') as [string, string];
  const url = new URL(target, 'https://acct.queue.core.windows.net');
  const parts = url.pathname.split('/').filter(Boolean);
  return directory.allowedOnQueue(
    id.principalId,
    { account: ACCOUNT, ...(parts[0] ? { queue: parts[0] } : {}) },
    requiredPermissions(method, parts, url.searchParams),
  );
}

/** Receive, delete, peek, send, read metadata, list queues: the requests a role is tried with, in order. */
const REQUESTS = {
  receive: 'GET /events/messages?numofmessages=32',
  delete: 'DELETE /events/messages/abc?popreceipt=x',
  peek: 'GET /events/messages?peekonly=true',
  send: 'POST /events/messages',
  metadata: 'GET /events?comp=metadata',
  list: 'GET /?comp=list',
};
const ALL = Object.values(REQUESTS);
const RECEIVE = REQUESTS.receive;

test('Message Processor receives, deletes and peeks, and nothing else', () => {
  const role = 'Storage Queue Data Message Processor';
  expect(ALL.map((r) => allows(role, accountScope, r))).toEqual([true, true, true, false, false, false]);
});

test('Message Sender only sends; Reader peeks and reads metadata; Contributor does all of it', () => {
  expect(ALL.map((r) => allows('Storage Queue Data Message Sender', accountScope, r))).toEqual([
    false,
    false,
    false,
    true,
    false,
    false,
  ]);
  expect(ALL.map((r) => allows('Storage Queue Data Reader', accountScope, r))).toEqual([
    false,
    false,
    true,
    false,
    true,
    true,
  ]);
  expect(ALL.map((r) => allows('Storage Queue Data Contributor', accountScope, r))).toEqual(ALL.map(() => true));
});

test('a role on one queue covers that queue only, and not List Queues', () => {
  const role = 'Storage Queue Data Message Processor';
  const queueScope = `${accountScope}/queueServices/default/queues/events`;
  expect(allows(role, queueScope, RECEIVE)).toBe(true);
  expect(allows(role, queueScope, 'GET /other/messages')).toBe(false);
  expect(allows('Storage Queue Data Contributor', queueScope, REQUESTS.list)).toBe(false);
  expect(allows(role, `${ARM_RESOURCE_GROUP}/providers/Microsoft.Storage/storageAccounts/another`, RECEIVE)).toBe(
    false,
  );
  expect(allows(role, ARM_RESOURCE_GROUP, RECEIVE)).toBe(true);
});

test('Key Vault roles grant nothing on queues, and queue roles nothing on vaults', () => {
  expect(allows('Key Vault Administrator', '/', RECEIVE)).toBe(false);
  const directory = new Directory('00000000-0000-0000-0000-00000000000a');
  const id = directory.createIdentity({ name: 'reader' });
  directory.assignRole({ role: 'Storage Queue Data Contributor', assignee: id.clientId, scope: '/' });
  expect(directory.allowed(id.principalId, 'kv', 'secrets/getSecret/action')).toBe(false);
});
