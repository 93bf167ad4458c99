/**
 * Code-signing requirement: a signed service directory verifies; a modified,
 * deleted or added file, an edited signature file, the wrong signer and a signer
 * from another CA are each refused with ERR_CODE_SIGNATURE and their own
 * data.reason. Each case signs a fresh copy of the same small service.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority, SIGNATURE_FILE, signServiceDir, verifyServiceDir, type SignedManifest } from '../lib/identity/index.js';
import { expectCode } from './helpers.js';


const root = mkdtempSync(join(tmpdir(), 'bulkhead-identity-codesign-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));
const ca = await CertificateAuthority.loadOrCreate(join(root, 'ca'));
const otherCa = await CertificateAuthority.loadOrCreate(join(root, 'other-ca'));
const dev = ca.issue('dev');
const intern = ca.issue('intern');
const foreignDev = otherCa.issue('dev');
const requirement = { signedBy: 'dev' };

/** The service every case starts from. */
const template = join(root, 'template');
mkdirSync(join(template, 'lib', 'deep'), { recursive: true });
mkdirSync(join(template, 'node_modules', 'dep'), { recursive: true });
mkdirSync(join(template, '.git'), { recursive: true });
writeFileSync(join(template, 'main.js'), "import './lib/util.js';\n");
writeFileSync(join(template, 'lib', 'util.js'), 'export const x = 1;\n');
writeFileSync(join(template, 'lib', 'deep', 'data.bin'), Buffer.from([0, 1, 2, 255]));
writeFileSync(join(template, 'manifest.json'), '{"name":"svc"}\n');
writeFileSync(join(template, 'node_modules', 'dep', 'index.js'), 'module.exports = 1;\n');
writeFileSync(join(template, '.git', 'HEAD'), 'ref: refs/heads/main\n');

let copies = 0;
/** A fresh copy of the template, signed by `signer` unless told otherwise. */
function service(signer: { certPem: string; keyPem: string } | null = dev, include?: string[]): string {
  const dir = join(root, `svc-${++copies}`);
  cpSync(template, dir, { recursive: true });
  if (signer) signServiceDir(dir, signer, include ? { include } : {});
  return dir;
}

const readManifest = (dir: string): SignedManifest => JSON.parse(readFileSync(join(dir, SIGNATURE_FILE), 'utf8')) as SignedManifest;

t.test('a signed directory verifies; the signature file lists every regular file but the skipped ones', async (t) => {
  const dir = service();
  const m = readManifest(dir);
  t.equal(m.version, 1);
  t.equal(m.signer, dev.certPem);
  t.same(Object.keys(m.files).sort(), ['lib/deep/data.bin', 'lib/util.js', 'main.js', 'manifest.json'], 'node_modules, .git and the signature file are not listed');
  t.match(m.files['main.js'], /^[0-9a-f]{64}$/);
  t.equal(m.files['main.js'], execFileSync('sha256sum', [join(dir, 'main.js')], { encoding: 'utf8' }).split(' ')[0], 'the hash is sha256sum\'s');
  t.match(m.signature, /^[A-Za-z0-9+/]+=*$/);
  t.equal(statSync(join(dir, SIGNATURE_FILE)).mode & 0o777, 0o644);
  t.same(verifyServiceDir(dir, requirement, ca), { signer: 'dev', files: 4 });
  // node_modules and .git are outside the signature by default: changing them does not matter.
  writeFileSync(join(dir, 'node_modules', 'dep', 'index.js'), 'evil');
  writeFileSync(join(dir, '.git', 'HEAD'), 'evil');
  t.same(verifyServiceDir(dir, requirement, ca), { signer: 'dev', files: 4 }, 'skipped paths stay skipped');
});

t.test('a modified file → reason "modified", naming the file', async (t) => {
  const dir = service();
  writeFileSync(join(dir, 'lib', 'util.js'), 'export const x = 2;\n');
  const err = expectCode(t, () => verifyServiceDir(dir, requirement, ca), 'ERR_CODE_SIGNATURE');
  t.equal(err?.data['reason'], 'modified');
  t.equal(err?.data['file'], 'lib/util.js');
  t.match(err?.message, 'lib/util.js');
});

t.test('a deleted file → reason "missing"', async (t) => {
  const dir = service();
  unlinkSync(join(dir, 'lib', 'deep', 'data.bin'));
  const err = expectCode(t, () => verifyServiceDir(dir, requirement, ca), 'ERR_CODE_SIGNATURE');
  t.equal(err?.data['reason'], 'missing');
  t.equal(err?.data['file'], 'lib/deep/data.bin');
});

t.test('an added file → reason "added", also in a new directory and as a dot-file', async (t) => {
  for (const added of ['lib/extra.js', 'new/dir/x.js', '.npmrc']) {
    const dir = service();
    mkdirSync(join(dir, added, '..'), { recursive: true });
    writeFileSync(join(dir, added), 'extra');
    const err = expectCode(t, () => verifyServiceDir(dir, requirement, ca), 'ERR_CODE_SIGNATURE', added);
    t.equal(err?.data['reason'], 'added', `${added}: reason`);
    t.equal(err?.data['file'], added, `${added}: file`);
  }
});

