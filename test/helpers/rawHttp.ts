import { type IncomingHttpHeaders, request } from 'node:http';
import { connect, type Socket } from 'node:net';

export interface RawAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: any;
}

/**
 * One HTTP request sent as written: the path goes out exactly as given (fetch would resolve
 * `..` and `%2e%2e` before sending), the body as raw bytes. The answer's body is parsed as JSON
 * when it is JSON.
 */
export function rawRequest(
  url: string,
  {
    method = 'GET',
    path,
    headers = {},
    body,
  }: { method?: string; path: string; headers?: Record<string, string>; body?: Buffer },
): Promise<RawAnswer> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {}
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * A client on a bare TCP connection, for what fetch cannot do: send a request head and hold
 * the body back, dribble it, or stall; see what the server writes (a `100 Continue`, an early
 * answer) and when it closes the connection.
 */
export class RawConnection {
  private received = Buffer.alloc(0);
  private readonly waiters = new Set<() => void>();
  /** When the connection opened, and when it closed (null while open), in ms since the epoch. */
  readonly openedAt = Date.now();
  closedAt: number | null = null;
  /** When the first byte of the answer arrived. */
  firstByteAt: number | null = null;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.firstByteAt ??= Date.now();
      this.received = Buffer.concat([this.received, chunk]);
      this.notify();
    });
    // Writing on after the server has answered and closed is what these clients do: a reset is expected.
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closedAt = Date.now();
      this.notify();
    });
  }

  /**
   * `allowHalfOpen`: keep this side open (and sending) when the server closes its side, as a
   * client that ignores the server's answer would; by default it closes too, as clients do.
   */
  static open(url: string, { allowHalfOpen = false } = {}): Promise<RawConnection> {
    const { hostname, port } = new URL(url);
    return new Promise((resolve, reject) => {
      const socket = connect({ host: hostname, port: Number(port), allowHalfOpen }, () => resolve(new RawConnection(socket)));
      socket.once('error', reject);
    });
  }

  /** A request head: the request line, the headers, and the blank line. */
  static head(method: string, path: string, headers: Record<string, string | number>): string {
    const lines = Object.entries({ Host: 'localhost', ...headers }).map(([name, value]) => `${name}: ${value}`);
    return `${method} ${path} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`;
  }

  get text(): string {
    return this.received.toString('latin1');
  }

  get closed(): boolean {
    return this.closedAt !== null;
  }

  write(data: string | Buffer): void {
    if (!this.closed && !this.socket.destroyed) this.socket.write(data);
  }

  /**
   * Writes `chunk` every `everyMs` until `totalBytes` are sent, the connection closes, `forMs`
   * have passed, or `stopWhen` says so. Resolves with the bytes written.
   */
  async dribble(
    chunk: Buffer,
    {
      everyMs,
      totalBytes,
      forMs,
      stopWhen = () => false,
    }: { everyMs: number; totalBytes: number; forMs: number; stopWhen?: () => boolean },
  ) {
    const until = Date.now() + forMs;
    let sent = 0;
    while (sent < totalBytes && !this.closed && Date.now() < until && !stopWhen()) {
      const part = chunk.subarray(0, Math.min(chunk.length, totalBytes - sent));
      this.write(part);
      sent += part.length;
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
    return sent;
  }

  /** Resolves once what arrived satisfies `done` (or the connection closed); false after `timeoutMs`. */
  until(done: (text: string) => boolean, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const check = () => {
        if (!done(this.text) && !this.closed) return;
        finish(done(this.text));
      };
      const timer = setTimeout(() => finish(false), timeoutMs);
      const finish = (result: boolean) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(result);
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Resolves once the server has closed the connection; false after `timeoutMs`. */
  closes(timeoutMs: number): Promise<boolean> {
    return this.until(() => this.closed, timeoutMs);
  }

  /**
   * The first whole answer that is not `100 Continue` — status, head and body (by its
   * Content-Length) — or null while it has not all arrived.
   */
  answer(): { status: number; head: string; body: any } | null {
    let text = this.text;
    for (;;) {
      const end = text.indexOf('\r\n\r\n');
      if (end === -1) return null;
      const head = text.slice(0, end);
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
      text = text.slice(end + 4);
      if (status === 100) continue;
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
      if (Buffer.byteLength(text, 'latin1') < length) return null;
      const body = Buffer.from(text.slice(0, length), 'latin1').toString('utf8');
      try {
        return { status, head, body: JSON.parse(body) };
      } catch {
        return { status, head, body };
      }
    }
  }

  /** Resolves with the answer once it is in; null if it is not after `timeoutMs`. */
  async answered(timeoutMs: number) {
    await this.until(() => this.answer() !== null, timeoutMs);
    return this.answer();
  }

  /** Closes this side of the connection, as a client does once it has its answer. */
  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private notify(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}
