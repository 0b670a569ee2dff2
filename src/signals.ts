import type { Logger } from 'pino';
import { type Config, ConfigError, loadConfig } from './config.js';
import { processLogger } from './logger.js';
import { type Roles, type RunningService, StartupError, startService } from './service.js';
import { joinSupervisor, supervisedAs } from './supervision.js';

/**
 * Runs one process of the service until SIGTERM or SIGINT, then shuts down gracefully:
 * stop taking requests and commands, finish or hand back what is in flight, close pools,
 * exit 0. A second signal exits at once. Configuration and start-up problems end the process
 * with one line on stderr and exit code 1.
 */
export async function runProcess(roles: Roles, label: string): Promise<void> {
  const config = configOrExit();
  // Under npm start's supervisor, each line says which of its processes wrote it.
  const name = supervisedAs();
  const base = processLogger(config.LOG_LEVEL, config.LOG_FORMAT);
  const logger = name === undefined ? base : base.child({ process: name });
  // A supervisor that dies while this process is still starting leaves no one to stop it: leave.
  const orphaned = () => process.exit(1);
  if (name !== undefined) {
    if (!process.connected) orphaned();
    process.once('disconnect', orphaned);
  }
  let service: RunningService;
  try {
    service = await startService(config, roles, logger);
  } catch (error) {
    if (error instanceof StartupError) return exitWith(error.message);
    logger.fatal({ err: error }, 'could not start');
    return exitWith(`Could not start: ${(error as Error).message}`);
  }
  // The signal handlers first: whoever waits for this line may stop the process at once.
  const stop = stopOnSignal(service, logger);
  logger.info({ url: service.url, roles }, `${label} started`);
  if (name !== undefined) {
    process.off('disconnect', orphaned);
    joinSupervisor(service.url, service.metrics, stop);
  }
}

/** Stops the service gracefully on SIGTERM or SIGINT (a second one exits at once); returns the stop. */
export function stopOnSignal(service: RunningService, logger: Logger): (reason: string) => void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    service
      .close()
      .then(() => {
        logger.info('stopped');
        process.exit(0);
      })
      .catch((error: Error) => {
        logger.error({ err: error.message }, 'error while shutting down');
        process.exit(1);
      });
  };
  process.on('SIGTERM', stop);
  // Under npm start's supervisor, Ctrl-C in a terminal reaches every process of the group; the
  // supervisor then sends each of its processes one SIGTERM, which is the one to act on.
  process.on('SIGINT', supervisedAs() === undefined ? stop : () => {});
  return stop;
}

/** The configuration from the environment; a bad value ends the process with one line naming it. */
export function configOrExit(): Config {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) exitWith(error.message);
    throw error;
  }
}

function exitWith(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}
