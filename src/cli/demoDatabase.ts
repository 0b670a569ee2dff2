/** The demo ITFlow database `npm run demo` creates in the local MariaDB. */
export const DEMO_DATABASE = 'itflow_demo';
