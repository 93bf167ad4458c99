/**
 * `bulkhead identity issue NAME`, `bulkhead identity revoke SERIAL|CERT` and
 * `bulkhead sign SERVICE_DIR --identity NAME`: the daemon's CA and
 * code signing, from the command line. They work on the state directory's
 * files; the daemon need not run (it re-reads the revocation list when it
 * changes, so a revocation takes effect at the next connection).
 * @module
 */
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { addStateDirOptions, CliExit, resolveClient, type DaemonClientOptions } from '../daemon-client.js';
import { EXIT_CODES, EXIT_CODES_HELP, type ExitCode } from '../exit-codes.js';

interface IssueOptions extends DaemonClientOptions {
  out?: string;
  days: string;
  force?: boolean;
  json?: boolean;
}

interface SignCommandOptions extends DaemonClientOptions {
  identity: string;
  identityDir?: string;
  include?: string[];
  json?: boolean;
}

/** Opens the CA of a state directory; refuses to create one (that is the daemon's first start). */
async function openCa(options: DaemonClientOptions) {
  const client = await resolveClient(options);
  const { CertificateAuthority, CA_FILES } = await import('../../identity/index.js');
  const dir = join(client.stateDir, 'ca');
  if (!existsSync(join(dir, CA_FILES.cert))) {
    throw new CliExit(EXIT_CODES.invalid, `No CA in ${dir}. The daemon creates it on its first start (\`bulkhead daemon --config FILE\`); or pass the daemon's --state-dir.`);
  }
  return { ca: await CertificateAuthority.loadOrCreate(dir), client };
}

