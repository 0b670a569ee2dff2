/** The endpoints tests call: the service's own paths, and ITFlow's (≥ 2.4.7) that it also answers. */
export const CREATE = '/api/v1/tickets/replies/create.php';
export const BULK = '/api/v1/tickets/replies/bulk.php';
export const READ = '/api/v1/tickets/replies/read.php';
export const COMMANDS = '/api/v1/tickets/replies/commands.php';
export const ITFLOW_CREATE = '/api/v1/ticket_replies/create.php';
export const ITFLOW_READ = '/api/v1/ticket_replies/read.php';
export const ITFLOW_RESOLVE = '/api/v1/tickets/resolve.php';
