// The all-in-one process (`npm start`): HTTP intake and queue worker together.
import { runProcess } from '../src/signals.js';

await runProcess({ intake: true, worker: true }, 'ITFlow Reply Queue');
