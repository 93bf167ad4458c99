/**
 * The answers a profile's compile takes from the host at compile time: the
 * real path of each path it binds or grants (symlinks resolved), and the
 * resolv.conf file a `full` helper behind pasta is given. Every such question
 * goes through here, so that a compile made ahead of its launch
 * (lib/sandbox/prepared-compile.ts) can ask them all again at the launch and be
 * used only when every answer is the same: `compileProfile` is otherwise a pure
 * function of its input, the profile and the host probe.
 * @module
 */
import { realpathSync } from 'node:fs';
import { helperResolvConf } from './pasta-dns.js';

/** What was asked: the question's kind and its argument (a path, or '' for resolv.conf). */
type Question = `${'native' | 'js' | 'resolv'}\0${string}`;

/** The questions a compile asked and their answers (`undefined`: none, e.g. a missing path). */
export type FsAnswers = ReadonlyMap<Question, string | undefined>;

let recording: Map<Question, string | undefined> | undefined;

function ask(question: Question): string | undefined {
  const sep = question.indexOf('\0');
  const kind = question.slice(0, sep);
  const arg = question.slice(sep + 1);
  try {
    if (kind === 'native') return realpathSync.native(arg);
    if (kind === 'js') return realpathSync(arg);
    return resolvAnswer(helperResolvConf());
  } catch {
    return undefined;
  }
}

/** What a compile takes from a resolv.conf plan: the file's name (it hashes the content) and the changes its report names. */
function resolvAnswer(resolv: ReturnType<typeof helperResolvConf>): string | undefined {
  return resolv === null ? undefined : JSON.stringify([resolv.path, resolv.plan?.changes ?? null, resolv.plan?.unreachable ?? null]);
}

function answer(question: Question): string | undefined {
  const value = ask(question);
  recording?.set(question, value);
  return value;
}

/** `path`'s real path by the OS's realpath(3), or undefined when it cannot be resolved (missing). */
export function realPathNative(path: string): string | undefined {
  return answer(`native\0${path}`);
}

/** `path`'s real path by Node's own resolution (fs.realpathSync), or undefined when it cannot be resolved. */
export function realPathJs(path: string): string | undefined {
  return answer(`js\0${path}`);
}

/** The helper's resolv.conf as {@link helperResolvConf} plans it (asked through here so a prepared compile re-checks it). */
export function resolvConf(): ReturnType<typeof helperResolvConf> {
  const result = helperResolvConf();
  recording?.set('resolv\0', resolvAnswer(result));
  return result;
}

/** Runs `fn` (synchronous), recording every question above it asked. Not reentrant. */
export function recordingAnswers<T>(fn: () => T): { value: T; answers: FsAnswers } {
  const answers = new Map<Question, string | undefined>();
  recording = answers;
  try {
    return { value: fn(), answers };
  } finally {
    recording = undefined;
  }
}

/** True when every question in `answers`, asked again now, gets the same answer. */
export function answersHold(answers: FsAnswers): boolean {
  for (const [question, value] of answers) if (ask(question) !== value) return false;
  return true;
}
