import type { ServiceTables } from '../../src/db/tables.js';

// The service's tables as an installation of the release with only migration 1 holds them,
// frozen here (the current migration 1 may change; what is installed does not).

/** The ledger as migration 1 created it, frozen here: what an installation of that release holds. */
export const V1_LEDGER = (t: ServiceTables) => [
  `CREATE TABLE ${t.migrations} (version INT NOT NULL PRIMARY KEY, name VARCHAR(200) NOT NULL, applied_at_utc DATETIME NOT NULL)
   ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
  `CREATE TABLE ${t.commands} (
     command_id CHAR(36) NOT NULL,
     api_key_id INT NOT NULL,
     idempotency_key VARCHAR(255) NULL,
     fingerprint CHAR(64) NULL,
     ticket_id INT NOT NULL,
     accepted_at_utc DATETIME(3) NOT NULL,
     finished_at_utc DATETIME(3) NOT NULL,
     status ENUM('applied','failed') NOT NULL,
     insert_id INT NOT NULL DEFAULT 0,
     http_status SMALLINT NULL,
     error VARCHAR(1000) NULL,
     attempts INT NOT NULL DEFAULT 1,
     PRIMARY KEY (command_id),
     UNIQUE KEY idempotency (api_key_id, idempotency_key),
     KEY accepted_at_utc (accepted_at_utc),
     KEY ticket_accepted (ticket_id, accepted_at_utc)
   ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
  `INSERT INTO ${t.migrations} VALUES (1, 'command ledger', UTC_TIMESTAMP())`,
];