t.test('the first bad file in path order is the one named', async (t) => {
  const dir = service();
  writeFileSync(join(dir, 'main.js'), 'changed');
  unlinkSync(join(dir, 'lib', 'util.js'));
  const err = expectCode(t, () => verifyServiceDir(dir, requirement, ca), 'ERR_CODE_SIGNATURE');
  t.equal(err?.data['file'], 'lib/util.js');
  t.equal(err?.data['reason'], 'missing');
});

t.test('an edited signature file → reason "bad-signature"', async (t) => {
  const cases: [string, (m: SignedManifest) => unknown][] = [
    ['a hash rewritten to match a modified file', (m) => {
      m.files['main.js'] = 'f'.repeat(64);
    }],
    ['a file entry removed (to hide an added file)', (m) => {
      delete m.files['manifest.json'];
    }],
    ['the signature replaced', (m) => {
      m.signature = Buffer.alloc(256, 1).toString('base64');
    }],
    ['include added to widen nothing', (m) => {
      m.include = ['node_modules'];
    }],
    ['the signer swapped for another trusted identity', (m) => {
      m.signer = intern.certPem;
    }],
  ];
  for (const [what, edit] of cases) {
    const dir = service();
    const m = readManifest(dir);
    edit(m);
    writeFileSync(join(dir, SIGNATURE_FILE), JSON.stringify(m));
    const req = what.startsWith('the signer') ? { signedBy: 'intern' } : requirement;
    const err = expectCode(t, () => verifyServiceDir(dir, req, ca), 'ERR_CODE_SIGNATURE', what);
    t.equal(err?.data['reason'], 'bad-signature', `${what}: reason`);
    t.equal(err?.data['file'], SIGNATURE_FILE, `${what}: file`);
  }
  for (const [what, text] of [
    ['not JSON', '{'],
    ['a path leaving the directory', (() => {
      const dir = service();
      const m = readManifest(dir);
      m.files['../outside.js'] = 'a'.repeat(64);
      return JSON.stringify(m);
    })()],
    ['an unknown field', JSON.stringify({ ...readManifest(service()), extra: 1 })],
  ] as const) {
    const dir = service();
    writeFileSync(join(dir, SIGNATURE_FILE), text);
    const err = expectCode(t, () => verifyServiceDir(dir, requirement, ca), 'ERR_CODE_SIGNATURE', what);
    t.equal(err?.data['reason'], 'bad-signature', `${what}: reason`);
  }
  const unsigned = service(null);
  const err = expectCode(t, () => verifyServiceDir(unsigned, requirement, ca), 'ERR_CODE_SIGNATURE', 'unsigned directory');
  t.equal(err?.data['reason'], 'bad-signature');
});

t.test('signed by another identity than the requirement → reason "wrong-signer"', async (t) => {
  const dir = service(intern);
  t.same(verifyServiceDir(dir, { signedBy: 'intern' }, ca), { signer: 'intern', files: 4 }, 'valid for its own name');
  const err = expectCode(t, () => verifyServiceDir(dir, requirement, ca), 'ERR_CODE_SIGNATURE');
  t.equal(err?.data['reason'], 'wrong-signer');
  t.equal(err?.data['signer'], 'intern');
});

t.test('a signer from another CA (same name) → reason "wrong-signer"', async (t) => {
  const dir = service(foreignDev);
  const err = expectCode(t, () => verifyServiceDir(dir, requirement, ca), 'ERR_CODE_SIGNATURE');
  t.equal(err?.data['reason'], 'wrong-signer');
  t.equal(err?.data['signerCode'], 'ERR_CERT_UNTRUSTED');
  t.same(verifyServiceDir(dir, requirement, otherCa), { signer: 'dev', files: 4 }, 'its own CA accepts it');
});

t.test('a revoked or expired signer → reason "wrong-signer" with the certificate error', async (t) => {
  const dir = service();
  const later = new Date(dev.notAfter.getTime() + 1000);
  const e1 = expectCode(t, () => verifyServiceDir(dir, requirement, ca, later), 'ERR_CODE_SIGNATURE', 'expired signer');
  t.equal(e1?.data['signerCode'], 'ERR_CERT_EXPIRED');
  const temp = ca.issue('temp');
  const dir2 = service(temp);
  ca.revoke(temp.serial);
  const e2 = expectCode(t, () => verifyServiceDir(dir2, { signedBy: 'temp' }, ca), 'ERR_CODE_SIGNATURE', 'revoked signer');
  t.equal(e2?.data['reason'], 'wrong-signer');
  t.equal(e2?.data['signerCode'], 'ERR_CERT_REVOKED');
});

