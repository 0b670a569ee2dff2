import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { expect } from 'vitest';
import { idBytes } from '../../src/apply/ledger.js';
import type { Harness } from './harness.js';

/**
 * Helpers for the fault tests: send numbered commands, then count what reached ITFlow's
 * tables — every accepted command exactly once, none lost, each ticket's in order.
 */
export interface Sent {
  commandId: string;
  ticketId: number;
  body: string;
}

const CREATE = '/api/v1/tickets/replies/create.php';

/**
 * Sends `perTicket` replies to each ticket, one client per ticket sending in sequence (each
 * waits for its 202), all tickets at once. Bodies are 't<ticket> #<n>' so order can be checked.
 */
export async function sendReplies(h: Harness, key: string, tickets: number[], perTicket: number): Promise<Sent[]> {
  const sent: Sent[] = [];
  await Promise.all(
    tickets.map(async (ticketId) => {
      for (let n = 1; n <= perTicket; n++) {
        const body = `t${ticketId} #${n}`;
        const answer = await h.post(CREATE, { ticket_id: ticketId, ticket_reply: body }, { key });
        if (answer.status !== 202) throw new Error(`unexpected ${answer.status}: ${JSON.stringify(answer.body)}`);
        sent.push({ commandId: answer.body.data[0].command_id, ticketId, body });
      }
    }),
  );
  return sent;
}

/**
 * The same commands as sendReplies, sent through bulk.php (so they travel in chunk jobs):
 * requests of `perRequest` items, one ticket's items in order across requests.
 */
export async function sendBulk(h: Harness, key: string, tickets: number[], perTicket: number, perRequest = 200): Promise<Sent[]> {
  const items: Array<{ ticket_id: number; ticket_reply: string }> = [];
  for (let n = 1; n <= perTicket; n++)
    for (const ticketId of tickets) items.push({ ticket_id: ticketId, ticket_reply: `t${ticketId} #${n}` });
  const sent: Sent[] = [];
  for (let start = 0; start < items.length; start += perRequest) {
    const slice = items.slice(start, start + perRequest);
    const answer = await h.post('/api/v1/tickets/replies/bulk.php', slice, { key });
    if (answer.status !== 202) throw new Error(`unexpected ${answer.status}: ${JSON.stringify(answer.body)}`);
    answer.body.data.forEach((result: { command_id: string }, i: number) => {
      const item = slice[i] as { ticket_id: number; ticket_reply: string };
      sent.push({ commandId: result.command_id, ticketId: item.ticket_id, body: item.ticket_reply });
    });
  }
  return sent;
}

/**
 * One round of commands numbered `n`: one reply to each ticket, as single create.php requests
 * sent at once (a ticket's rounds one after the other keep its order), or as one bulk.php request
 * carrying them all (the tickets sharing chunks).
 */
export async function sendRound(h: Harness, key: string, tickets: number[], n: number, bulk: boolean): Promise<Sent[]> {
  const items = tickets.map((ticketId) => ({ ticket_id: ticketId, ticket_reply: `t${ticketId} #${n}` }));
  if (bulk) {
    const answer = await h.post('/api/v1/tickets/replies/bulk.php', items, { key });
    if (answer.status !== 202) throw new Error(`unexpected ${answer.status}: ${JSON.stringify(answer.body)}`);
    return items.map((item, i) => ({
      commandId: answer.body.data[i].command_id,
      ticketId: item.ticket_id,
      body: item.ticket_reply,
    }));
  }
  return Promise.all(
    items.map(async (item) => {
      const answer = await h.post(CREATE, item, { key });
      if (answer.status !== 202) throw new Error(`unexpected ${answer.status}: ${JSON.stringify(answer.body)}`);
      return { commandId: answer.body.data[0].command_id as string, ticketId: item.ticket_id, body: item.ticket_reply };
    }),
  );
}

export async function ledgerCount(h: Harness, commandIds: string[]): Promise<number> {
  const [row] = await h.query('SELECT COUNT(*) AS n FROM rq_commands WHERE command_id IN (?)', [commandIds.map(idBytes)]);
  return Number(row?.n);
}

