// The HTTP intake alone: validates, authenticates and enqueues; applies nothing.
import { runProcess } from '../src/signals.js';

await runProcess({ intake: true, worker: false }, 'intake');