/** Registers `identity issue`, `identity revoke` and `sign`. */
export function registerIdentity(program: Command, run: (work: () => Promise<ExitCode>) => Promise<void>): void {
  const identity = program
    .command('identity')
    .summary('issue and revoke client identities from the daemon\'s CA')
    .description('Client identities are certificates from the daemon\'s CA (<state-dir>/ca) plus their private keys. A service lets an identity connect by listing its name in `clients`; the control protocol (ps, logs, kickstart, ...) by daemon.controlClients.')
    .addHelpText('after', `
Examples:
  $ bulkhead identity issue app                         # writes <state-dir>/identities/app.{cert,key}.pem
  $ bulkhead identity issue ci -o ./keys --days 30
  $ bulkhead identity revoke 3f9c0a...                  # by serial (printed by issue)
  $ bulkhead identity revoke ./keys/ci.cert.pem         # or by certificate file

${EXIT_CODES_HELP}`);

  addStateDirOptions(identity
    .command('issue')
    .summary('issue a client certificate and key')
    .description('Issue a certificate for NAME signed by the daemon\'s CA, with a new RSA 2048 key, and write NAME.cert.pem (0644) and NAME.key.pem (0600).')
    .argument('<name>', 'identity name: letters, digits, ".", "_", "-" (what services list in clients)')
    .option('-o, --out <dir>', 'write the files here [default: <state-dir>/identities]')
    .addOption(new Option('--days <n>', 'validity in days').default('365'))
    .option('--force', 'replace existing files for NAME')
    .option('--json', 'print { name, serial, notAfter, certPath, keyPath, daemonId } as JSON'))
    .addHelpText('after', `
Examples:
  $ bulkhead identity issue app
  $ bulkhead identity issue ops -o ~/.config/bulkhead --days 90

${EXIT_CODES_HELP}`)
    .action((name: string, options: IssueOptions) => run(async () => {
      const days = Number(options.days);
      if (!Number.isInteger(days) || days < 1) throw new CliExit(EXIT_CODES.invalid, `--days must be a positive whole number, got ${JSON.stringify(options.days)}.`);
      const { ca, client } = await openCa(options);
      const { identityPaths, writeIdentity } = await import('../../identity/index.js');
      const dir = resolve(options.out ?? join(client.stateDir, 'identities'));
      const paths = identityPaths(dir, name);
      if (options.force !== true && (existsSync(paths.certPath) || existsSync(paths.keyPath))) {
        throw new CliExit(EXIT_CODES.invalid, `${paths.certPath} already exists; pass --force to replace it (revoke the old certificate too if it leaked).`);
      }
      const issued = ca.issue(name, { validDays: days });
      writeIdentity(dir, issued);
      // The daemon id a client signs over (and may pin): the CA certificate's SHA-256 fingerprint.
      const result = { name, serial: issued.serial, notAfter: issued.notAfter.toISOString(), certPath: paths.certPath, keyPath: paths.keyPath, daemonId: ca.fingerprint };
      process.stdout.write(options.json === true ? `${JSON.stringify(result)}\n` : `issued ${name}: serial ${issued.serial}, valid until ${result.notAfter}
  certificate: ${paths.certPath}
  key:         ${paths.keyPath} (keep it private)
  daemon id:   ${ca.fingerprint} (the daemon's CA fingerprint: pin it in clients)
List "${name}" in a service's "clients" (or daemon.controlClients) to let it connect.
`);
      return EXIT_CODES.ok;
    }));

  addStateDirOptions(identity
    .command('revoke')
    .summary('revoke a certificate (by serial or certificate file)')
    .description('Add a certificate to the CA\'s revocation list (<state-dir>/ca/revoked.json). A running daemon refuses it from the next connection on (ERR_CERT_REVOKED).')
    .argument('<serial-or-cert>', 'hex serial number as printed by `identity issue`, or the path of a .cert.pem file'))
    .addHelpText('after', `
Examples:
  $ bulkhead identity revoke 5b1d9e0c77a4f0e2a1c3
  $ bulkhead identity revoke ~/.config/bulkhead/ops.cert.pem

${EXIT_CODES_HELP}`)
    .action((target: string, options: DaemonClientOptions) => run(async () => {
      let serial = target;
      if (existsSync(target)) {
        try {
          serial = new X509Certificate(readFileSync(target)).serialNumber.toLowerCase();
        } catch (err) {
          throw new CliExit(EXIT_CODES.invalid, `${target} is not a PEM certificate: ${(err as Error).message}.`);
        }
      }
      const { ca } = await openCa(options);
      const already = ca.isRevoked(serial);
      ca.revoke(serial);
      process.stdout.write(already ? `serial ${serial} was already revoked\n` : `revoked serial ${serial}\n`);
      return EXIT_CODES.ok;
    }));

  addStateDirOptions(program
    .command('sign')
    .summary('sign a service directory (code-signing requirement)')
    .description('Hash every file of SERVICE_DIR (node_modules and .git skipped unless --include) and sign the list with an identity\'s key, into SERVICE_DIR/bulkhead.signature.json. A manifest with "requirement": { "signedBy": NAME } then only launches code that matches it.')
    .argument('<service-dir>', 'the directory holding the service\'s entry file')
    .requiredOption('--identity <name>', 'the signing identity (its name is what requirement.signedBy names)')
    .option('--identity-dir <dir>', 'directory holding <name>.cert.pem and <name>.key.pem [default: <state-dir>/identities]')
    .option('--include <path...>', 'sign these relative paths even though they are skipped by default (e.g. node_modules)')
    .option('--json', 'print { signer, files } as JSON'))
    .addHelpText('after', `
Examples:
  $ bulkhead identity issue release && bulkhead sign services/digest --identity release
  $ bulkhead sign services/digest --identity release --identity-dir ./keys --include node_modules

${EXIT_CODES_HELP}`)
    .action((dir: string, options: SignCommandOptions) => run(async () => {
      const client = await resolveClient(options);
      const { readIdentity, signServiceDir, SIGNATURE_FILE } = await import('../../identity/index.js');
      const signer = readIdentity(client.identityDir, options.identity);
      const manifest = signServiceDir(resolve(dir), signer, options.include === undefined ? {} : { include: options.include });
      const files = Object.keys(manifest.files).length;
      process.stdout.write(options.json === true
        ? `${JSON.stringify({ signer: options.identity, files, signature: join(resolve(dir), SIGNATURE_FILE) })}\n`
        : `signed ${files} file${files === 1 ? '' : 's'} in ${dir} as ${options.identity} (${SIGNATURE_FILE})\n`);
      return EXIT_CODES.ok;
    }));
}