export async function waitForLedger(h: Harness, commandIds: string[], timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await ledgerCount(h, commandIds)) < commandIds.length) {
    if (Date.now() > deadline)
      throw new Error(`only ${await ledgerCount(h, commandIds)} of ${commandIds.length} commands finished`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export interface Tally {
  sent: number;
  applied: number;
  duplicates: number;
  lost: number;
}

/** Counts effects of `sent` and asserts exactly once, no loss, per-ticket order; returns the tally. */
export async function expectExactlyOnce(h: Harness, sent: Sent[]): Promise<Tally> {
  const tickets = [...new Set(sent.map((s) => s.ticketId))];
  const rows = await h.query(
    'SELECT ticket_reply, ticket_reply_ticket_id, ticket_reply_created_at FROM ticket_replies WHERE ticket_reply_ticket_id IN (?) ORDER BY ticket_reply_id',
    [tickets],
  );
  const counts = new Map<string, number>();
  for (const row of rows) counts.set(row.ticket_reply, (counts.get(row.ticket_reply) ?? 0) + 1);
  const tally: Tally = {
    sent: sent.length,
    applied: sent.filter((s) => (counts.get(s.body) ?? 0) >= 1).length,
    duplicates: [...counts.values()].filter((n) => n > 1).reduce((sum, n) => sum + n - 1, 0),
    lost: sent.filter((s) => !counts.has(s.body)).length,
  };
  const ledger = await h.query('SELECT status, COUNT(*) AS n FROM rq_commands WHERE command_id IN (?) GROUP BY status', [
    sent.map((s) => idBytes(s.commandId)),
  ]);
  expect(ledger.map((r) => ({ status: r.status, n: Number(r.n) }))).toEqual([{ status: 'applied', n: sent.length }]);
  expect(tally).toEqual({ sent: sent.length, applied: sent.length, duplicates: 0, lost: 0 });
  for (const ticket of tickets) {
    const mine = rows.filter((r) => r.ticket_reply_ticket_id === ticket);
    const numbers = mine.map((r) => Number(String(r.ticket_reply).split('#')[1]));
    expect(numbers, `ticket ${ticket} replies in acceptance order`).toEqual([...numbers].sort((a, b) => a - b));
    const times = mine.map((r) => String(r.ticket_reply_created_at));
    expect(times, `ticket ${ticket} created_at follows acceptance order`).toEqual([...times].sort());
  }
  return tally;
}

/**
 * A TCP proxy on 127.0.0.1 in front of a server (MariaDB), so a test can take the server away
 * from one service without stopping it for everyone else. `cut()` stops listening (new
 * connections are refused) and resets every piped connection both ways (pooled connections
 * die mid-query, as when the server goes down); `freeze()` is a silent network instead: open
 * connections stop carrying data and new ones are accepted but never reach the server, so
 * nothing answers and nothing refuses. `restore()` ends either: frozen connections are reset
 * (the partition's casualties) and the proxy listens again on the same port.
 */
export interface TcpProxy {
  port: number;
  /** Connections piped since the proxy started (to check a service really came through it). */
  readonly accepted: number;
  cut(): Promise<void>;
  /** Silent network: nothing answers, nothing refuses. */
  freeze(): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  let server: Server | null = null;
  let port = 0;
  let frozen = false;

  const pipe = (client: Socket) => {
    accepted++;
    if (frozen) {
      sockets.add(client);
      client.on('error', () => {});
      client.on('close', () => sockets.delete(client));
      return;
    }
    const upstream = connect({ host: target.host, port: target.port });
    for (const [socket, peer] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      sockets.add(socket);
      socket.pipe(peer);
      socket.on('error', () => peer.destroy());
      socket.on('close', () => {
        sockets.delete(socket);
        peer.destroy();
      });
    }
  };
  const listen = async () => {
    server = createServer(pipe);
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as { port: number }).port;
  };
  const cut = async () => {
    const closing = server;
    server = null;
    if (!closing) return;
    const closed = new Promise((resolve) => closing.close(resolve));
    for (const socket of sockets) socket.resetAndDestroy();
    await closed;
  };

  await listen();
  return {
    get port() {
      return port;
    },
    get accepted() {
      return accepted;
    },
    cut,
    async freeze() {
      frozen = true;
      for (const socket of sockets) {
        socket.unpipe();
        socket.pause();
      }
    },
    async restore() {
      if (frozen) {
        frozen = false;
        for (const socket of sockets) socket.resetAndDestroy();
      }
      if (!server) await listen();
    },
    close: cut,
  };
}

/** A TCP proxy in front of the test's MariaDB, and the harness's DATABASE_URL pointed through it. */
export async function proxiedDatabase(databaseUrl: string, mysqlUrl: string): Promise<{ proxy: TcpProxy; url: string }> {
  const server = new URL(mysqlUrl);
  const proxy = await startTcpProxy({ host: server.hostname, port: Number(server.port || 3306) });
  const proxied = new URL(databaseUrl);
  proxied.hostname = '127.0.0.1';
  proxied.port = String(proxy.port);
  return { proxy, url: proxied.toString() };
}

/**
 * Whether, within `timeoutMs`, a session of this test's database waits for a table lock (another
 * session's LOCK TABLES) in a statement whose text matches `infoLike` (a LIKE pattern).
 */
export async function waitsForTableLock(h: Harness, infoLike: string, timeoutMs = 15_000): Promise<boolean> {
  const database = h.config.DATABASE_URL.split('/').pop();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [row] = await h.query(
      "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE DB = ? AND STATE LIKE 'Waiting for table%' AND INFO LIKE ?",
      [database, infoLike],
    );
    if (Number(row?.n) > 0) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
