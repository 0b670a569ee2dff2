import { createHmac } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** One request a webhook receiver got: its headers, its raw body as received, and when. */
export interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

/**
 * How the receiver answers a request: a status, after a delay, optionally with headers, or
 * streaming a body that never ends.
 */
export interface Answer {
  status: number;
  delayMs?: number;
  /** Answer only once `release()` or `stop()` is called (a receiver that takes the request and hangs). */
  hold?: boolean;
  headers?: Record<string, string>;
  endless?: boolean;
}

/**
 * A real webhook receiver for the tests: a node:http server on 127.0.0.1 that records every
 * request and answers as `answer` says (200 by default). `stop` closes it and cuts every open
 * connection, so it is down the way a crashed receiver is (connection refused); `start` again
 * on the same port brings it back.
 */
export class Receiver {
  readonly received: Received[] = [];
  answer: (request: Received, index: number) => Answer = () => ({ status: 200 });
  private server: Server | null = null;
  private held: Array<() => void> = [];
  private readonly sockets = new Set<Socket>();
  port = 0;

  async start(port = this.port): Promise<this> {
    const server = createServer((request, response) => void this.handle(request, response));
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
    this.port = (server.address() as { port: number }).port;
    this.server = server;
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/hook`;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    this.release();
    if (!server) return;
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  }

  /** Lets every held request be answered. */
  release(): void {
    for (const go of this.held.splice(0)) go();
  }

  /** The requests held unanswered right now. */
  get holding(): number {
    return this.held.length;
  }

  /** The parsed bodies received (every delivery, duplicates included). */
  events(): Array<{ id: string; type: string; data: Record<string, any>; headers: IncomingHttpHeaders }> {
    return this.received.map((r) => ({ ...JSON.parse(r.body), headers: r.headers }));
  }

  async waitFor(check: () => boolean, timeoutMs: number, what = 'the deliveries expected'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > deadline)
        throw new Error(`the receiver did not get ${what} within ${timeoutMs} ms (got ${this.received.length})`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const received = { headers: request.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() };
    this.received.push(received);
    const answer = this.answer(received, this.received.length - 1);
    if (answer.hold) await new Promise<void>((resolve) => this.held.push(resolve));
    if (answer.delayMs) await new Promise((resolve) => setTimeout(resolve, answer.delayMs));
    if (response.destroyed) return;
    response.writeHead(answer.status, { 'Content-Type': 'text/plain', ...answer.headers });
    if (!answer.endless) {
      response.end(answer.status >= 400 ? 'receiver refused' : 'ok');
      return;
    }
    // A body that never ends: written as long as the other side reads (a 204 or 304 has no body to write).
    if (answer.status === 204 || answer.status === 304) throw new Error('an endless body needs a status that has a body');
    const chunk = Buffer.alloc(16 * 1024, 'x');
    const pump = () => {
      while (!response.destroyed && response.write(chunk)) {}
    };
    response.on('drain', pump);
    pump();
  }
}

/** What a receiver computes: the Webhook-Signature header's v1 recomputed with the secret over `t.body`. */
export function signatureMatches(secret: string, received: Received): boolean {
  const header = String(received.headers['webhook-signature'] ?? '');
  const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header);
  if (!match) return false;
  const expected = createHmac('sha256', secret).update(`${match[1]}.${received.body}`).digest('hex');
  return expected === match[2];
}
