import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setQuiet } from '../../src/cli/keys.js';
import { serviceTables } from '../../src/db/tables.js';
import { followOnce } from '../../src/read/projection/follower.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { addTicket, seedWorld, type World } from '../helpers/itflow.js';
import { CREATE, READ } from '../helpers/paths.js';

/**
 * The dashboard's panels for what issue 15 added: the read projection (as `projection status`
 * judges it, and read.php's listings by source since the intake started), ITFlow's API keys with
 * their quiet default and the external ids each holds, and a failed command's external_id.
 */

const API = '/dashboard/api';
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

describe('dashboard panels: read projection, API keys (ITFlow 2.6.7)', () => {
  let h: Harness;
  let world: World;

  beforeAll(async () => {
    // No worker: the projection's follower runs only when a test says so.
    h = await startHarness({ generation: '2.6.7', roles: { intake: true, worker: false } });
    world = await seedWorld(h.db, '2.6.7');
  });
  afterAll(() => h?.close());

  const admin = (path: string) => h.get(`${API}/${path}`, { key: world.keys.all });
  const keyId = async (name: string) =>
    Number((await h.query('SELECT api_key_id FROM api_keys WHERE api_key_name = ?', [name]))[0]?.api_key_id);

  it('opens both panels for an admin key only: no key 401, a technician 403', async () => {
    for (const path of ['projection', 'keys']) {
      const none = await h.get(`${API}/${path}`);
      expect(none.status).toBe(401);
      expect(none.body.message).toBe('Authentication failed. API key is invalid or has expired.');
      const technician = await h.get(`${API}/${path}`, { key: world.keys.clientA });
      expect(technician.status).toBe(403);
      expect(technician.body.message).toMatch(/^The dashboard is for administrators/);
    }
    // (The admin's 200 for keys comes in its own test: its external-id counts are cached for 30 s.)
    const answer = await admin('projection');
    expect(answer.status).toBe(200);
    expect(answer.headers.get('cache-control')).toBe('no-store');
  });

  it('shows the read projection: being built, then serving once followed, replies behind it, listings by source', async () => {
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const addReply = (text: string) =>
      h.query(
        `INSERT INTO ticket_replies (ticket_reply, ticket_reply_type, ticket_reply_by, ticket_reply_ticket_id)
         VALUES (?, 'Internal', 0, ?)`,
        [text, ticket],
      );
    await addReply('Written in ITFlow’s web UI');

    const building = (await admin('projection')).body;
    expect(building).toMatchObject({
      serving: false,
      reason: 'building',
      lagSeconds: null,
      caughtUpAt: null,
      watermark: 0,
      maxLagSeconds: 30,
      listings: { projection: 0, itflow: 0, bySource: [] },
    });
    expect(building.summary).toMatch(/^being built: read\.php reads ITFlow’s tables/);
    expect(building.idsBehind).toBeGreaterThanOrEqual(1);
    expect(building.listings.since).toMatch(ISO);

    const before = await h.get(`${READ}?ticket_id=${ticket}`, { key: world.keys.all });
    expect(before.headers.get('x-read-source')).toBe('itflow');
    expect((await admin('projection')).body.listings).toMatchObject({
      itflow: 1,
      bySource: [{ source: 'itflow', reason: 'lag', count: 1 }],
    });

    // A worker's follower reads ticket_replies to its end.
    const conn = await h.db.getConnection();
    try {
      expect(await followOnce(conn, serviceTables(h.config), 1000)).not.toBeNull();
    } finally {
      conn.release();
    }
    const [newest] = await h.query<{ n: number }>('SELECT MAX(ticket_reply_id) AS n FROM ticket_replies');
    const serving = (await admin('projection')).body;
    expect(serving).toMatchObject({ serving: true, reason: null, watermark: newest?.n, idsBehind: 0 });
    expect(serving.summary).toBe('read.php serves from it (lag within PROJECTION_MAX_LAG_SECONDS=30)');
    expect(serving.lagSeconds).toBeGreaterThanOrEqual(0);
    expect(serving.lagSeconds).toBeLessThan(30);
    expect(serving.caughtUpAt).toMatch(ISO);
    expect(Math.abs(Date.parse(serving.caughtUpAt) - Date.now())).toBeLessThan(30_000);

    await addReply('Another, since the follower’s round');
    const after = await h.get(`${READ}?ticket_id=${ticket}`, { key: world.keys.all });
    expect(after.headers.get('x-read-source')).toBe('projection');
    expect(after.body.data).toHaveLength(2);
    const counted = (await admin('projection')).body;
    expect(counted).toMatchObject({ serving: true, idsBehind: 1, listings: { projection: 1, itflow: 1 } });
    expect(counted.listings.bySource).toContainEqual({ source: 'projection', reason: null, count: 1 });
  });

  it('lists the API keys: user, expiry, quiet or notifying, external ids held; a failed command shows its external_id', async () => {
    const [allId, clientAId, expiredId] = [
      await keyId('All clients key'),
      await keyId('Client A key'),
      await keyId('Expired key'),
    ];
    expect(await setQuiet(h.db, serviceTables(h.config), [clientAId], true)).toEqual([]);
    const open = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const closing = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const send = async (key: string, ticket: number, externalId: string) =>
      (await h.post(CREATE, { ticket_id: ticket, ticket_reply: `Reply ${externalId}`, external_id: externalId }, { key })).body
        .data[0].command_id as string;
    const commands = [
      await send(world.keys.all, open, 'crm-1'),
      await send(world.keys.all, open, 'crm-2'),
      await send(world.keys.clientA, open, 'a-1'),
    ];
    const late = await send(world.keys.all, closing, 'crm-late');
    // Closed by an agent between acceptance and application: the worker refuses it for good.
    await h.query('UPDATE tickets SET ticket_status = 5, ticket_closed_at = NOW() WHERE ticket_id = ?', [closing]);
    const worker = await h.startPeer({ intake: false, worker: true });
    try {
      for (const id of commands) expect((await h.finished(id)).status).toBe('applied');
      expect((await h.finished(late)).status).toBe('failed');
    } finally {
      await worker.close();
    }

    const answer = await admin('keys');
    expect(answer.status).toBe(200);
    const keys = answer.body;
    expect(keys.keyModel).toBe('key-runs-as-user');
    expect(keys.externalIdsCountedAt).toMatch(ISO);
    expect(keys.keys).toEqual([
      {
        apiKeyId: allId,
        name: 'All clients key',
        expires: '2099-12-31',
        expired: false,
        quiet: false,
        user: { id: expect.any(Number), name: 'Integration Admin' },
        clientId: null,
        externalIds: 2,
      },
      {
        apiKeyId: clientAId,
        name: 'Client A key',
        expires: '2099-12-31',
        expired: false,
        quiet: true,
        user: { id: expect.any(Number), name: 'Client A Tech' },
        clientId: null,
        externalIds: 1,
      },
      {
        apiKeyId: expiredId,
        name: 'Expired key',
        expires: '2020-01-01',
        expired: true,
        quiet: false,
        user: { id: expect.any(Number), name: 'Integration Admin' },
        clientId: null,
        externalIds: 0,
      },
    ]);

    const failures = (await admin('failures?hours=1')).body;
    expect(failures.latest[0]).toMatchObject({ commandId: late, externalId: 'crm-late', message: 'Ticket is closed.' });
  });
});