t.test('include signs node_modules too, and then a change there is caught', async (t) => {
  const dir = service(dev, ['node_modules']);
  const m = readManifest(dir);
  t.same(m.include, ['node_modules']);
  t.ok('node_modules/dep/index.js' in m.files);
  t.same(verifyServiceDir(dir, requirement, ca), { signer: 'dev', files: 5 });
  writeFileSync(join(dir, 'node_modules', 'dep', 'index.js'), 'evil');
  const e1 = expectCode(t, () => verifyServiceDir(dir, requirement, ca), 'ERR_CODE_SIGNATURE');
  t.equal(e1?.data['reason'], 'modified');
  t.equal(e1?.data['file'], 'node_modules/dep/index.js');
  const dir2 = service(dev, ['node_modules']);
  mkdirSync(join(dir2, 'node_modules', 'evil'));
  writeFileSync(join(dir2, 'node_modules', 'evil', 'index.js'), 'evil');
  const e2 = expectCode(t, () => verifyServiceDir(dir2, requirement, ca), 'ERR_CODE_SIGNATURE');
  t.equal(e2?.data['reason'], 'added');
  t.equal(e2?.data['file'], 'node_modules/evil/index.js');
  expectCode(t, () => signServiceDir(service(null), dev, { include: ['../x'] }), 'ERR_INVALID_OPTION', 'include cannot leave the directory');
});

t.test('symbolic links: inside is followed, outside is refused when signing and caught when verifying', async (t) => {
  const inside = service(null);
  symlinkSync('util.js', join(inside, 'lib', 'alias.js'));
  symlinkSync('lib', join(inside, 'lib-link'));
  const m = signServiceDir(inside, dev);
  t.equal(m.files['lib/alias.js'], m.files['lib/util.js'], 'a file link is hashed by content');
  t.ok('lib-link/util.js' in m.files, 'a directory link inside is walked');
  t.same(verifyServiceDir(inside, requirement, ca).files, Object.keys(m.files).length);

  writeFileSync(join(root, 'outside.js'), 'outside');
  const out = service(null);
  symlinkSync(join(root, 'outside.js'), join(out, 'lib', 'escape.js'));
  const e1 = expectCode(t, () => signServiceDir(out, dev), 'ERR_INVALID_OPTION', 'signing refuses a link to outside');
  t.equal(e1?.data['file'], 'lib/escape.js');

  const loop = service(null);
  symlinkSync('..', join(loop, 'lib', 'up'));
  expectCode(t, () => signServiceDir(loop, dev), 'ERR_INVALID_OPTION', 'signing refuses a looping link');

  const swapped = service();
  unlinkSync(join(swapped, 'lib', 'util.js'));
  symlinkSync(join(root, 'outside.js'), join(swapped, 'lib', 'util.js'));
  const e2 = expectCode(t, () => verifyServiceDir(swapped, requirement, ca), 'ERR_CODE_SIGNATURE', 'a signed file replaced by a link to outside');
  t.equal(e2?.data['reason'], 'modified');
  t.equal(e2?.data['file'], 'lib/util.js');

  const planted = service();
  symlinkSync('/etc/passwd', join(planted, 'passwd.js'));
  const e3 = expectCode(t, () => verifyServiceDir(planted, requirement, ca), 'ERR_CODE_SIGNATURE', 'a new link to outside');
  t.equal(e3?.data['reason'], 'added');
});

t.test('a FIFO cannot be signed, and an added FIFO does not hang verification', async (t) => {
  const dir = service(null);
  execFileSync('mkfifo', [join(dir, 'pipe')]);
  expectCode(t, () => signServiceDir(dir, dev), 'ERR_INVALID_OPTION', 'sign');
  const signed = service();
  execFileSync('mkfifo', [join(signed, 'pipe')]);
  const err = expectCode(t, () => verifyServiceDir(signed, requirement, ca), 'ERR_CODE_SIGNATURE', 'verify');
  t.equal(err?.data['reason'], 'added');
});

t.test('hostile file names are signed like any other', async (t) => {
  const dir = service(null);
  for (const name of ['__proto__', 'constructor', 'has space.js', 'ünï.js', 'new\nline.js']) writeFileSync(join(dir, name), name);
  const m = signServiceDir(dir, dev);
  for (const name of ['__proto__', 'constructor', 'has space.js', 'ünï.js', 'new\nline.js']) t.ok(Object.hasOwn(m.files, name), `${JSON.stringify(name)} is listed`);
  t.same(verifyServiceDir(dir, requirement, ca).files, 9);
  writeFileSync(join(dir, '__proto__'), 'changed');
  const err = expectCode(t, () => verifyServiceDir(dir, requirement, ca), 'ERR_CODE_SIGNATURE');
  t.equal(err?.data['file'], '__proto__');
  t.equal(err?.data['reason'], 'modified');
});

t.test('bad arguments → ERR_INVALID_OPTION', async (t) => {
  expectCode(t, () => signServiceDir(join(root, 'nope'), dev), 'ERR_INVALID_OPTION', 'missing dir');
  expectCode(t, () => signServiceDir(service(null), { certPem: dev.certPem, keyPem: intern.keyPem }), 'ERR_INVALID_OPTION', 'key does not match certificate');
  expectCode(t, () => verifyServiceDir(service(), { signedBy: '../x' }, ca), 'ERR_INVALID_OPTION', 'bad signedBy');
});
