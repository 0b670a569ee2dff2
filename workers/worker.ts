// A queue worker alone: applies commands to ITFlow's database. Run as many as you like.
import { runProcess } from '../src/signals.js';

await runProcess({ intake: false, worker: true }, 'worker');