describe('dashboard panels on ITFlow 2.4.4 (keys scoped per key, no users)', () => {
  let h: Harness;
  let world: World;

  beforeAll(async () => {
    h = await startHarness({ generation: '2.4.4', roles: { intake: true, worker: false } });
    world = await seedWorld(h.db, '2.4.4');
  });
  afterAll(() => h?.close());

  it('lists the keys with their client (0: every client) instead of a user, and the projection being built', async () => {
    expect((await h.get(`${API}/keys`)).status).toBe(401);
    expect((await h.get(`${API}/keys`, { key: world.keys.clientA })).status).toBe(403);
    expect((await h.get(`${API}/projection`, { key: world.keys.clientA })).status).toBe(403);

    const keys = await h.get(`${API}/keys`, { key: world.keys.all });
    expect(keys.status).toBe(200);
    expect(keys.body.keyModel).toBe('per-key-scope');
    expect(
      keys.body.keys.map((k: { name: string; clientId: number; user: unknown; expired: boolean; quiet: boolean }) => [
        k.name,
        k.clientId,
        k.user,
        k.expired,
        k.quiet,
      ]),
    ).toEqual([
      ['All clients key', 0, null, false, false],
      ['Client A key', world.clientA, null, false, false],
      ['Expired key', 0, null, true, false],
    ]);

    const projection = await h.get(`${API}/projection`, { key: world.keys.all });
    expect(projection.status).toBe(200);
    expect(projection.body).toMatchObject({ serving: false, reason: 'building', lagSeconds: null });
  });
});
