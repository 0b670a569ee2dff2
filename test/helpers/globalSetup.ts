import { connect } from 'node:net';
import type { TestProject } from 'vitest/node';

/**
 * Finds the MariaDB/MySQL and Redis the tests run against, in this order:
 * 1. TEST_MYSQL_URL / TEST_REDIS_URL when set;
 * 2. the local servers on their standard ports (root with no password for MySQL);
 * 3. where Docker is available and neither answers, containers started with testcontainers.
 * Every test file then creates its own database and queue prefix on them.
 */
const LOCAL_MYSQL = 'mysql://root@127.0.0.1:3306/';
const LOCAL_REDIS = 'redis://127.0.0.1:6379';

function answers(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 1000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

declare module 'vitest' {
  export interface ProvidedContext {
    mysqlUrl: string;
    redisUrl: string;
  }
}

export default async function setup(project: TestProject) {
  let mysqlUrl = process.env.TEST_MYSQL_URL;
  let redisUrl = process.env.TEST_REDIS_URL;
  const stops: Array<() => Promise<unknown>> = [];

  if (!mysqlUrl && (await answers('127.0.0.1', 3306))) mysqlUrl = LOCAL_MYSQL;
  if (!redisUrl && (await answers('127.0.0.1', 6379))) redisUrl = LOCAL_REDIS;

  if (!mysqlUrl || !redisUrl) {
    const { GenericContainer, Wait } = await import('testcontainers');
    try {
      if (!mysqlUrl) {
        const mariadb = await new GenericContainer('mariadb:11.4')
          .withEnvironment({ MARIADB_ALLOW_EMPTY_ROOT_PASSWORD: '1' })
          .withExposedPorts(3306)
          .withWaitStrategy(Wait.forLogMessage(/ready for connections/, 2))
          .start();
        stops.push(() => mariadb.stop());
        mysqlUrl = `mysql://root@${mariadb.getHost()}:${mariadb.getMappedPort(3306)}/`;
      }
      if (!redisUrl) {
        const redis = await new GenericContainer('redis:7-alpine').withExposedPorts(6379).start();
        stops.push(() => redis.stop());
        redisUrl = `redis://${redis.getHost()}:${redis.getMappedPort(6379)}`;
      }
    } catch (error) {
      throw new Error(
        'The tests need a real MariaDB/MySQL and Redis: none answered on 127.0.0.1:3306/6379, ' +
          `TEST_MYSQL_URL/TEST_REDIS_URL are not set, and Docker could not start them (${(error as Error).message}).`,
      );
    }
  }

  project.provide('mysqlUrl', mysqlUrl);
  project.provide('redisUrl', redisUrl);
  return async () => {
    for (const stop of stops) await stop();
  };
}
