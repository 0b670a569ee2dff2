import type { Logger } from 'pino';
import { type Config, ConfigError, loadConfig } from './config.js';
import { processLogger } from './logger.js';
import { type Roles, type RunningService, StartupError, startService } from './service.js';

/**
 * Runs one process of the service until SIGTERM or SIGINT, then shuts down gracefully:
 * stop taking requests and commands, finish or hand back what is in flight, close pools,
 * exit 0. A second signal exits at once. Configuration and start-up problems end the process
 * with one line on stderr and exit code 1.
 */
export async function runProcess(roles: Roles, label: string): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) return exitWith(error.message);
    throw error;
  }
  const logger = processLogger(config.LOG_LEVEL, config.LOG_FORMAT);
  let service: RunningService;
  try {
    service = await startService(config, roles, logger);
  } catch (error) {
    if (error instanceof StartupError) return exitWith(error.message);
    logger.fatal({ err: error }, 'could not start');
    return exitWith(`Could not start: ${(error as Error).message}`);
  }
  // The signal handlers first: whoever waits for this line may stop the process at once.
  stopOnSignal(service, logger);
  logger.info({ url: service.url, roles }, `${label} started`);
}

export function stopOnSignal(service: RunningService, logger: Logger): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
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
  process.on('SIGINT', stop);
}

function exitWith(message: string): void {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}
