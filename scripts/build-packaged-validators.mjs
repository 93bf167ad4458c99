// Compiles the validators of every protocol bulkhead ships (protocols/*.json: the daemon's bulkhead.control) at build
// time, into dist/lib/protocol/packaged/<name>.validators.cjs (lib/protocol/packaged-validators.ts says how they are
// keyed and when they are used). A CLI command against the daemon then loads neither ajv nor its compiler. Each module
// records the compiled bulkhead code it was made with (lib/protocol/validators-code-key.ts), read here once, after tsc.
// Each protocol is loaded (and so checked) by the same code the CLI falls back to, then generated, then loaded back and
// checked to give the same hash, so a build never ships a module its loader would refuse.
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const lib = join(root, 'dist', 'lib');
const { loadProtocol } = await import(join(lib, 'protocol', 'registry.js'));
const { packagedModuleSource } = await import(join(lib, 'protocol', 'validators-module.js'));
const { PACKAGED_VALIDATORS_DIR, packagedValidatorsFile, loadWithPackagedValidators } = await import(join(lib, 'protocol', 'packaged-validators.js'));
const { writeFileAtomically } = await import(join(lib, 'util', 'atomic-write.js'));
const { validatorsCodeNow } = await import(join(lib, 'protocol', 'validators-code-key.js'));
const code = validatorsCodeNow(lib);

const protocols = join(root, 'protocols');
// Only this build's modules: one left by an earlier build for a protocol since removed goes.
rmSync(PACKAGED_VALIDATORS_DIR, { recursive: true, force: true });
mkdirSync(PACKAGED_VALIDATORS_DIR, { recursive: true });
for (const entry of readdirSync(protocols).filter((f) => f.endsWith('.json')).sort()) {
  const name = entry.slice(0, -'.json'.length);
  const protocol = loadProtocol(protocols, name);
  writeFileAtomically(packagedValidatorsFile(name), packagedModuleSource(protocol, code));
  const back = loadWithPackagedValidators(protocols, name);
  if (back.validators !== 'packaged' || back.protocol.hash !== protocol.hash) {
    throw new Error(`build-packaged-validators: ${name}'s module was written but its loader does not take it (${back.validators}, hash ${back.protocol.hash} vs ${protocol.hash})`);
  }
}
