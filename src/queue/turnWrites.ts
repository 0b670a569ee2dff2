import { Redis, type RedisOptions } from 'ioredis';

/**
 * A Redis connection that sends the commands of one event-loop turn in one socket write.
 *
 * Node writes each command to the socket as it is made: one system call per command, and on this
 * project's machines a system call is dear (the CPU profiles of 2026-11-28 found 7–17 % of the
 * intake's and a worker's time in socket writes, most of them one BullMQ script call each — a
 * job added, a job finished). The commands a turn makes are many (a batch's jobs finish together;
 * requests that arrived together are enqueued together), so the socket is corked at a turn's
 * first command and uncorked when the turn ends (setImmediate): the commands leave together, in
 * the order they were made, one turn later at most. Redis answers them in that order as before.
 */
export class TurnWriteRedis extends Redis {
  #corked = false;

  constructor(url: string, options: Omit<RedisOptions, 'replyMapping'>) {
    super(url, options);
  }

  override sendCommand(...args: Parameters<Redis['sendCommand']>): ReturnType<Redis['sendCommand']> {
    // A pipeline passes its own buffer as the stream and writes it out in one go itself.
    if (!this.#corked && args[1] === undefined && this.status === 'ready') {
      const socket = this.stream;
      socket.cork();
      this.#corked = true;
      setImmediate(() => {
        this.#corked = false;
        socket.uncork();
      });
    }
    return super.sendCommand(...args);
  }
}
