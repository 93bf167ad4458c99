/**
 * `npm run bench`: runs every benchmark and writes bench/results/<name>.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runDaemonVsEmbedded } from './daemon-vs-embedded.js';
import { runQuickEcho } from './quick-echo.js';

const RESULTS = fileURLToPath(new URL('../../bench/results/', import.meta.url));
mkdirSync(RESULTS, { recursive: true });
const echo = await runQuickEcho();
writeFileSync(`${RESULTS}quick-echo.json`, `${JSON.stringify(echo, null, 2)}\n`);
writeFileSync(`${RESULTS}daemon-vs-embedded.json`, `${JSON.stringify(await runDaemonVsEmbedded(), null, 2)}\n`);
