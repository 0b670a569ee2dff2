// `npm start`: the HTTP intake and SERVICE_WORKERS queue workers, each in a process of its own
// under one supervisor (SERVICE_WORKERS=0: both in this one process).
import { superviseOrRun } from '../src/supervisor.js';

await superviseOrRun('ITFlow Reply Queue');
