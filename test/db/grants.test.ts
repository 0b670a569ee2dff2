import { describe, expect, it } from 'vitest';
import { grantForDenial } from '../../src/db/grants.js';

/**
 * A migration refused a privilege is told as the GRANT to run, read from the server's message as
 * MariaDB and the MySQL versions word it (the integration tests see MariaDB's only).
 */
describe('the GRANT for a refused migration statement', () => {
  it.each([
    ['MariaDB', "CREATE command denied to user 'rq'@'10.0.0.%' for table `itflow`.`rq_migrations`"],
    ['MySQL 8.0', "CREATE command denied to user 'rq'@'10.0.0.%' for table 'rq_migrations'"],
    ['MySQL 8.0.32 and later', "CREATE command denied to user 'rq'@'10.0.0.%' for table 'itflow.rq_migrations'"],
  ])('%s', (_server, message) => {
    expect(grantForDenial({ errno: 1142, message }, 'itflow')).toBe("GRANT CREATE ON itflow.rq_migrations TO 'rq'@'10.0.0.%';");
  });

  it('a schema the user may not create (SERVICE_SCHEMA not made yet)', () => {
    expect(grantForDenial({ errno: 1044, message: "Access denied for user 'rq'@'%' to database 'reply-queue'" }, 'x')).toBe(
      "GRANT CREATE ON `reply-queue`.* TO 'rq'@'%';",
    );
  });

  it('a message it cannot read gives none (the caller shows the message itself)', () => {
    expect(
      grantForDenial({ errno: 1227, message: 'Access denied; you need (at least one of) the SUPER privilege(s)' }, 'x'),
    ).toBe(null);
  });
});
