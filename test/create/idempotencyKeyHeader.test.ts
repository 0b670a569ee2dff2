import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { idBytes } from '../../src/apply/ledger.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { addTicket, repliesOf, seedWorld, type World } from '../helpers/itflow.js';
import { CREATE } from '../helpers/paths.js';

/**
 * The Idempotency-Key header travels as bytes; a client writes non-ASCII keys in UTF-8, the
 * encoding of everything else it sends (the JSON body's idempotency_key among them). The header
 * and the body field name the same command, and the ledger keeps the key as the client wrote it.
 */

/** A header value whose bytes on the wire are `text` in UTF-8 (fetch sends each char as one byte). */
const utf8Header = (text: string) => Buffer.from(text, 'utf8').toString('latin1');

describe('Idempotency-Key header with non-ASCII characters', () => {
  let h: Harness;
  let world: World;

  beforeAll(async () => {
    h = await startHarness({ generation: '2.6.7' });
    world = await seedWorld(h.db, '2.6.7');
  });
  afterAll(() => h?.close());

  it('is read as UTF-8: `Idempotency-Key: clé-ü` and `idempotency_key: "clé-ü"` name the same command', async () => {
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const body = { ticket_id: ticket, ticket_reply: 'Once, in any spelling of the key' };
    const byHeader = await h.post(CREATE, body, { key: world.keys.all, headers: { 'Idempotency-Key': utf8Header('clé-ü') } });
    expect(byHeader.status).toBe(202);
    const commandId = byHeader.body.data[0].command_id;
    await h.finished(commandId);
    const [ledger] = await h.query('SELECT idempotency_key FROM rq_commands WHERE command_id = ?', [idBytes(commandId)]);
    expect(ledger?.idempotency_key).toBe('clé-ü');

    const byField = await h.post(CREATE, { ...body, idempotency_key: 'clé-ü' }, { key: world.keys.all });
    expect(byField.status).toBe(201);
    expect(byField.body.data[0].command_id).toBe(commandId);
    expect(byField.headers.get('idempotent-replayed')).toBe('true');
    expect(await repliesOf(h.db, ticket)).toHaveLength(1);
  });

  it('bytes that are not UTF-8 answer 400 and queue nothing', async () => {
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    // 'clé' in ISO-8859-1: the lone byte 0xE9 is not UTF-8.
    const answer = await h.post(
      CREATE,
      { ticket_id: ticket, ticket_reply: 'x' },
      { key: world.keys.all, headers: { 'Idempotency-Key': 'cl\u00e9' } },
    );
    expect(answer).toMatchObject({
      status: 400,
      body: { success: 'False', message: 'The Idempotency-Key header must be UTF-8 text.' },
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await repliesOf(h.db, ticket)).toHaveLength(0);
  });
});
